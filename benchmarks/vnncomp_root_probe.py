"""Why a deep VNN-COMP mnist_fc instance stays open: the root's intermediate bounds against
what points of the box reach, the root bound against more Adam steps, and what a HiGHS
MILP per unstable neuron (its dual bound at a per-side time limit, as alpha-beta-CROWN's
MILP-refined bounds) adds on one layer.

    PYTHONPATH=src .venv/bin/python benchmarks/vnncomp_root_probe.py --net 256x6 --prop prop_3_0.05 \
        [--iters 20 100] [--milp-layers 1 2] [--milp-seconds 0.5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import highspy
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, SHARED, need  # noqa: E402
from napkit.network import ReluNetwork, from_onnx, load_onnx_model  # noqa: E402
from napkit.verify.bounds import Bounds, propagate  # noqa: E402
from napkit.verify.milp import MilpEncoding  # noqa: E402
from napkit.verify.optimized import optimize_rows, tighten_optimized  # noqa: E402
from napkit.verify.options import VerifyOptions  # noqa: E402
from napkit.verify.vnnlib import read_vnnlib  # noqa: E402

VNNLIB = SHARED / "benchmarks" / "mnist_fc" / "vnnlib"
SAMPLES = 2000  # uniform points of the box: what the inputs reach, a lower estimate


def root_bounds(net: ReluNetwork, prop, iters: int) -> Bounds:
    b = propagate(net, prop.box)
    tighten_optimized(net, b, iters=iters, lr=VerifyOptions.root_tighten_lr)
    return b


def root_bound(net: ReluNetwork, prop, b: Bounds) -> float:
    """The weakest disjunct's best row after the optimised bounds (> 0 proves the instance)."""
    disj = prop.output.disjuncts
    rows = np.vstack([c for c, _ in disj])
    consts = -np.concatenate([d for _, d in disj])
    v, _ = optimize_rows(net, b, len(net.layer_sizes), rows, consts, iters=VerifyOptions.root_rows_iters,
                         lr=VerifyOptions.root_rows_lr)
    cuts = np.cumsum([0] + [c.shape[0] for c, _ in disj])
    return min(float(v[cuts[i]:cuts[i + 1]].max()) for i in range(len(disj)))


def layer_table(net: ReluNetwork, prop, b: Bounds) -> None:
    rng = np.random.default_rng(0)
    xs = rng.uniform(prop.box.lower, prop.box.upper, size=(SAMPLES, prop.box.lower.size))
    _, pre = net.forward(xs)
    print("| layer | unstable | median width | sampled median range | sampled both signs |")
    print("|---|---|---|---|---|")
    for k, (lo, up) in enumerate(zip(b.lower, b.upper, strict=True)):
        z = pre[k]
        both = int(((z > 0).any(0) & (z < 0).any(0)).sum())
        print(f"| {k} | {int(((lo < 0) & (up > 0)).sum())} | {np.median(up - lo):.2f} "
              f"| {np.median(z.max(0) - z.min(0)):.2f} | {both} |", flush=True)


def milp_layer(net: ReluNetwork, b: Bounds, k: int, seconds: float) -> dict[int, tuple[float, float]]:
    """Min and max of every unstable neuron of layer ``k`` by a MILP of the layers below
    (one HiGHS model, the objective changed per question); the dual bound is sound. Returns
    the new (lower, upper) per unstable neuron (the phases of ``b`` hold: they are its bounds)."""
    cut = ReluNetwork(tuple(net.weights[: k + 1]), tuple(net.biases[: k + 1]))
    enc = MilpEncoding(cut, Bounds(b.lower[:k], b.upper[:k], b.box, None))
    g = net.weights[k][:, enc.out_keep]
    lo, up = b.lower[k], b.upper[k]
    unst = np.flatnonzero((lo < 0) & (up > 0))
    h = highspy.Highs()
    for name, value in (("output_flag", False), ("threads", 1), ("presolve", "off"),
                        ("mip_detect_symmetry", False), ("time_limit", seconds)):
        h.setOptionValue(name, value)
    h.passModel(enc._lp())
    cols = np.arange(enc.n_col, dtype=np.int32)
    t0, done, ratios, stable, out = time.monotonic(), 0, [], 0, {}
    for i in unst:
        new = []
        for sense in (1.0, -1.0):
            cost = np.zeros(enc.n_col)
            cost[enc.out_cols] = sense * g[i]
            h.changeColsCost(enc.n_col, cols, cost)
            h.run()
            done += h.getModelStatus() == highspy.HighsModelStatus.kOptimal
            new.append(sense * h.getInfo().mip_dual_bound + net.biases[k][i])
        n_lo, n_up = max(lo[i], new[0]), min(up[i], new[1])
        out[int(i)] = (float(n_lo), float(n_up))
        ratios.append((n_up - n_lo) / (up[i] - lo[i]))
        stable += n_lo >= 0 or n_up <= 0
    print(f"MILP layer {k}: {unst.size} unstable, {enc.n_binary} binaries below, {2 * unst.size} solves "
          f"({done} to optimality) in {time.monotonic() - t0:.1f} s at {seconds:g} s per side; "
          f"stabilised {stable}; median width after / before {np.median(ratios):.2f}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="256x6")
    ap.add_argument("--prop", default="prop_3_0.05")
    ap.add_argument("--iters", type=int, nargs="+", default=[20, 100],
                    help="Adam steps of the intermediate bounds (the engine: 20)")
    ap.add_argument("--milp-layers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--milp-seconds", type=float, default=0.5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    net = from_onnx(load_onnx_model(need(ONNX / f"mnist-net_{args.net}.onnx.gz")))
    prop = read_vnnlib(need(VNNLIB / f"{args.prop}.vnnlib.gz")).to_property(
        net.n_inputs, net.n_outputs, net.layer_sizes)
    print(f"# {args.net} {args.prop}\n")
    for it in args.iters:
        t = time.monotonic()
        b = root_bounds(net, prop, it)
        print(f"intermediate bounds with {it} Adam steps ({time.monotonic() - t:.1f} s): "
              f"root bound {root_bound(net, prop, b):.3f}", flush=True)
    b = root_bounds(net, prop, args.iters[0])
    print()
    layer_table(net, prop, b)
    print()
    for k in args.milp_layers:
        milp_layer(net, b, k, args.milp_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Branch-and-bound throughput: domains per wall-second, the engine before this change
(its ``bab.py`` read from git) against today's, on the same root bounds in the same run.

    .venv/bin/python benchmarks/bab_throughput.py [--seconds 20] [--baseline-ref 8fb300e]

Instances: VNN-COMP mnist_fc 256x4 prop_5_0.05 (plain robustness) and the paper setting,
class 1 of 256x4 with the δ = 0.99 NAP mined over all 60000 training images, whole domain.
Routes, each for ``--seconds`` from the same optimised root bounds:
- before: the old tree on the first open disjunct only (float64, batches of 32), as the
  old engine ran it (the MILP took the other disjuncts);
- after-f64-32: today's tree over every open disjunct, float64, batches of 32;
- after: today's tree as the engine runs it (float32 ascent, batches of 256), one process;
- after-2proc: the same tree shared out over two processes once 512 subdomains are open
  (``bab_split.py``, as the engine does once the falsifier's core is free).
A domain of the old tree bounds one disjunct, today's bounds every disjunct still open on
it: "rows/s" counts (domain, disjunct row) pairs and is the fair throughput figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, ROOT, SHARED, load_mnist, need  # noqa: E402

VNNLIB = SHARED / "benchmarks" / "mnist_fc" / "vnnlib"


def old_bab(ref: str):
    """The ``branch_and_bound`` of commit ``ref`` (with its own optimized.py), importable."""
    tmp = Path(tempfile.mkdtemp(prefix="napkit_old_bab_"))
    for name in ("optimized", "bab"):
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:src/napkit/verify/{name}.py"],
                             capture_output=True, text=True, check=True).stdout
        src = src.replace("from napkit.verify.optimized import", "from old_optimized import")
        (tmp / f"old_{name}.py").write_text(src)
    sys.path.insert(0, str(tmp))
    spec = importlib.util.spec_from_file_location("old_bab", tmp / "old_bab.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_bab"] = mod
    spec.loader.exec_module(mod)
    return mod.branch_and_bound


def instance(which: str):
    from napkit.network import from_onnx, load_onnx_model
    from napkit.patterns import mine
    from napkit.verify import Property, domain_box, read_vnnlib, robustness_spec

    kind, net_name, what = which.split(":")
    net = from_onnx(load_onnx_model(need(ONNX / f"mnist-net_{net_name}.onnx.gz")))
    if kind == "vnncomp":
        prop = read_vnnlib(VNNLIB / f"{what}.vnnlib.gz").to_property(net.n_inputs, net.n_outputs)
        return net, prop
    xtr, ytr, _, _ = load_mnist()
    naps = mine(net, xtr.astype(np.float64), ytr, 0.99, all_samples=True, classes=[int(what)], progress=False)
    return net, Property(domain_box(net.n_inputs), robustness_spec(int(what), 10), naps.phases(int(what)))


def root(net, prop, seconds: float):
    """Root bounds as the engine computes them, and the disjuncts they leave open."""
    from napkit.verify.bounds import propagate, spec_lower
    from napkit.verify.optimized import optimize_rows, tighten_optimized

    b = propagate(net, prop.box, prop.phases)
    tighten_optimized(net, b, iters=20, deadline=time.monotonic() + seconds)
    spec = prop.output
    lows = spec_lower(net, b, spec)
    ids = [k for k, lo in enumerate(lows) if not (lo > 0).any()]
    c = np.vstack([spec.disjuncts[k][0] for k in ids])
    d = np.concatenate([spec.disjuncts[k][1] for k in ids])
    v, _ = optimize_rows(net, b, len(net.layer_sizes), c, -d, iters=40, stop_at=0.0,
                         deadline=time.monotonic() + seconds)
    still = [i for i, k in enumerate(ids) if v[i] <= 0]  # one row per disjunct here
    still.sort(key=lambda i: float(v[i]))
    return b, c[still], d[still], b.n_unstable


def measure(which: str, before, seconds: float) -> None:
    """The three routes on one instance, one table row each, then the ratio."""
    from napkit.verify.attack import check_point
    from napkit.verify.bab import branch_and_bound
    from napkit.verify.options import VerifyOptions
    from napkit.verify.properties import follows_phases

    net, prop = instance(which)
    b, c, d, n_unst = root(net, prop, 6.0)
    if c.shape[0] == 0:
        print(f"| {which} | {n_unst} | 0 | - | - | - | - | proved at the root |")
        return

    def check(x):
        return check_point(net, prop.box, prop.output, prop.phases, x)

    def screen(xs):
        y, pre = net.forward(xs)
        return prop.box.contains(xs) & follows_phases(pre, prop.phases) & prop.output.violated(y)

    def after(batch, dtype, workers=None):
        return branch_and_bound(net, b, c, -d, time.monotonic() + seconds, check, groups=np.arange(c.shape[0]),
                                screen=screen, options=VerifyOptions(bab_batch=batch, bab_dtype=dtype),
                                workers=workers)

    rates = {}
    routes = [
        ("before", lambda: before(net, b, c[:1], -d[:1], time.monotonic() + seconds, check)),
        ("after-f64-32", lambda: after(32, "float64")),
        ("after", lambda: after(256, "float32")),
        ("after-2proc", lambda: after(256, "float32", workers=2)),
    ]
    for name, go in routes:
        t = time.monotonic()
        res = go()
        secs = time.monotonic() - t
        rows = getattr(res, "rows", 0) or res.domains
        rates[name] = rows / secs
        print(f"| {which} | {n_unst} | {c.shape[0]} | {name} | {res.domains} | "
              f"{res.domains / secs:.0f} | {rows / secs:.0f} | {res.status} |", flush=True)
    for name in ("after", "after-2proc"):
        print(f"| {which} | | | {name} / before (rows/s) | | | {rates[name] / rates['before']:.2f}x | |",
              flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", nargs="+", default=["vnncomp:256x4:prop_5_0.05", "paper:256x4:1"])
    ap.add_argument("--seconds", type=float, default=20.0, help="per route and instance")
    ap.add_argument("--baseline-ref", default="8fb300e", help="git commit of the engine before")
    args = ap.parse_args(argv)
    from napkit.verify.optimized import one_thread

    before = old_bab(args.baseline_ref)
    print(f"# branch-and-bound throughput, {args.seconds:g} s per route, torch on 1 thread\n")
    print("| instance | unstable | open disjuncts | route | domains | domains/s | rows/s | status |")
    print("|---|---|---|---|---|---|---|---|")
    with one_thread():
        for which in args.instances:
            measure(which, before, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

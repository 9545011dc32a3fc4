"""Why a whole-domain NAP query stays open: its narrow layer, what a violation needs there,
and how far the data and the bounds reach (the paper's setting, δ = 0.99, --all-samples).

    .venv/bin/python benchmarks/paper_domain_probe.py --net 256x6 --cls 8 [--lp] [--walk] [--milp 60]

Behind the narrow layer (``verify/naptail.py``) the logits are a function of its few units
``t``. For a 1- or 2-unit layer this prints, per rival, the smallest first unit with a
violating ``t`` on a grid over the box of the units' bounds (the tail's phases held), the
range of ``t`` over the data that follow the NAP, and the units' upper bounds: symbolic,
and with ``--lp`` the region's LP (``naplp.tighten_layer``, a few minutes on 256x6). Against
those needs: ``--walk`` climbs each unit by pattern-fixed LPs (``PatternSearch.climb``) from
the followers that push it furthest (how far inputs that follow the NAP are seen to reach),
``--milp S`` bounds each unit by a MILP of the layers below it at ``S`` seconds per side
(HiGHS's dual bound, as in ``vnncomp_root_probe.py``); ``--refine S`` runs the MILP
refinement of every layer (``refine.py``; with ``--cut-rounds N`` each neuron's LP with N rounds
of ideal cuts instead) for at most ``S`` seconds first. After ``--refine`` or ``--lp`` it prints
the rivals the exact tail refutes on the tightened box.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, load_mnist, need  # noqa: E402

_GRID = 2001  # grid points along each unit


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="256x6")
    ap.add_argument("--cls", type=int, default=8)
    ap.add_argument("--delta", type=float, default=0.99)
    ap.add_argument("--lp", action="store_true", help="also the units' bounds by the region's LP")
    ap.add_argument("--walk", action="store_true", help="climb each unit by pattern-fixed LPs")
    ap.add_argument("--walk-starts", type=int, default=5, help="followers the climbs start from")
    ap.add_argument("--walk-rounds", type=int, default=200, help="regions per climb at most")
    ap.add_argument("--walk-seconds", type=float, default=60.0, help="seconds per climb at most")
    ap.add_argument("--milp", type=float, default=0.0, metavar="S",
                    help="also the units' bounds by a MILP of the layers below, S seconds per side")
    ap.add_argument("--refine", type=float, default=0.0, metavar="S",
                    help="first the optimised bounds, then the MILP refinement of every layer "
                         "(refine.py, 0.3 s per side, both cores) for at most S seconds")
    ap.add_argument("--cut-rounds", type=int, default=0, metavar="N",
                    help="with --refine: each neuron's bounds from the LP with N rounds of ideal "
                         "cuts per side (ideal_cuts.py) instead of the 0.3 s MILP")
    ap.add_argument("--workers", type=int, default=2, help="processes of the refinement")
    args = ap.parse_args(argv)
    if args.cut_rounds < 0 or args.workers < 1:
        ap.error("--cut-rounds must be >= 0 and --workers >= 1")
    from napkit.network import from_onnx, load_onnx_model
    from napkit.patterns import mine
    from napkit.verify import domain_box, follows_phases
    from napkit.verify.bounds import propagate
    from napkit.verify.naptail import Tail, narrowest_layer

    net = from_onnx(load_onnx_model(need(ONNX / f"mnist-net_{args.net}.onnx.gz")))
    xtr, ytr, xte, yte = load_mnist()
    xtr = xtr.astype(np.float64)
    ph = mine(net, xtr, ytr, args.delta, all_samples=True, progress=False).phases(args.cls)
    b = propagate(net, domain_box(net.n_inputs), ph)
    k, units = narrowest_layer(ph, len(net.layer_sizes), 8)
    print(f"{args.net} class {args.cls}: unstable {b.n_unstable}; narrowest layer {k}, units {units.tolist()}")
    print("  symbolic upper bounds of the units:", np.round(b.upper[k][units], 1).tolist())
    data = np.vstack([xtr, xte.astype(np.float64)])
    y, pre = net.forward(data)
    fol = follows_phases(pre, ph)
    t_data = np.maximum(pre[k][fol][:, units], 0.0)
    margin = y[fol, args.cls] - np.delete(y[fol], args.cls, axis=1).max(axis=1)
    print(f"  followers {int(fol.sum())}: units reach {np.round(t_data.max(axis=0), 2).tolist()}, "
          f"smallest margin {margin.min():.4f}")
    if args.refine > 0:
        refine_units(net, b, k, units, args.refine, args.cut_rounds, args.workers)
    if args.lp:
        from napkit.verify.milp import MilpEncoding
        from napkit.verify.naplp import RegionLp, tighten_layer

        t0 = time.monotonic()
        tighten_layer(RegionLp(MilpEncoding(net, b)), b, k, np.inf, order=units)
        print(f"  region-LP upper bounds of the units: {np.round(b.upper[k][units], 1).tolist()} "
              f"({time.monotonic() - t0:.0f} s)")
    if args.walk:
        climb_units(net, b, ph, k, units, data[fol], pre[k][fol], args)
    if args.milp > 0:
        from vnncomp_root_probe import milp_layer

        tight = milp_layer(net, b, k, args.milp)
        print("  MILP bounds of the units:", {int(u): tuple(round(v, 1) for v in tight[int(u)])
                                              for u in units if int(u) in tight})
    tail = Tail(net, b, ph, k, units)
    if args.refine > 0 or args.lp:  # the bounds moved: which rivals the tail now refutes
        from napkit.verify import robustness_spec
        from napkit.verify.naptail import refute_by_tail

        spec = robustness_spec(args.cls, net.n_outputs)
        rivals = [r for r in range(net.n_outputs) if r != args.cls]
        refuted, _ = refute_by_tail(tail, list(spec.disjuncts), time.monotonic() + 60)
        print(f"  the tail on these bounds refutes rivals {[r for r, x in zip(rivals, refuted, strict=True) if x]}")
    if units.size > 2:
        return 0
    axes = [np.linspace(lo, hi, _GRID) for lo, hi in zip(tail.box.lower, tail.box.upper, strict=True)]
    first: dict[int, tuple[float, float]] = {}  # rival -> (smallest first unit, second unit there)
    for a in axes[0]:  # one row of the grid at a time, the rivals not seen yet
        pts = np.stack([np.full(axes[-1].size, a), axes[-1]], 1)[:, : units.size]
        yt, pt = tail.net.forward(pts)
        ok = follows_phases(pt, tail.phases)
        for r in set(range(yt.shape[1])) - {args.cls} - set(first):
            bad = ok & (yt[:, r] >= yt[:, args.cls])
            if bad.any():
                first[r] = (float(a), float(pts[bad, -1].min()))
    for r in sorted(set(range(net.n_outputs)) - {args.cls}):
        if r not in first:
            print(f"  rival {r}: no violation on the grid")
        else:
            there = f" (second unit there >= {first[r][1]:.1f})" if units.size == 2 else ""
            print(f"  rival {r}: smallest first unit with a violation {first[r][0]:.1f}{there}")
    return 0


def refine_units(net, b, k, units, seconds: float, cut_rounds: int = 0, workers: int = 2) -> None:
    """The units' upper bounds after the optimised bounds and after the MILP refinement (the
    stage deep VNN-COMP queries get), with the free neurons per layer before and after."""
    from napkit.verify.optimized import tighten_optimized
    from napkit.verify.refine import refine_with_milp

    def free():
        return [int(((lo < 0) & (up > 0)).sum()) for lo, up in zip(b.lower, b.upper, strict=True)]

    t0 = time.monotonic()
    tighten_optimized(net, b, iters=20)
    print(f"  optimised bounds ({time.monotonic() - t0:.0f} s): units {np.round(b.upper[k][units], 1).tolist()}, "
          f"free neurons per layer {free()}")
    st = refine_with_milp(net, b, time.monotonic() + seconds, workers=workers, cut_rounds=cut_rounds)
    how = f"cut-LP-refined ({cut_rounds} cut rounds, " if cut_rounds else "MILP-refined ("
    print(f"  {how}{st.seconds:.0f} s, {st.asked} solves, {st.narrowed} narrowed, {st.stabilised} "
          f"stabilised): units {np.round(b.upper[k][units], 1).tolist()}, free neurons per layer {free()}")


def climb_units(net, b, ph, k, units, followers, pre_k, args) -> None:
    """Per unit: the largest value pattern-fixed LP climbs reach from the followers that push
    it furthest, the LPs and time they took, and how many climbs ended on a cap (rounds or
    seconds) rather than at a region with no move left."""
    from napkit.verify import domain_box
    from napkit.verify.patternlp import PatternSearch

    for u in units:
        t0 = time.monotonic()
        ps = PatternSearch(net, domain_box(net.n_inputs), ph, b)
        w = np.zeros(net.layer_sizes[k])
        w[u] = 1.0
        best, capped = -np.inf, 0
        for x in followers[np.argsort(-pre_k[:, u])[: args.walk_starts]]:
            best = max(best, ps.climb(x, k, w, time.monotonic() + args.walk_seconds,
                                      rounds=args.walk_rounds)[0])
            capped += ps.stats.climb_end != "no move"
        print(f"  unit {int(u)}: climbs from the {args.walk_starts} highest followers reach {best:.2f} "
              f"({ps.stats.lps} LPs, {time.monotonic() - t0:.0f} s; {capped} ended on the "
              f"{args.walk_rounds}-round or {args.walk_seconds:g} s cap)", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())

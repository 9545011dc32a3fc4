"""The last MILP stage on MILP-refined root bounds: seconds per disjunct under HiGHS option
variants, and with a per-disjunct LP tightening of the last hidden layer.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/milp_disjunct_probe.py \\
        --instance vnncomp:256x4:prop_5_0.05 --refine-seconds 140 --variants base no-guide

The root bounds are computed as in ``bab_throughput.py``, then refined by
``refine_with_milp`` (two processes, ``--side-growth`` as ``VerifyOptions.refine_side_growth``)
for ``--refine-seconds``. Each open disjunct's compact MILP (``CompactEncoding``, relaxed by
``PROOF_SLACK``, as ``Query.milp_disjunct`` builds it) is then solved once per variant, the
disjuncts dealt to two processes, each with ``--limit`` seconds:

- ``base``: the engine's HiGHS options (``milp.MILP_OPTIONS``) and its guide objective (the
  violation row minimised);
- ``no-guide``: the same without an objective (a pure feasibility problem);
- ``no-node-cuts``, ``pscost-0``, ``no-restart``: one HiGHS option changed (below);
- ``tighten-last``: first each unstable neuron of the last hidden layer gets its LP minimum
  and maximum over the region with the disjunct's violation row (bounds valid where a
  counterexample of that disjunct could be), then the MILP on those bounds.

The figure is the seconds per disjunct and their sum against ``base`` in the same run.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bab_throughput import instance, root  # noqa: E402

HIGHS_VARIANTS = {
    "base": {},
    "no-guide": {},
    "tighten-last": {},
    "no-node-cuts": {"mip_allow_cut_separation_at_nodes": False},
    "pscost-0": {"mip_pscost_minreliable": 0},
    "no-restart": {"mip_allow_restart": False},
}


def tighten_last_layer(net, bounds, c, d):
    """A copy of ``bounds`` whose last hidden layer holds the LP minimum and maximum of each
    unstable neuron over the region with ``C y <= d`` (padded as every LP bound is)."""
    import highspy

    from napkit.verify.compact_milp import CompactEncoding
    from napkit.verify.tolerances import LP_BOUND_PAD, PROOF_SLACK

    out = copy.deepcopy(bounds)
    enc = CompactEncoding(net, out, slack=PROOF_SLACK)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.passModel(enc._lp(enc.output_rows(c, d), None, relax=True))
    first = net.n_inputs  # the z columns of the last hidden layer: after 3 columns per unstable below
    for lo, up in zip(out.lower[:-1], out.upper[:-1], strict=True):
        first += 3 * int(((lo < 0) & (up > 0)).sum())
    lo, up = out.lower[-1], out.upper[-1]
    unst = np.flatnonzero((lo < 0) & (up > 0))
    n = enc.n_col
    for i, col in zip(unst, first + np.arange(unst.size), strict=True):
        for sense in (1.0, -1.0):
            cost = np.zeros(n)
            cost[col] = sense
            h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                continue
            v = sense * h.getInfo().objective_function_value
            pad = LP_BOUND_PAD * (1.0 + abs(v))
            if sense > 0:
                lo[i] = max(lo[i], v - pad)
            else:
                up[i] = min(up[i], v + pad)
    return out


def solve_rows(net, bounds, c, d, rows, variant: str, limit: float):
    """(row, status, seconds, tightening seconds) of each disjunct row under ``variant``."""
    from napkit.verify import milp as milp_module

    saved = dict(milp_module.MILP_OPTIONS)
    milp_module.MILP_OPTIONS.update(HIGHS_VARIANTS[variant])
    try:
        return [_solve_row(net, bounds, c, d, r, variant, limit) for r in rows]
    finally:  # the first part runs in this process: the next variant starts from the engine's
        milp_module.MILP_OPTIONS.clear()
        milp_module.MILP_OPTIONS.update(saved)


def _solve_row(net, bounds, c, d, r: int, variant: str, limit: float):
    from napkit.verify.compact_milp import CompactEncoding
    from napkit.verify.tolerances import PROOF_SLACK

    t = time.monotonic()
    b = tighten_last_layer(net, bounds, c[r : r + 1], d[r : r + 1]) if variant == "tighten-last" else bounds
    prep = time.monotonic() - t
    enc = CompactEncoding(net, b, slack=PROOF_SLACK)
    if variant == "no-guide":
        res = enc._solve(enc.output_rows(c[r : r + 1], d[r : r + 1]), None, limit, False)
    else:
        res = enc.solve(c[r : r + 1], d[r : r + 1], time_limit=limit)
    return r, res.status, res.seconds, prep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", default="vnncomp:256x4:prop_5_0.05")
    ap.add_argument("--refine-seconds", type=float, default=140.0)
    ap.add_argument("--side-growth", type=float, default=2.0)
    ap.add_argument("--limit", type=float, default=120.0, help="HiGHS seconds per disjunct")
    ap.add_argument("--variants", nargs="+", default=["base", "no-guide"], choices=sorted(HIGHS_VARIANTS))
    args = ap.parse_args(argv)
    from napkit.verify.forked import fork_map
    from napkit.verify.optimized import one_thread
    from napkit.verify.refine import refine_with_milp

    with one_thread():
        net, prop = instance(args.instance)
        b, c, d, n_unst = root(net, prop, 6.0)
        st = refine_with_milp(net, b, time.monotonic() + args.refine_seconds, workers=2,
                              side_growth=args.side_growth)
        print(f"# {args.instance}: {n_unst} unstable at the root, {b.n_unstable} after the refinement "
              f"({st.passes} passes, {st.seconds:.0f} s); {c.shape[0]} open disjuncts, two processes, "
              f"{args.limit:g} s per disjunct\n")
        print("| variant | seconds per disjunct (row: outcome s) | sum of MILP s | tightening s |")
        print("|---|---|---|---|")
        totals = {}
        for variant in args.variants:
            parts = [list(range(c.shape[0]))[w::2] for w in range(2)]
            got = fork_map(lambda rows, v=variant: solve_rows(net, b, c, d, rows, v, args.limit), parts,
                           time.monotonic() + args.limit * len(parts[0]) + 120)
            recs = sorted(r for part in got if part is not None for r in part)
            totals[variant] = sum(s for _, _, s, _ in recs)
            cells = " ".join(f"{r}: {'ok' if st == 'infeasible' else st} {s:.1f}" for r, st, s, _ in recs)
            print(f"| {variant} | {cells} | {totals[variant]:.1f} | {sum(p for *_, p in recs):.1f} |", flush=True)
        if "base" in totals:
            for variant, total in totals.items():
                print(f"\n{variant}: {total:.1f} s against base {totals['base']:.1f} s "
                      f"({total / max(totals['base'], 1e-9):.2f}x)", end="")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
  counterexample of that disjunct could be), then the MILP on those bounds;
- ``ideal-cuts``: ``CUT_ROUNDS`` rounds of root separation of the ideal-formulation ReLU cuts
  (``napkit.verify.ideal_cuts``) added as rows, then the MILP;
- ``split-top``: the disjunct split on the neuron branch and bound would split first, each
  half's intermediate bounds re-optimised, one MILP per half (the seconds are both halves');
- ``scip``: the same model in SCIP (``pyscipopt``, one thread), when it is installed;
- ``combined``: one MILP for all the disjuncts at once (selector binaries), not per row.

``--rows`` picks disjunct rows; ``--save-bounds``/``--load-bounds`` keep the refined bounds
so that variants can be compared on the same bounds across runs. A variant whose disjuncts
were not all refuted gets no ratio.

The figure is the seconds per disjunct and their sum against ``base`` in the same run.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import pickle
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
    "ideal-cuts": {},
    "split-top": {},
    "scip": {},
}
COMBINED = "combined"  # one MILP over every disjunct at once (not per row)
CUT_ROUNDS = 3  # root separation rounds of ``ideal-cuts`` (the LP bound stalled after 3 on prop_7_0.05)


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
    lo, up = out.lower[-1], out.upper[-1]
    last = enc.layout[-1]
    n = enc.n_col
    for i, col in zip(last.neurons, last.z, strict=True):
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


def with_ideal_cuts(enc, rows, cost, rounds: int = CUT_ROUNDS):
    """The disjunct's MILP with ``rounds`` rounds of root separation of ideal cuts added as rows:
    (HighsLp with integrality, cuts added, the last LP bound of the guide objective)."""
    import highspy

    from napkit.verify.ideal_cuts import IdealCuts

    cutter = IdealCuts(enc)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.passModel(enc._lp(rows, cost, relax=True))
    added, bound = 0, float("nan")
    for _ in range(rounds):
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        bound = h.getInfo().objective_function_value
        found = cutter.add_to(h, np.asarray(h.getSolution().col_value)).size
        added += found
        if not found:
            break
    lp = h.getLp()
    vt = highspy.HighsVarType
    lp.integrality_ = [vt.kInteger if q else vt.kContinuous for q in enc.integ]
    return lp, added, bound


def _run_milp(enc, lp, limit: float) -> str:
    """HiGHS on ``lp`` with the engine's MILP options; "infeasible" (refuted) or its status."""
    import highspy

    from napkit.verify.milp import MILP_OPTIONS, hard_deadline

    h = highspy.Highs()
    for name, value in MILP_OPTIONS.items():
        h.setOptionValue(name, value)
    h.setOptionValue("time_limit", limit)
    h.setOptionValue("mip_max_improving_sols", 1)
    h.passModel(lp)
    hard_deadline(h, time.monotonic() + limit)
    h.run()
    st, codes = h.getModelStatus(), highspy.HighsModelStatus
    if st == codes.kInfeasible:
        return "infeasible"
    return "timeout" if st in (codes.kTimeLimit, codes.kInterrupt) else h.modelStatusToString(st)


def _run_scip(lp, limit: float) -> str:
    """SCIP (pyscipopt, one thread, stop at the first solution) on the same model, via MPS."""
    import tempfile

    import highspy
    import pyscipopt

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "disjunct.mps")
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.passModel(lp)
        h.writeModel(path)
        m = pyscipopt.Model()
        m.hideOutput()
        m.readProblem(path)
    m.setParam("limits/time", limit)
    m.setParam("limits/solutions", 1)
    m.optimize()
    return m.getStatus()


def split_top(net, bounds, c, d, r: int, limit: float) -> tuple[str, float]:
    """Disjunct ``r`` split on the neuron branch and bound would split first, each half's
    intermediate bounds re-optimised below it, then a MILP per half: (outcome, seconds)."""
    from napkit.verify.bab import branching_score
    from napkit.verify.compact_milp import CompactEncoding
    from napkit.verify.optimized import optimize_rows, tighten_optimized, with_phases
    from napkit.verify.tolerances import PROOF_SLACK

    t0 = time.monotonic()
    n_h = len(net.layer_sizes)
    _, info = optimize_rows(net, bounds, n_h, c[r : r + 1], -d[r : r + 1], iters=20)
    scores = {k: branching_score(info["layers"][k], coef)[0].numpy() for k, coef in info["coefs"].items()}
    k = max(scores, key=lambda q: scores[q].max())
    j = int(scores[k].argmax())
    base = bounds.phases or [np.zeros(lo.size, np.int8) for lo in bounds.lower]
    outcome = "infeasible"
    for sign in (1, -1):
        phases = [p.copy() for p in base]
        phases[k][j] = sign
        sub = with_phases(bounds, phases)
        if not sub.vacuous:
            tighten_optimized(net, sub, iters=20, layers=list(range(k + 1, n_h)))
        if sub.vacuous:
            continue
        left = limit - (time.monotonic() - t0)
        res = CompactEncoding(net, sub, slack=PROOF_SLACK).solve(c[r : r + 1], d[r : r + 1], time_limit=left)
        if res.status != "infeasible":
            outcome = res.status
            break
    return outcome, time.monotonic() - t0


def combined(net, bounds, c, d, limit: float) -> tuple[str, float]:
    """One MILP for every disjunct: binaries s_i (sum 1) select a disjunct and t, minimised, is at
    least the selected violation row: c_i y - d_i - t <= M_i (1 - s_i), t <= PROOF_SLACK;
    infeasible refutes them all. M_i from the columns' boxes. (outcome, seconds)."""
    import highspy

    from napkit.verify.compact_milp import CompactEncoding
    from napkit.verify.tolerances import PROOF_SLACK

    t0 = time.monotonic()
    enc = CompactEncoding(net, bounds, slack=PROOF_SLACK)
    g, r0 = c @ enc.target, c @ enc.offset - d
    lo = np.minimum(g * enc.col_lo, g * enc.col_hi).sum(1) + r0
    hi = np.maximum(g * enc.col_lo, g * enc.col_hi).sum(1) + r0
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(enc._lp(None, None, relax=False))
    n, m, t_lo = enc.n_col, c.shape[0], float(lo.min())
    none_i, none_v = np.array([], np.int32), np.array([])
    h.addCol(1.0, t_lo, PROOF_SLACK, 0, none_i, none_v)
    sel = n + 1 + np.arange(m, dtype=np.int32)
    for col in sel:
        h.addCol(0.0, 0.0, 1.0, 0, none_i, none_v)
        h.changeColIntegrality(int(col), highspy.HighsVarType.kInteger)
    h.addRow(1.0, 1.0, m, sel, np.ones(m))
    for i in range(m):
        big = float(hi[i] - t_lo)
        nz = np.flatnonzero(g[i])
        cols = np.concatenate([nz, [n, sel[i]]]).astype(np.int32)
        h.addRow(-highspy.kHighsInf, big - r0[i], cols.size, cols, np.concatenate([g[i][nz], [-1.0, big]]))
    left = limit - (time.monotonic() - t0)
    return _run_milp(enc, h.getLp(), left), time.monotonic() - t0


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
    if variant == "split-top":
        status, secs = split_top(net, bounds, c, d, r, limit)
        return r, status, secs, 0.0
    b = tighten_last_layer(net, bounds, c[r : r + 1], d[r : r + 1]) if variant == "tighten-last" else bounds
    enc = CompactEncoding(net, b, slack=PROOF_SLACK)
    rows = enc.output_rows(c[r : r + 1], d[r : r + 1])
    cost = np.zeros(enc.n_col)
    np.add.at(cost, enc.out_cols, rows[5][0])  # the guide, as ``MilpEncoding.solve``
    if variant in ("ideal-cuts", "scip"):
        lp, _, _ = with_ideal_cuts(enc, rows, cost) if variant == "ideal-cuts" else (enc._lp(rows, cost), 0, 0)
        prep = time.monotonic() - t
        status = _run_milp(enc, lp, limit) if variant == "ideal-cuts" else _run_scip(lp, limit)
        return r, status, time.monotonic() - t, prep
    prep = time.monotonic() - t
    if variant == "no-guide":
        res = enc._solve(rows, None, limit, False)
    else:
        res = enc.solve(c[r : r + 1], d[r : r + 1], time_limit=limit)
    return r, res.status, res.seconds, prep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", default="vnncomp:256x4:prop_5_0.05")
    ap.add_argument("--refine-seconds", type=float, default=140.0)
    ap.add_argument("--side-growth", type=float, default=2.0)
    ap.add_argument("--limit", type=float, default=120.0, help="HiGHS seconds per disjunct")
    ap.add_argument("--variants", nargs="+", default=["base", "no-guide"],
                    choices=sorted([*HIGHS_VARIANTS, COMBINED]))
    ap.add_argument("--rows", type=int, nargs="+", help="only these disjunct rows (default: all)")
    ap.add_argument("--save-bounds", type=Path, help="pickle the refined bounds here")
    ap.add_argument("--load-bounds", type=Path, help="refined bounds pickled by --save-bounds (no refinement)")
    args = ap.parse_args(argv)
    if "scip" in args.variants and importlib.util.find_spec("pyscipopt") is None:
        print("the scip variant needs pyscipopt (pip install pyscipopt); it is not installed", file=sys.stderr)
        return 2
    from napkit.verify.forked import fork_map
    from napkit.verify.optimized import one_thread
    from napkit.verify.refine import refine_with_milp

    with one_thread():
        net, prop = instance(args.instance)
        if args.load_bounds is not None:
            with open(args.load_bounds, "rb") as f:
                saved = pickle.load(f)
            if saved["instance"] != args.instance:
                raise SystemExit(f"{args.load_bounds} holds {saved['instance']}, not {args.instance}")
            b, c, d, n_unst, how = saved["bounds"], saved["c"], saved["d"], saved["root_unstable"], saved["how"]
        else:
            b, c, d, n_unst = root(net, prop, 6.0)
            st = refine_with_milp(net, b, time.monotonic() + args.refine_seconds, workers=2,
                                  side_growth=args.side_growth)
            how = f"{st.passes} passes, {st.seconds:.0f} s"
        if args.save_bounds is not None:
            with open(args.save_bounds, "wb") as f:
                pickle.dump({"instance": args.instance, "bounds": b, "c": c, "d": d, "root_unstable": n_unst,
                             "how": how}, f)
        print(f"# {args.instance}: {n_unst} unstable at the root, {b.n_unstable} after the refinement "
              f"({how}); {c.shape[0]} open disjuncts, two processes, {args.limit:g} s per disjunct\n")
        print("| variant | seconds per disjunct (row: outcome s) | sum of MILP s | tightening s |")
        print("|---|---|---|---|")
        totals, decided = {}, {}
        rows = list(range(c.shape[0])) if args.rows is None else args.rows
        for variant in args.variants:
            if variant == COMBINED:
                status, secs = combined(net, b, c[rows], d[rows], args.limit)
                totals[variant], decided[variant] = secs, status == "infeasible"
                print(f"| {variant} | rows {rows} at once: {'ok' if status == 'infeasible' else status} "
                      f"{secs:.1f} | {secs:.1f} | - |", flush=True)
                continue
            parts = [rows[w::2] for w in range(2)]
            got = fork_map(lambda part, v=variant: solve_rows(net, b, c, d, part, v, args.limit), parts,
                           time.monotonic() + args.limit * len(parts[0]) + 120)
            recs = sorted(r for part in got if part is not None for r in part)
            totals[variant] = sum(s for _, _, s, _ in recs)
            decided[variant] = len(recs) == len(rows) and all(st == "infeasible" for _, st, _, _ in recs)
            cells = " ".join(f"{r}: {'ok' if st == 'infeasible' else st} {s:.1f}" for r, st, s, _ in recs)
            print(f"| {variant} | {cells} | {totals[variant]:.1f} | {sum(p for *_, p in recs):.1f} |", flush=True)
        if "base" in totals:
            for variant, total in totals.items():
                ratio = f"{total / max(totals['base'], 1e-9):.2f}x" if decided[variant] else "not all refuted"
                print(f"\n{variant}: {total:.1f} s against base {totals['base']:.1f} s ({ratio})", end="")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The complete method: a big-M MILP of the network on HiGHS (highspy 1.14.0, low-level API).

Columns: the inputs (box bounds), every hidden pre-activation ``z`` (its propagated
bounds, so a phase is a column bound: active ``z >= 0``, inactive ``z <= 0``), and for
each neuron that is still unstable a post-activation ``a`` and a binary ``d`` with

    a >= z,   a <= z - l (1 - d),   a <= u d,   a >= 0.

Stable neurons are linear (``a = z`` or ``a = 0``). Rows are built as sparse CSR arrays
and passed with ``Highs.passModel(HighsLp)``. A query adds the rows ``C y <= d`` of one
disjunct of the violation and stops at the first feasible point: "infeasible" means no
counterexample in that disjunct (up to HiGHS's feasibility tolerances, 1e-6/1e-7).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds, check_bounds_of
from napkit.verify.tolerances import LP_BOUND_PAD

_INF = highspy.kHighsInf

# HiGHS options of every MILP solve here and in ``refine.py``: one thread, no presolve (HiGHS
# 1.14's MIP presolve, probing, ignores time_limit: 5 s asked, 32 s taken), no primal
# heuristics (the attack and pattern-fixed LPs look for points; the refinement only uses the
# dual bound; RINS/RENS/root reduced cost ran 10 s between two interrupt checks on a 256x2
# domain query that, without them, is infeasible in 4 s), and no symmetry detection (0.4-0.6 s
# of each 0.9-1.5 s MILP of a 256x4 NAP-local query, all decided at the root node).
MILP_OPTIONS = {
    "output_flag": False,
    "threads": 1,
    "presolve": "off",
    "mip_detect_symmetry": False,
    "mip_heuristic_effort": 0.0,
    "mip_heuristic_run_feasibility_jump": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
}


@dataclass
class MilpResult:
    status: str  # "infeasible", "feasible", "timeout", "error"
    x: np.ndarray | None
    seconds: float
    message: str = ""


class MilpEncoding:
    """The network over the region of ``bounds`` as MILP columns and CSR rows."""

    def __init__(self, net: ReluNetwork, bounds: Bounds, strict: float = 0.0, slack: float = 0.0) -> None:
        """``strict`` > 0 asks for phases and a violation that hold strictly, by that margin
        (a point that survives the exact re-check); ``slack`` > 0 relaxes the violation rows
        by that much (a proof by infeasibility then errs on the safe side)."""
        if not (strict >= 0 and slack >= 0):
            raise NapkitError(f"strict and slack are margins: both >= 0, got {strict} and {slack}")
        check_bounds_of(net, bounds)
        if bounds.vacuous:
            raise NapkitError("no MILP for a vacuous region")
        self.net = net
        n_in = net.n_inputs
        col_lo = [bounds.box.lower]
        col_hi = [bounds.box.upper]
        integ: list[np.ndarray] = [np.zeros(n_in, dtype=bool)]
        n_col = n_in
        starts, idx, val, rlo, rhi = [], [], [], [], []
        prev_cols = np.arange(n_in)  # columns of the previous layer's outputs
        prev_keep = np.arange(n_in)  # which of its units have a column (others are 0)
        nnz = 0
        self.z_cols: list[np.ndarray] = []
        for k, (lo, up) in enumerate(zip(bounds.lower, bounds.upper, strict=True)):
            w, b = net.weights[k], net.biases[k]
            m = w.shape[0]
            zlo, zhi = lo.copy(), up.copy()
            if strict > 0 and bounds.phases is not None:
                p = bounds.phases[k]
                zlo[p > 0] = np.maximum(zlo[p > 0], strict)
                zhi[p < 0] = np.minimum(zhi[p < 0], -strict)
            z_cols = n_col + np.arange(m)
            n_col += m
            col_lo.append(zlo)
            col_hi.append(zhi)
            integ.append(np.zeros(m, dtype=bool))
            self.z_cols.append(z_cols)
            # z - W a_prev = b
            ws = w[:, prev_keep]
            r_idx = np.hstack([z_cols[:, None], np.broadcast_to(prev_cols, (m, prev_cols.size))])
            r_val = np.hstack([np.ones((m, 1)), -ws])
            per = 1 + prev_cols.size
            starts.append(nnz + per * np.arange(m))
            idx.append(r_idx.ravel())
            val.append(r_val.ravel())
            rlo.append(b)
            rhi.append(b)
            nnz += per * m
            act = lo >= 0
            unst = (lo < 0) & (up > 0)
            u_ids = np.flatnonzero(unst)
            nu = u_ids.size
            a_cols = n_col + np.arange(nu)
            d_cols = n_col + nu + np.arange(nu)
            n_col += 2 * nu
            col_lo += [np.zeros(nu), np.zeros(nu)]
            col_hi += [up[unst], np.ones(nu)]
            integ += [np.zeros(nu, dtype=bool), np.ones(nu, dtype=bool)]
            zu, lu, uu = z_cols[unst], lo[unst], up[unst]
            # a - z >= 0
            starts.append(nnz + 2 * np.arange(nu))
            idx.append(np.stack([a_cols, zu], 1).ravel())
            val.append(np.tile([1.0, -1.0], nu))
            rlo.append(np.zeros(nu))
            rhi.append(np.full(nu, _INF))
            nnz += 2 * nu
            # a - z - l d <= -l
            starts.append(nnz + 3 * np.arange(nu))
            idx.append(np.stack([a_cols, zu, d_cols], 1).ravel())
            val.append(np.stack([np.ones(nu), -np.ones(nu), -lu], 1).ravel())
            rlo.append(np.full(nu, -_INF))
            rhi.append(-lu)
            nnz += 3 * nu
            # a - u d <= 0
            starts.append(nnz + 2 * np.arange(nu))
            idx.append(np.stack([a_cols, d_cols], 1).ravel())
            val.append(np.stack([np.ones(nu), -uu], 1).ravel())
            rlo.append(np.full(nu, -_INF))
            rhi.append(np.zeros(nu))
            nnz += 2 * nu
            keep = np.flatnonzero(act | unst)
            cols = np.full(m, -1)
            cols[act] = z_cols[act]
            cols[unst] = a_cols
            prev_keep, prev_cols = keep, cols[keep]
        self.n_col = n_col
        self.n_in = n_in
        self.out_keep, self.out_cols = prev_keep, prev_cols
        self.col_lo = np.concatenate(col_lo)
        self.col_hi = np.concatenate(col_hi)
        self.integ = np.concatenate(integ)
        self.n_binary = int(self.integ.sum())
        self.starts = np.concatenate(starts).astype(np.int32) if starts else np.zeros(0, np.int32)
        self.idx = np.concatenate(idx).astype(np.int32)
        self.val = np.concatenate(val)
        self.rlo = np.concatenate(rlo)
        self.rhi = np.concatenate(rhi)
        self.strict, self.slack = strict, slack

    def output_rows(self, c: np.ndarray, d: np.ndarray):
        """CSR rows of ``C y <= d - strict + slack`` over the last hidden layer's columns."""
        c = np.atleast_2d(c)
        g = c @ self.net.weights[-1][:, self.out_keep]
        rhs = d - c @ self.net.biases[-1] - self.strict + self.slack
        r = c.shape[0]
        n = self.out_cols.size
        return (
            n * np.arange(r),
            np.broadcast_to(self.out_cols, (r, n)).ravel(),
            g.ravel(),
            np.full(r, -_INF),
            rhs,
            g,
        )

    def _lp(self, rows=None, cost=None, relax: bool = False) -> highspy.HighsLp:
        starts, idx, val, rlo, rhi = self.starts, self.idx, self.val, self.rlo, self.rhi
        if rows is not None:
            s2, i2, v2, lo2, hi2 = rows[:5]
            starts = np.concatenate([starts, s2 + idx.size]).astype(np.int32)
            idx = np.concatenate([idx, i2]).astype(np.int32)
            val = np.concatenate([val, v2])
            rlo, rhi = np.concatenate([rlo, lo2]), np.concatenate([rhi, hi2])
        n_col = self.n_col
        lp = highspy.HighsLp()
        lp.num_col_ = n_col
        lp.num_row_ = rlo.size
        lp.col_cost_ = np.zeros(n_col) if cost is None else cost
        lp.col_lower_ = self.col_lo
        lp.col_upper_ = self.col_hi
        lp.row_lower_ = rlo
        lp.row_upper_ = rhi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.num_col_ = n_col
        lp.a_matrix_.num_row_ = rlo.size
        lp.a_matrix_.start_ = np.append(starts, idx.size).astype(np.int32)
        lp.a_matrix_.index_ = idx
        lp.a_matrix_.value_ = val
        if not relax and self.n_binary:
            vt = highspy.HighsVarType
            lp.integrality_ = [vt.kInteger if b else vt.kContinuous for b in self.integ]
        return lp

    def solve(
        self, c: np.ndarray | None = None, d: np.ndarray | None = None,
        time_limit: float = 60.0, relax: bool = False, stop=None, ipm: bool = False,
    ) -> MilpResult:
        """Is there a point of the region with ``C y <= d`` (or any point, without C)?
        ``stop()`` (optional, polled by HiGHS's callbacks) ends the solve early when True.
        ``ipm``: HiGHS's MIP solves its LPs with the interior point method (``mip_lp_solver``):
        its root LP with the dense input block took 0.25 instead of 0.46 CPU-s on 256x4
        NAP-local disjuncts decided at the root, but 2-4 times longer where the root needs many
        cut rounds (simplex re-solves from the interior point's basis)."""
        rows, cost = None, None
        if c is not None:
            rows = self.output_rows(c, d)
            cost = np.zeros(self.n_col)
            np.add.at(cost, self.out_cols, rows[5][0])  # guide: minimise the first row
        return self._solve(rows, cost, time_limit, relax, stop, ipm)

    def _solve(self, rows, cost, time_limit: float, relax: bool, stop=None, ipm: bool = False) -> MilpResult:
        t0 = time.monotonic()
        if time_limit <= 0:
            return MilpResult("timeout", None, 0.0, "no time left")
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("mip_max_improving_sols", 1)
        h.setOptionValue("threads", 1)
        if not relax:
            for name, value in MILP_OPTIONS.items():
                h.setOptionValue(name, value)
            if ipm:
                h.setOptionValue("mip_lp_solver", "ipm")
        h.passModel(self._lp(rows, cost, relax))
        hard_deadline(h, t0 + float(time_limit), stop)
        h.run()
        st = h.getModelStatus()
        secs = time.monotonic() - t0
        S = highspy.HighsModelStatus
        info = h.getInfo()
        has_sol = info.primal_solution_status == 2
        if st == S.kInfeasible:
            return MilpResult("infeasible", None, secs, "HiGHS: infeasible")
        if has_sol and st in (S.kOptimal, S.kSolutionLimit, S.kTimeLimit, S.kObjectiveTarget,
                              S.kInterrupt, S.kObjectiveBound):
            x = np.asarray(h.getSolution().col_value[: self.n_in])
            return MilpResult("feasible", x, secs, f"HiGHS: {h.modelStatusToString(st)}")
        if st in (S.kTimeLimit, S.kInterrupt):
            return MilpResult("timeout", None, secs, "MILP time limit")
        return MilpResult("error", None, secs, f"HiGHS: {h.modelStatusToString(st)}")


def hard_deadline(h: highspy.Highs, deadline: float, stop=None) -> None:
    """Interrupt ``h`` past ``deadline`` (``time.monotonic``), or once ``stop()`` is True, from
    its MIP and simplex callbacks.

    HiGHS's own ``time_limit`` is not checked in every phase of its branch and bound (a 3 s
    limit ran 12 s on a 256x2 domain query); the interrupt callbacks are.
    """

    def check(event) -> None:
        if time.monotonic() > deadline or (stop is not None and stop()):
            event.interrupt()

    h.cbMipInterrupt.subscribe(check)
    h.cbSimplexInterrupt.subscribe(check)


def tighten_bounds(net: ReluNetwork, bounds: Bounds, deadline: float) -> int:
    """LP-based tightening of unstable neurons, layer by layer (in place).

    For each unstable neuron of layer k the LP relaxation of layers < k gives its min and
    max. Returns how many neurons became stable. Stops at ``deadline``.
    """
    check_bounds_of(net, bounds)
    gained = 0
    for k in range(len(bounds.lower)):
        unst = np.flatnonzero((bounds.lower[k] < 0) & (bounds.upper[k] > 0))
        if unst.size == 0:
            continue
        enc = MilpEncoding(net, bounds)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.passModel(enc._lp(relax=True))
        cols = enc.z_cols[k]
        S = highspy.HighsModelStatus
        for i in unst:
            for sense in (1.0, -1.0):
                left = deadline - time.monotonic()
                if left <= 0:
                    return gained
                h.setOptionValue("time_limit", left)
                h.changeColCost(int(cols[i]), sense)
                h.run()
                h.changeColCost(int(cols[i]), 0.0)
                if h.getModelStatus() != S.kOptimal:
                    continue
                v = sense * h.getInfo().objective_function_value
                pad = LP_BOUND_PAD * (1.0 + abs(v))
                if sense > 0:
                    bounds.lower[k][i] = max(bounds.lower[k][i], v - pad)
                else:
                    bounds.upper[k][i] = min(bounds.upper[k][i], v + pad)
            if bounds.lower[k][i] >= 0 or bounds.upper[k][i] <= 0:
                gained += 1
    return gained

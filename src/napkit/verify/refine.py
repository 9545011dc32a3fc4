"""MILP-refined root bounds: per unstable neuron, HiGHS's dual bound on its minimum and maximum.

alpha-beta-CROWN's mnist_fc configuration refines the root's intermediate bounds this way before
branch and bound (with Gurobi on many processes). On two cores the MILP has to be cheap, so the
model of the layers below layer k is *compact*: a neuron that is stable over the region is
substituted out (active: its affine expression, inactive: 0), so only the unstable neurons of
the layers below get columns ``z, a, d`` and a row ``z = (affine in x and the a's below)``. On
VNN-COMP 256x4 prop_5_0.05, hidden layer 1: 39 600 nonzeros instead of 201 310, the same LP
optimum to 1e-14, and a tighter dual bound per time limit. HiGHS's primal heuristics are off:
only the dual bound is used, and they took most of each solve.

A neuron whose phase the query fixes keeps a ranged row (its interval is a constraint of the
region, not a consequence of the box). The dual bound of a time-limited MILP is a valid bound
of the neuron over the region; it is widened by ``REFINE_BOUND_PAD`` before use. After a
layer, the optimised bounds of the layers above are recomputed from the tighter relaxation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds
from napkit.verify.optimized import tighten_optimized
from napkit.verify.tolerances import REFINE_BOUND_PAD

_INF = highspy.kHighsInf

# HiGHS options of a refinement solve: one thread, no presolve (HiGHS 1.14's MIP presolve
# ignores time limits), and none of the primal heuristics (RINS, RENS, feasibility jump,
# reduced-cost fixing): their incumbents are never used, and on 256x4 layer 1 they took
# more than half of each 5 s solve; without them the same 5 s explored 116 nodes, not 1.
_DUAL_BOUND_OPTIONS = {
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
class RefineStats:
    asked: int = 0  # MILP solves (two per neuron: its minimum and its maximum)
    stabilised: int = 0
    narrowed: int = 0  # neurons whose interval shrank
    seconds: float = 0.0


@dataclass
class LayerModel:
    """The compact MILP of the layers below ``k`` and layer k's pre-activations as rows over
    its columns: ``z_k = target @ columns + offset``."""

    lp: highspy.HighsLp
    target: np.ndarray
    offset: np.ndarray


class _Rows:
    """Constraint rows collected as (row, column, value) triplets, with their bounds."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.n = 0

    def dense(self, coef: np.ndarray, lo: np.ndarray, hi: np.ndarray, extra=None) -> None:
        """Rows ``lo <= coef @ columns (+ 1 * column extra[r]) <= hi``."""
        r, c = np.nonzero(coef)
        rows, cols, vals = [r], [c], [coef[r, c]]
        if extra is not None:
            rows.append(np.arange(extra.size))
            cols.append(extra)
            vals.append(np.ones(extra.size))
        self._add(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), lo, hi)

    def sparse(self, cols: tuple, vals: tuple, lo: np.ndarray, hi: np.ndarray) -> None:
        """Row r: ``lo[r] <= sum_j vals[j][r] * column cols[j][r] <= hi[r]``."""
        m = lo.size
        self._add(np.repeat(np.arange(m), len(cols)), np.stack(cols, 1).ravel(),
                  np.stack(vals, 1).ravel(), lo, hi)

    def _add(self, r, c, v, lo, hi) -> None:
        self.r.append(r + self.n)
        self.c.append(c)
        self.v.append(v)
        self.lo.append(lo)
        self.hi.append(hi)
        self.n += lo.size

    def csr(self, n_col: int) -> sp.csr_matrix:
        m = sp.coo_matrix((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
                          shape=(self.n, n_col)).tocsr()
        m.sum_duplicates()
        return m


def layer_model(net: ReluNetwork, bounds: Bounds, k: int) -> LayerModel:
    """Columns: the inputs (the box), then per layer below k, for its unstable neurons, the
    pre-activation ``z`` (its bounds), the post-activation ``a`` in [0, u] and a binary ``d``:
    ``a >= z``, ``a <= z - l (1 - d)``, ``a <= u d``. Every layer's output is carried as an
    affine map of the columns so far (dense numpy), so stable neurons need no rows."""
    n_in = net.n_inputs
    lows, highs, binary = [bounds.box.lower], [bounds.box.upper], [np.zeros(n_in, dtype=bool)]
    rows = _Rows()
    post, post_c = np.eye(n_in), np.zeros(n_in)
    n_col = n_in
    for j in range(k):
        w = net.weights[j]
        pre, pre_c = w @ post, w @ post_c + net.biases[j]
        lo, up = bounds.lower[j], bounds.upper[j]
        unst = np.flatnonzero((lo < 0) & (up > 0))
        nu = unst.size
        z, a, d = (n_col + np.arange(nu) + s * nu for s in range(3))
        rows.dense(-pre[unst], pre_c[unst], pre_c[unst], extra=z)  # z - pre = pre_c
        if bounds.phases is not None:  # a phase the query fixes is a constraint of the region
            fixed = np.flatnonzero(bounds.phases[j] != 0)
            rows.dense(pre[fixed], lo[fixed] - pre_c[fixed], up[fixed] - pre_c[fixed])
        ones, lu, uu = np.ones(nu), lo[unst], up[unst]
        rows.sparse((a, z), (ones, -ones), np.zeros(nu), np.full(nu, _INF))
        rows.sparse((a, z, d), (ones, -ones, -lu), np.full(nu, -_INF), -lu)
        rows.sparse((a, d), (ones, -uu), np.full(nu, -_INF), np.zeros(nu))
        lows += [lu, np.zeros(nu), np.zeros(nu)]
        highs += [uu, uu, np.ones(nu)]
        binary += [np.zeros(2 * nu, dtype=bool), np.ones(nu, dtype=bool)]
        act = lo >= 0
        nxt = np.zeros((w.shape[0], n_col + 3 * nu))
        nxt[act, :n_col] = pre[act]
        nxt[unst, a] = 1.0
        post, post_c, n_col = nxt, np.where(act, pre_c, 0.0), n_col + 3 * nu
    a_mat = rows.csr(n_col)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_col, rows.n
    lp.col_cost_ = np.zeros(n_col)
    lp.col_lower_, lp.col_upper_ = np.concatenate(lows), np.concatenate(highs)
    lp.row_lower_, lp.row_upper_ = np.concatenate(rows.lo), np.concatenate(rows.hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n_col, rows.n
    lp.a_matrix_.start_ = a_mat.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a_mat.indices.astype(np.int32)
    lp.a_matrix_.value_ = a_mat.data
    vt = highspy.HighsVarType
    lp.integrality_ = [vt.kInteger if b else vt.kContinuous for b in np.concatenate(binary)]
    w = net.weights[k]
    return LayerModel(lp, w @ post, w @ post_c + net.biases[k])


def _highs(lp: highspy.HighsLp) -> highspy.Highs:
    h = highspy.Highs()
    for name, value in _DUAL_BOUND_OPTIONS.items():
        h.setOptionValue(name, value)
    h.passModel(lp)
    return h


def _minimum(h: highspy.Highs, cost: np.ndarray, limit: float) -> float | None:
    """HiGHS's dual bound on ``min cost @ columns`` after at most ``limit`` seconds (a valid
    lower bound); +inf when the model is infeasible; None when no bound came out."""
    n = cost.size
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    h.setOptionValue("time_limit", float(limit))
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return np.inf
    bound = h.getInfo().mip_dual_bound
    ok = status in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit)
    return float(bound) if ok and np.isfinite(bound) else None


def refine_with_milp(
    net: ReluNetwork, bounds: Bounds, deadline: float, per_side: float = 0.3, opt_iters: int = 20,
) -> RefineStats:
    """In place: tighten every unstable neuron's interval, layer by layer from hidden layer 1
    (layer 0's bounds are exact over the box), by the MILP of the layers below."""
    t0 = time.monotonic()
    st = RefineStats()
    n_h = len(net.layer_sizes)
    for k in range(1, n_h):
        lo, up = bounds.lower[k], bounds.upper[k]
        unst = np.flatnonzero((lo < 0) & (up > 0))
        if time.monotonic() > deadline or bounds.vacuous:
            break
        if unst.size == 0:
            continue
        lo0, up0 = lo[unst].copy(), up[unst].copy()
        model = layer_model(net, bounds, k)
        h = _highs(model.lp)
        for i in unst:
            for sense in (1.0, -1.0):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                v = _minimum(h, sense * model.target[i], min(per_side, left))
                st.asked += 1
                if v is None:
                    continue
                if v == np.inf:  # no input of the region: the query is vacuous
                    bounds.vacuous = True
                    bounds.reason = "MILP-refined bounds: no input of the region follows the phases"
                    break
                value = sense * v + model.offset[i]
                pad = REFINE_BOUND_PAD * (1.0 + abs(value))
                if sense > 0:
                    lo[i] = max(lo[i], value - pad)
                else:
                    up[i] = min(up[i], value + pad)
            if bounds.vacuous:
                break
        st.narrowed += int(((lo[unst] > lo0) | (up[unst] < up0)).sum())
        st.stabilised += int(((lo[unst] >= 0) | (up[unst] <= 0)).sum())
        if (lo > up).any():
            bounds.vacuous = True
            bounds.reason = "MILP-refined bounds: no input of the region follows the phases"
        if bounds.vacuous:
            break
        if k + 1 < n_h and time.monotonic() < deadline:
            tighten_optimized(net, bounds, iters=opt_iters, deadline=deadline, layers=list(range(k + 1, n_h)))
    st.seconds = time.monotonic() - t0
    return st

"""MILP-refined root bounds: per unstable neuron, HiGHS's dual bound on its minimum and maximum.

alpha-beta-CROWN's mnist_fc configuration refines the root's intermediate bounds this way before
branch and bound (with Gurobi on many processes). On two cores the MILP has to be cheap: the
model of the layers below layer k is ``CompactEncoding`` (stable neurons substituted out), and
HiGHS's primal heuristics are off, since only the dual bound is used and they took most of each
solve. The dual bound of a time-limited MILP is a valid bound of the neuron over the region; it
is widened by ``REFINE_BOUND_PAD`` before use. After a layer, the optimised bounds of the layers
above are recomputed from the tighter relaxation. On VNN-COMP 256x4 prop_5_0.05, 0.3 s per side
on hidden layer 1 (81 s) moved the root bound from -0.82 to -0.43, 0.6 s per side to -0.30.

With ``cut_rounds`` > 0 (the engine's default, ``VerifyOptions.refine_cut_rounds``) each
neuron's bounds come instead from the LP of the same model strengthened by ideal-formulation
cuts (``ideal_cuts.cut_lp_bounds``): tighter and several times faster. The refinement then
proved 256x4 prop_5_0.05 by itself in 49 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds
from napkit.verify.compact_milp import CompactEncoding
from napkit.verify.forked import can_fork, fork_map, worker_count
from napkit.verify.ideal_cuts import cut_lp_bounds
from napkit.verify.milp import MILP_OPTIONS
from napkit.verify.optimized import tighten_optimized
from napkit.verify.tolerances import REFINE_BOUND_PAD


@dataclass
class RefineStats:
    asked: int = 0  # MILP solves (two per neuron: its minimum and its maximum)
    stabilised: int = 0
    narrowed: int = 0  # neurons whose interval shrank (counted once per pass)
    seconds: float = 0.0
    passes: int = 0  # over every hidden layer (the last one may be cut by the deadline)


def _highs(lp: highspy.HighsLp) -> highspy.Highs:
    h = highspy.Highs()
    for name, value in MILP_OPTIONS.items():
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


def _refine_neurons(enc: CompactEncoding, neurons: np.ndarray, lo: np.ndarray, up: np.ndarray,
                    per_side: float, deadline: float, cut_rounds: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """New (lower, upper) of ``neurons`` from the dual bounds of their min and max (with
    ``cut_rounds``: from the LP with that many rounds of ideal cuts per side instead,
    ``ideal_cuts.cut_lp_bounds``); the number of solves; True when the region is shown empty."""
    if cut_rounds > 0:
        new_lo, new_up, asked, empty = cut_lp_bounds(enc, neurons, cut_rounds, deadline)
        return np.maximum(lo[neurons], new_lo), np.minimum(up[neurons], new_up), asked, empty
    lo, up = lo[neurons].copy(), up[neurons].copy()
    h = _highs(enc._lp())
    asked = 0
    for j, i in enumerate(neurons):
        for sense in (1.0, -1.0):
            left = deadline - time.monotonic()
            if left <= 0:
                return lo, up, asked, False
            v = _minimum(h, sense * enc.target[i], min(per_side, left))
            asked += 1
            if v is None:
                continue
            if v == np.inf:
                return lo, up, asked, True
            value = sense * v + enc.offset[i]
            pad = REFINE_BOUND_PAD * (1.0 + abs(value))
            if sense > 0:
                lo[j] = max(lo[j], value - pad)
            else:
                up[j] = min(up[j], value + pad)
    return lo, up, asked, False


def _refine_layer(enc: CompactEncoding, neurons: np.ndarray, lo: np.ndarray, up: np.ndarray,
                  per_side: float, deadline: float, workers: int, cut_rounds: int = 0) -> tuple[int, bool]:
    """In place on ``lo``/``up``: the neurons dealt round-robin to ``workers`` processes (this
    one and forked ones); a slice whose process fails or overruns keeps its old bounds."""
    n = workers if can_fork() else 1
    slices = [neurons[w::n] for w in range(n)]
    slices = [part for part in slices if part.size]
    results = fork_map(lambda part: _refine_neurons(enc, part, lo, up, per_side, deadline, cut_rounds),
                       slices, deadline)
    asked, empty = 0, False
    for part, got in zip(slices, results, strict=True):
        if got is None:
            continue
        new_lo, new_up, n, shown_empty = got
        lo[part] = np.maximum(lo[part], new_lo)
        up[part] = np.minimum(up[part], new_up)
        asked += n
        empty |= shown_empty
    return asked, empty


def refine_with_milp(
    net: ReluNetwork, bounds: Bounds, deadline: float, per_side: float = 0.3, opt_iters: int = 20,
    workers: int | Callable[[], int] = 1, side_growth: float = 0.0, cut_rounds: int = 0,
) -> RefineStats:
    """In place: tighten every unstable neuron's interval, layer by layer from hidden layer 1
    (layer 0's bounds are exact over the box), by the MILP of the layers below, with
    ``workers`` processes per layer (a callable: asked again before each layer, as the cores
    another process holds may come free). A pass over every layer that ends before
    ``deadline`` is followed by another with ``per_side`` times ``side_growth`` (when > 1),
    from the tighter bounds, as long as the last pass narrowed some interval. ``cut_rounds`` > 0:
    each neuron's bounds come from the LP with that many rounds of ideal cuts per side
    (``ideal_cuts.py``) instead of a MILP of ``per_side`` seconds."""
    t0 = time.monotonic()
    st = RefineStats()
    while time.monotonic() < deadline and not bounds.vacuous:
        narrowed = _refine_pass(net, bounds, deadline, per_side, opt_iters, workers, st, cut_rounds)
        st.passes += 1
        if not narrowed or side_growth <= 1:
            break
        per_side *= side_growth
    st.seconds = time.monotonic() - t0
    return st


def _refine_pass(net: ReluNetwork, bounds: Bounds, deadline: float, per_side: float, opt_iters: int,
                 workers: int | Callable[[], int], st: RefineStats, cut_rounds: int = 0) -> int:
    """One pass over the hidden layers (``refine_with_milp``), counted into ``st``; the
    number of neurons it narrowed."""
    n_h = len(net.layer_sizes)
    narrowed = 0
    for k in range(1, n_h):
        lo, up = bounds.lower[k], bounds.upper[k]
        unst = np.flatnonzero((lo < 0) & (up > 0))
        if time.monotonic() > deadline or bounds.vacuous:
            break
        if unst.size == 0:
            continue
        lo0, up0 = lo[unst].copy(), up[unst].copy()
        asked, empty = _refine_layer(CompactEncoding(net, bounds, upto=k), unst, lo, up, per_side,
                                     deadline, worker_count(workers), cut_rounds)
        st.asked += asked
        moved = int(((lo[unst] > lo0) | (up[unst] < up0)).sum())
        narrowed += moved
        st.narrowed += moved
        st.stabilised += int(((lo[unst] >= 0) | (up[unst] <= 0)).sum())
        if empty or (lo > up).any():
            bounds.vacuous = True
            bounds.reason = "MILP-refined bounds: no input of the region follows the phases"
            break
        if k + 1 < n_h and time.monotonic() < deadline:
            tighten_optimized(net, bounds, iters=opt_iters, deadline=deadline, layers=list(range(k + 1, n_h)))
    return narrowed

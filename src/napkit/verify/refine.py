"""MILP-refined root bounds: ask HiGHS, per unstable neuron, "can it be positive / negative?".

Layer by layer from the second hidden layer, one MILP model of the layers below
(``MilpEncoding`` of the network cut after layer k, with a free row per neuron of layer k)
is passed once; each question only changes one row's bounds and stops at
the first feasible point. "Infeasible" (relaxed by ``PROOF_SLACK``, as the proving MILP) fixes
the neuron's phase for the whole region: ``z <= 0`` or ``z >= 0``. Neurons that points of the
region (attack iterates, witnesses) already show with both signs are skipped, the others are
asked most lopsided interval first. After a layer gained stable neurons, the optimised bounds
of the layers above are recomputed from the tighter relaxation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds
from napkit.verify.milp import MilpEncoding
from napkit.verify.optimized import tighten_optimized
from napkit.verify.properties import follows_phases
from napkit.verify.tolerances import PROOF_SLACK

_INF = highspy.kHighsInf


@dataclass
class RefineStats:
    asked: int = 0
    stabilised: int = 0
    feasible: int = 0
    skipped_by_points: int = 0
    seconds: float = 0.0


def _layer_model(net: ReluNetwork, bounds: Bounds, k: int) -> tuple[highspy.Highs, int]:
    """HiGHS holding the MILP of layers < k and one free row per neuron of layer k
    (``W_k a_{k-1}``); returns it and the index of the first such row."""
    cut = ReluNetwork(tuple(net.weights[: k + 1]), tuple(net.biases[: k + 1]))
    sub = Bounds(bounds.lower[:k], bounds.upper[:k], bounds.box,
                 None if bounds.phases is None else bounds.phases[:k])
    enc = MilpEncoding(cut, sub)
    n = net.layer_sizes[k]
    starts, idx, val, _, _, _ = enc.output_rows(np.eye(n), np.zeros(n))
    rows = (starts, idx, val, np.full(n, -_INF), np.full(n, _INF))
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_max_improving_sols", 1)
    # HiGHS 1.14's MIP presolve ignores time limits; the interrupt callbacks of
    # ``milp.hard_deadline`` stay set across re-solves of one model, so only time_limit here
    h.setOptionValue("presolve", "off")
    h.passModel(enc._lp(rows))
    return h, enc.rlo.size


def refine_with_milp(
    net: ReluNetwork, bounds: Bounds, deadline: float, points: np.ndarray | None = None,
    per_question: float = 1.0, opt_iters: int = 20,
) -> RefineStats:
    """In place: fix the phase of unstable neurons that a MILP shows cannot change sign."""
    t0 = time.monotonic()
    st = RefineStats()
    n_h = len(net.layer_sizes)
    pre = None
    if points is not None and len(points):
        pts = np.atleast_2d(points)
        _, pre_all = net.forward(pts)
        ok = bounds.box.contains(pts) & follows_phases(pre_all, bounds.phases)
        pre = [z[ok] for z in pre_all] if ok.any() else None
    S = highspy.HighsModelStatus
    for k in range(1, n_h):  # layer 0's bounds are exact over the box
        if time.monotonic() > deadline or bounds.vacuous:
            break
        lo, up = bounds.lower[k], bounds.upper[k]
        unst = np.flatnonzero((lo < 0) & (up > 0))
        if pre is not None and unst.size:
            both = (pre[k][:, unst] > 0).any(0) & (pre[k][:, unst] < 0).any(0)
            st.skipped_by_points += int(both.sum())
            unst = unst[~both]
        if unst.size == 0:
            continue
        lopsided = np.minimum(-lo[unst], up[unst]) / (up[unst] - lo[unst])
        unst = unst[np.argsort(lopsided)]
        h, row0 = _layer_model(net, bounds, k)
        b = net.biases[k]
        gained = 0
        for i in unst:
            # the side the interval leans away from first: that one is likelier infeasible
            sides = ("pos", "neg") if up[i] < -lo[i] else ("neg", "pos")
            for side in sides:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                r = row0 + int(i)
                if side == "pos":  # can z_i >= -slack?  W a >= -slack - b
                    h.changeRowBounds(r, -PROOF_SLACK - b[i], _INF)
                else:  # can z_i <= slack?  W a <= slack - b
                    h.changeRowBounds(r, -_INF, PROOF_SLACK - b[i])
                limit = min(per_question, left)
                h.setOptionValue("time_limit", limit)
                h.run()
                status = h.getModelStatus()  # read before the model changes (it resets it)
                found = h.getInfo().primal_solution_status == 2
                h.changeRowBounds(r, -_INF, _INF)
                st.asked += 1
                if status == S.kInfeasible:
                    if side == "pos":
                        up[i] = min(up[i], 0.0)
                    else:
                        lo[i] = max(lo[i], 0.0)
                    gained += 1
                    st.stabilised += 1
                    break
                if found:
                    st.feasible += 1
        if lo.size and (lo > up).any():
            bounds.vacuous = True
            bounds.reason = "MILP-refined bounds show no input of the region follows the phases"
            break
        if gained and k + 1 < n_h and time.monotonic() < deadline:
            tighten_optimized(net, bounds, iters=opt_iters, deadline=deadline, layers=list(range(k + 1, n_h)))
    st.seconds = time.monotonic() - t0
    return st

"""NAP queries at depth: data points first, then a MILP with binaries for the free neurons.

A NAP fixes most neurons (256x4 at δ = 0.99: about 700 of 1024), so its phase-aware
bounds leave only free neurons unstable, and the big-M MILP of ``milp.py`` needs binaries
for those alone. On the NAP paper's whole-domain queries that MILP decides a disjunct in
seconds (256x4: 2-12 s, 256x6: 8-33 s on a loaded 2-core machine), while the optimised
bounds stabilise no neuron and branch and bound closes no disjunct in a minute. So with
phases and many unstable neurons the MILP runs before the optimised bounds
(``nap_milp``), with a named share of the timeout.

Two stages:

* ``data_points``: the points given with the query (``verify_property(witness=rows)``,
  e.g. the images a NAP was mined from). One that follows the phases and is classified
  outside the specification is an exact counterexample: with ``all_samples`` mining the
  NAP of class c includes misclassified images of label c. The followers closest to a
  violation become starts for the pattern-fixed LPs, and a strict follower is the
  witness of non-emptiness.
* ``nap_milp``: the MILP of each open disjunct (``Query.milp_disjunct``: violation rows
  relaxed by ``PROOF_SLACK``, so ``refuted`` errs on the side of ``unknown``; a feasible
  point is re-checked by the exact pass and onnxruntime before it counts), the disjunct
  closest to violation at the data first, each with all of the stage's time left (a proof
  needs every disjunct refuted: the stage ends at the first one it cannot decide).
"""

from __future__ import annotations

import time

import numpy as np

from napkit.verify.properties import follows_phases
from napkit.verify.query import Query
from napkit.verify.verdict import FOUND, REFUTED, VerificationResult

_BATCH = 4096  # rows per forward pass over the given points


def data_points(q: Query) -> VerificationResult | None:
    """The given points: a strict follower is the witness of non-emptiness; a follower that
    violates an open disjunct is a counterexample ('from the given data')."""
    if q.data is None:
        return None
    t = time.monotonic()
    end = q.until(q.opts.data_share * q.timeout)
    follow, strict, slack = [np.zeros(0, np.int64)], [np.zeros(0, bool)], []
    open_ids = list(q.open_ids)
    for s in range(0, len(q.data), _BATCH):
        if time.monotonic() >= end:  # the scan counts against the query's time: stop at its budget
            q.stats["data_stopped"] = "time budget"
            break
        q.stats["data_rows"] = min(s + _BATCH, len(q.data))
        part = np.asarray(q.data[s:s + _BATCH], dtype=np.float64)
        y, pre = q.net.forward(part)
        ok = q.prop.box.contains(part) & follows_phases(pre, q.prop.phases)
        idx = np.flatnonzero(ok)
        follow.append(idx + s)
        pre_f = [z[idx] for z in pre]  # the followers' pre-activations
        if idx.size:
            top = [np.maximum(z, 0.0).max(axis=0) for z in pre_f]
            q.data_reach = top if q.data_reach is None else [
                np.maximum(a, b) for a, b in zip(q.data_reach, top, strict=True)]
        strict.append(follows_phases(pre_f, q.prop.phases, strict=True))
        slack.append(q.spec.slack(y[idx])[:, open_ids])
    idx, strict_ok = np.concatenate(follow), np.concatenate(strict)
    sl = np.vstack(slack) if slack else np.zeros((0, len(open_ids)))
    q.stats["data_followers"] = q.data_followers = int(idx.size)
    if q.witness is None and strict_ok.any():
        q.confirm_point(q.data[idx[int(np.argmax(strict_ok))]])
        q.stats["witness"] = "given" if q.witness is not None else "given point rejected"
    if q.witness is None:
        q.try_centre_witness()
    if not open_ids:
        q.add_time("data_s", t)
        return None
    best = sl.min(axis=1)
    # violating followers: strict ones first, then by how far they violate
    cand = np.flatnonzero(best <= 0)
    cand = cand[np.lexsort((best[cand], ~strict_ok[cand]))]
    for i in cand[: q.opts.data_checks]:
        if q.left() <= 0:
            break
        ce = q.confirm_point(q.data[idx[i]], q.spec)
        if ce is not None:
            q.stats["data_index"] = int(idx[i])
            q.add_time("data_s", t)
            why = "counterexample from the given data (follows the phases, violates)"
            return q.done("falsified", why, ce)
    if idx.size:
        near = np.argsort(best)[: q.opts.data_starts]
        # the followers closest to a violation walk first
        q.starts[:0] = list(np.asarray(q.data[idx[near]], dtype=np.float64))
        # per open disjunct: the smallest slack among the followers (orders the NAP MILP)
        q.data_slack = {k: float(sl[:, i].min()) for i, k in enumerate(open_ids)}
    q.add_time("data_s", t)
    return None


def _nap_stage_applies(q: Query, enabled: bool, min_unstable: int) -> bool:
    """A NAP stage runs when enabled, on a query with phases, open disjuncts, bounds that
    leave at least ``min_unstable`` free neurons unstable, and time left."""
    return bool(enabled and q.prop.phases is not None and q.open_ids and q.bounds is not None
                and q.bounds.n_unstable >= min_unstable and q.left() > 0)


def nap_lp(q: Query) -> VerificationResult | None:
    """With phases and at least ``nap_lp_min_unstable`` unstable (free) neurons: the LP
    relaxation of the region per open disjunct, refuted by a positive sound dual bound
    (``naplp.py``), before the MILP."""
    o = q.opts
    if not _nap_stage_applies(q, o.nap_lp, o.nap_lp_min_unstable):
        return None
    from napkit.verify.naplp import RegionLp, tighten_layer

    t = time.monotonic()
    end = q.until(o.nap_lp_share * q.timeout)
    lp = RegionLp(q.encoding())
    refuted = _lp_refute(q, lp, end)
    # then the free neurons of the last hidden layer whose relaxation helped the open rows
    # most, tightened by the same LP (sound dual bounds) a batch at a time, and the LP of the
    # tightened region again; then (``nap_lp_tighten_layers`` > 1) whole earlier layers
    last = len(q.net.layer_sizes) - 1
    done: set[int] = set()
    while q.open_ids and o.nap_lp_tighten_layers > 0 and not _over(q, end):
        order = [int(i) for i in np.argsort(-lp.gap) if lp.gap[i] > 0 and int(i) not in done]
        if not order:
            break
        batch = order[: o.nap_lp_tighten_batch]
        done.update(batch)
        gained = tighten_layer(lp, q.bounds, last, end, q.stop, order=np.array(batch))
        q.stats["nap_lp_tightened"] = q.stats.get("nap_lp_tightened", 0) + len(batch)
        q.stats["nap_lp_stabilised"] = q.stats.get("nap_lp_stabilised", 0) + gained
        q.forget_encodings()
        lp = RegionLp(q.encoding())
        refuted += _lp_refute(q, lp, end)
    for k in range(last - 1, max(last - o.nap_lp_tighten_layers, -1), -1):
        if not q.open_ids or _over(q, end):
            break
        q.stats["nap_lp_stabilised"] = q.stats.get("nap_lp_stabilised", 0) + tighten_layer(
            lp, q.bounds, k, end, q.stop)
        q.forget_encodings()
        lp = RegionLp(q.encoding())
        refuted += _lp_refute(q, lp, end)
    q.region_lp = lp
    q.stats["nap_lp_refuted"] = refuted
    q.stats["unstable_after_lp"] = q.bounds.n_unstable
    q.add_time("nap_lp_s", t)
    if refuted and not q.open_ids:
        q.how = "LP relaxation of the NAP region (dual bound)"
    return None


def nap_tail(q: Query) -> VerificationResult | None:
    """With phases, at least ``nap_tail_min_unstable`` unstable neurons and a hidden layer
    with at most ``nap_tail_max_width`` units not fixed inactive: the tail behind that layer
    (``naptail.py``), exact on the box of those units' bounds, refutes the open disjuncts
    it cannot reach. Before the region's LP: on 256x4/256x6 whole-domain queries it proves
    every class the LP proves, in 0.1 s instead of 3-9 s."""
    return _tail(q, tighten=False)


def nap_tail_lp(q: Query) -> VerificationResult | None:
    """``nap_tail`` again after ``nap_lp`` (with ``nap_tail_tighten``), on the units' bounds
    tightened by the region's LP (a later layer's phases can cut them, which the symbolic
    bounds cannot use; on 256x6 class 8 the box only shrinks from (10633, 8029) to (9676, 81))."""
    if not (q.opts.nap_tail_tighten and q.region_lp is not None):
        return None
    return _tail(q, tighten=True)


def _tail(q: Query, tighten: bool) -> None:
    o = q.opts
    if not _nap_stage_applies(q, o.nap_tail, o.nap_tail_min_unstable):
        return None
    from napkit.verify.naptail import Tail, narrowest_layer, refute_by_tail

    cut = narrowest_layer(q.prop.phases, len(q.net.layer_sizes), o.nap_tail_max_width)
    if cut is None:
        return None
    t = time.monotonic()
    k, units = cut
    end = q.until(o.nap_tail_share * q.timeout)
    if tighten:
        from napkit.verify.naplp import tighten_layer

        tighten_layer(q.region_lp, q.bounds, k, end, q.stop, order=units)
        q.forget_encodings()
    tail = Tail(q.net, q.bounds, q.prop.phases, k, units)
    ids = list(q.open_ids)
    refuted, needs = refute_by_tail(tail, [q.spec.disjuncts[i] for i in ids], end, q.stop)
    q.open_ids = [i for i, r in zip(ids, refuted, strict=True) if not r]
    key = "nap_tail_lp" if tighten else "nap_tail"
    open_needs = {ids[i]: v for i, v in needs.items() if not refuted[i]}
    q.stats.update({"nap_tail_layer": k, "nap_tail_width": int(units.size),
                    f"{key}_box": [round(float(v), 3) for v in tail.box.upper],
                    f"{key}_refuted": int(sum(refuted)),
                    f"{key}_needs": open_needs})
    if open_needs:
        q.stats[f"{key}_open"] = _tail_open(q, k, units, open_needs)
    q.add_time(f"{key}_s", t)
    if any(refuted) and not q.open_ids:
        q.how = (f"the exact tail behind hidden layer {k} ({units.size} "
                 f"unit{'s' if units.size != 1 else ''} not fixed inactive)")
    return None


def _tail_open(q: Query, k: int, units: np.ndarray, needs: dict[int, list[float]]) -> str:
    """Why the tail left disjuncts open, in one line: a tail input that violates the first
    of them (the narrow layer's units there), and how far the given points that follow the
    phases push those units (what a counterexample would need against what inputs reach)."""
    first = min(needs)
    line = (f"behind hidden layer {k}, units {units.tolist()} at {needs[first]} violate "
            f"disjunct {first} in the tail")
    if q.data_reach is not None:
        reach = np.round(q.data_reach[k][units], 3).tolist()
        line += f"; the {q.data_followers} given points that follow the phases reach at most {reach}"
    return line


def _over(q: Query, end: float) -> bool:
    return time.monotonic() >= end or (q.stop is not None and q.stop())


def _lp_refute(q: Query, lp, end: float) -> int:
    """The LP bound of each open disjunct; those with a positive row are refuted (closed)."""
    refuted: set[int] = set()
    for k in _by_data_slack(q):
        if _over(q, end):
            break
        c, d = q.spec.disjuncts[k]
        lows = lp.disjunct_lows(c, d, end, q.stop)
        q.lows[k] = np.maximum(q.lows[k], lows)
        if (lows > 0).any():
            refuted.add(k)
    q.open_ids = [k for k in q.open_ids if k not in refuted]
    q.stats["nap_lp_solves"] = q.stats.get("nap_lp_solves", 0) + lp.solves
    return len(refuted)


def _by_data_slack(q: Query) -> list[int]:
    """The open disjuncts, closest to violation at the given data first, then weakest bound."""
    ds = q.data_slack
    return sorted(q.open_ids, key=lambda k: (ds.get(k, np.inf), float(q.lows[k].max())))


def nap_milp(q: Query) -> VerificationResult | None:
    """With phases and at least ``nap_milp_min_unstable`` unstable (free) neurons: the MILP
    of each open disjunct, before the optimised bounds and branch and bound."""
    o = q.opts
    if not _nap_stage_applies(q, o.nap_milp, o.nap_milp_min_unstable):
        return None
    t = time.monotonic()
    end = q.until(o.nap_milp_share * q.timeout)
    refuted: set[int] = set()
    for k in _by_data_slack(q):  # every disjunct must be refuted for a proof: each gets all the time left
        left = end - time.monotonic()
        if left <= 0 or (q.stop is not None and q.stop()):
            break
        status, ce, _ = q.milp_disjunct(k, time_limit=left)
        if status == FOUND:
            q.add_time("nap_milp_s", t)
            return q.done("falsified", "counterexample found by the NAP MILP", ce)
        if status != REFUTED:
            break  # this disjunct stays open, so no proof from this stage: leave the rest
        refuted.add(k)
    q.open_ids = [k for k in q.open_ids if k not in refuted]
    q.stats["nap_milp_refuted"] = len(refuted)
    q.add_time("nap_milp_s", t)
    if refuted and not q.open_ids:
        q.how = "MILP (free neurons only)"
    return None

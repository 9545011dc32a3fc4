"""The stages of one query, in order. Each takes the ``Query`` and returns a result (the
query is decided) or None (go on); ``STAGES`` is the order ``verify_property`` runs them.

Every ``falsified`` carries a point re-checked by ``Query.confirm`` (exact float64 pass,
onnxruntime when given); every ``verified`` comes from sound bounds (padded by
``BOUND_PAD``) or an infeasible LP/MILP relaxed by ``PROOF_SLACK``, and needs a witness
that the region is non-empty.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from collections.abc import Callable

import numpy as np

from napkit.verify.attack import Counterexample, pgd_attack
from napkit.verify.bounds import propagate, spec_lower
from napkit.verify.forked import can_fork, fork_map
from napkit.verify.milp import tighten_bounds
from napkit.verify.napfalsify import data_points, nap_lp, nap_milp, nap_tail, nap_tail_lp
from napkit.verify.patternlp import agreement_starts
from napkit.verify.query import Query
from napkit.verify.threads import torch_pinned
from napkit.verify.verdict import FOUND, REFUTED, UNKNOWN, VerificationResult

Stage = Callable[[Query], VerificationResult | None]


def symbolic_bounds(q: Query) -> VerificationResult | None:
    """Phase-aware symbolic bounds: an empty interval is vacuous; a positive lower bound of
    some row refutes its disjunct. With phases, the box centre (a local query's image,
    which usually follows the NAP) is tried as the witness of non-emptiness: with one, the
    prover skips the LP relaxation (8 s on 256x4 local queries) and the final search."""
    b = q.bounds = propagate(q.net, q.prop.box, q.prop.phases)
    q.stats["unstable"] = b.n_unstable
    if b.vacuous:
        return q.done("vacuous", b.reason)
    if q.prop.phases is not None and q.witness is None and q.data is None:
        q.try_centre_witness()  # with given points, ``data_points`` looks at them first
    q.lows = spec_lower(q.net, b, q.spec)
    q.open_ids = [k for k, lo in enumerate(q.lows) if not (lo > 0).any()]
    q.stats["open_after_bounds"] = len(q.open_ids)
    return None


def quick_attack(q: Query) -> VerificationResult | None:
    """Plain robustness: a short attack before the optimised bounds (1-2 s on 256x4), as
    alpha-beta-CROWN does; falsifiable VNN-COMP instances fall in 0.1 s."""
    o = q.opts
    if not (q.open_ids and o.attack and q.prop.phases is None):
        return None
    ce = q.confirm(pgd_attack(q.net, q.prop.box, q.open_spec(), None, restarts=16, steps=40,
                              deadline=q.until(min(o.quick_attack_share * q.timeout, o.quick_attack_cap))),
                   q.spec)
    return q.done("falsified", "counterexample found by attack", ce) if ce is not None else None


def optimised_bounds(q: Query) -> VerificationResult | None:
    """alpha-beta-CROWN bounds with the phases as Lagrangian constraints: first every
    intermediate layer, then the rows of the open disjuncts."""
    o, b = q.opts, q.bounds
    if not (q.open_ids and o.optimize and q.left() > 0):
        return None
    t = time.monotonic()
    torch_pinned()
    from napkit.verify.optimized import tighten_optimized

    tighten_optimized(q.net, b, iters=o.root_tighten_iters, lr=o.root_tighten_lr,
                      deadline=q.until(o.root_tighten_share * q.timeout), stop=q.stop)
    q.stats["unstable_final"] = b.n_unstable
    if b.vacuous:
        q.stats["optimize_s"] = time.monotonic() - t
        return q.done("vacuous", b.reason)
    v, info = _optimise_open_rows(q, o.root_rows_share * q.timeout)
    q.starts.extend(info["argmin"][np.argsort(v)])  # minimisers of the weakest bounds first
    if q.open_ids:
        q.stats["root_bound"] = round(float(min(q.lows[k].max() for k in q.open_ids)), 4)
    q.stats["open_after_optimize"] = len(q.open_ids)
    q.stats["optimize_s"] = time.monotonic() - t
    q.how = "optimised bounds"
    return None


def _optimise_open_rows(q: Query, seconds: float):
    """Optimised bounds of the rows of the open disjuncts; refutes those with a positive row."""
    torch_pinned()
    from napkit.verify.optimized import optimize_rows

    ids, spec = q.open_ids, q.spec
    rows = np.vstack([spec.disjuncts[k][0] for k in ids])
    consts = -np.concatenate([spec.disjuncts[k][1] for k in ids])
    v, info = optimize_rows(q.net, q.bounds, len(q.net.layer_sizes), rows, consts,
                            iters=q.opts.root_rows_iters, lr=q.opts.root_rows_lr, stop_at=0.0,
                            deadline=q.until(seconds),
                            stop=q.stop)
    sizes = np.cumsum([0] + [spec.disjuncts[k][0].shape[0] for k in ids])
    for i, k in enumerate(ids):
        q.lows[k] = np.maximum(q.lows[k], v[sizes[i]:sizes[i + 1]])
        sl = slice(sizes[i], sizes[i + 1])
        q.row_params[k] = tuple({j: t[sl] for j, t in info[name].items()} for name in ("alphas", "betas"))
    q.open_ids = [k for k in ids if not (q.lows[k] > 0).any()]
    return v, info


def first_patterns(q: Query) -> VerificationResult | None:
    """With phases, the bounds' minimisers are the cheapest good starts for pattern-fixed
    LPs: before the LP relaxation and the attack (256x2 domain queries: 0.1 s against 1 s).
    Without phases the attack is quicker (VNN-COMP 256x4 prop_6_0.05: 0.1 s against 3 s)."""
    o = q.opts
    if not (q.open_ids and o.optimize and o.patterns and q.prop.phases is not None and q.starts
            and q.left() > 0):
        return None
    budget = min(o.first_patterns_share * q.timeout, o.first_patterns_left * q.left(), o.first_patterns_cap)
    ce = _pattern_walk(q, budget, q.starts, repair=False)
    q.tried = len(q.starts)
    return q.done("falsified", "counterexample found by a pattern-fixed LP", ce) if ce is not None else None


def lp_relaxation(q: Query) -> VerificationResult | None:
    """The LP relaxation of the phase polytope: infeasible means vacuous; its point is a start.
    Capped: on deep nets this LP alone can take the whole budget (256x4 domain: > 8 s)."""
    if q.prop.phases is None or q.witness is not None or not q.open_ids:
        return None
    lp = q.encoding().solve(time_limit=max(min(q.opts.lp_relaxation_share * q.timeout, q.left()), 0.01),
                            relax=True)
    if lp.status == "infeasible":
        return q.done("vacuous", "the LP relaxation of the phase constraints is infeasible")
    if lp.x is not None:
        q.starts.append(lp.x)
        q.lp_x = lp.x
    return None


def attack(q: Query) -> VerificationResult | None:
    """Projected-gradient attack on the open disjuncts, the phases as a penalty."""
    o = q.opts
    if not (q.open_ids and o.attack and q.left() > 0):
        return None
    t = time.monotonic()
    keep: list[np.ndarray] = []
    budget = min(max(o.attack_share * q.timeout, o.attack_floor), o.attack_cap)
    ce = q.confirm(pgd_attack(q.net, q.prop.box, q.open_spec(), q.prop.phases, deadline=q.until(budget),
                              keep=keep), q.spec)
    q.stats["attack_s"] = time.monotonic() - t
    if ce is not None:
        return q.done("falsified", "counterexample found by attack", ce)
    q.starts.extend(keep[:6])
    return None


def patterns(q: Query) -> VerificationResult | None:
    """Pattern-fixed LPs from the starts not walked yet (attack iterates, LP relaxation)."""
    o = q.opts
    if not (q.open_ids and o.patterns and q.left() > 0 and q.starts[q.tried:]):
        return None
    ce = _pattern_walk(q, min(o.patterns_share * q.timeout, o.patterns_left * q.left()), q.starts[q.tried:])
    return q.done("falsified", "counterexample found by a pattern-fixed LP", ce) if ce is not None else None


def lp_tightening(q: Query) -> VerificationResult | None:
    """Optional (``tighten``): LP bounds of the unstable neurons before the MILP."""
    if q.open_ids and q.opts.tighten and q.left() > 0:
        q.stats["tightened"] = tighten_bounds(q.net, q.bounds, q.until(q.opts.tighten_left * q.left()))
        q.forget_encodings()
    return None


def _refines(q: Query) -> bool:
    """Does this query get MILP-refined bounds (deep network, no phases, many unstable)?"""
    o = q.opts
    return bool(q.open_ids and o.refine_share > 0 and len(q.net.layer_sizes) >= o.refine_min_layers
                and q.prop.phases is None and q.bounds.n_unstable > o.many_unstable)


def first_bab(q: Query) -> VerificationResult | None:
    """Before a refinement: a short branch and bound (``bab_first_share`` of the time left),
    which decides the easier deep queries in seconds (256x4 prop_3_0.05: 2.6 s)."""
    if not (_refines(q) and q.opts.bab and q.opts.bab_first_share > 0 and q.left() > 0):
        return None
    return _bab(q, q.opts.bab_first_share)


def milp_refine(q: Query) -> VerificationResult | None:
    """Deep networks without phases (``refine_share`` > 0): MILP-refined intermediate bounds
    (``refine.py``), then the optimised bounds of the open disjuncts again."""
    o = q.opts
    if not (_refines(q) and q.left() > 0):
        return None
    torch_pinned()
    from napkit.verify.refine import refine_with_milp

    t = time.monotonic()
    st = refine_with_milp(q.net, q.bounds, q.until(o.refine_share * q.left()), per_side=o.refine_side_s,
                          workers=q.free_cores, side_growth=o.refine_side_growth,
                          cut_rounds=o.refine_cut_rounds)
    q.stats.update(refine_asked=st.asked, refine_stabilised=st.stabilised, refine_narrowed=st.narrowed,
                   refine_passes=st.passes, refine_s=round(st.seconds, 3))
    q.forget_encodings()
    if q.bounds.vacuous:  # the region is a box here (no phases): never empty, so round-off
        return q.done("unknown", f"refined bounds claim the input box is empty ({q.bounds.reason}): "
                                 f"numerical trouble, no verdict")
    if st.narrowed:
        _optimise_open_rows(q, o.root_rows_share * q.left())
        if q.open_ids:  # the weakest open disjunct's best row (> 0 would have refuted it)
            q.stats["refined_bound"] = round(min(float(q.lows[k].max()) for k in q.open_ids), 4)
        if not q.open_ids:
            q.how = "MILP-refined bounds"
    q.add_time("refine_total_s", t)
    return None


def bab(q: Query) -> VerificationResult | None:
    """One branch-and-bound tree over every open disjunct (a per-domain mask of the
    disjuncts still open), then pattern-fixed LPs from its first candidates."""
    o = q.opts
    if not (q.open_ids and o.bab and q.left() > 0):
        return None
    n = q.bounds.n_unstable
    share = o.bab_left_few if n <= o.few_unstable else o.bab_left_many if n > o.many_unstable else o.bab_left
    if q.stats.get("refine_narrowed"):
        share = o.bab_left_refined
    return _bab(q, share)


def _bab(q: Query, share: float) -> VerificationResult | None:
    """One tree over the open disjuncts with ``share`` of the time left (see ``bab``)."""
    o = q.opts
    torch_pinned()
    import torch

    from napkit.verify.bab import branch_and_bound

    n = q.bounds.n_unstable
    budget = share * q.left()
    ids = sorted(q.open_ids, key=lambda k: float(q.lows[k].max()))
    c = np.vstack([q.spec.disjuncts[k][0] for k in ids])
    const = -np.concatenate([q.spec.disjuncts[k][1] for k in ids])
    groups = np.concatenate([np.full(q.spec.disjuncts[k][0].shape[0], i) for i, k in enumerate(ids)])
    warm = None
    if all(k in q.row_params for k in ids):  # the root starts from the optimised bounds' parameters
        warm = tuple({j: torch.cat([q.row_params[k][p][j] for k in ids]) for j in q.row_params[ids[0]][p]}
                     for p in (0, 1))
    t = time.monotonic()
    res = branch_and_bound(
        q.net, q.bounds, c, const, root_warm=warm,
        deadline=q.until(budget * (1 - o.bab_patterns_share if o.patterns and q.stop is None else 1)),
        check=lambda x: q.confirm_point(x, q.spec), groups=groups, screen=q.screen, options=o, stop=q.stop,
        max_open=o.handoff_open if q.prop.phases is not None and n <= o.handoff_max_unstable else None,
        workers=q.free_cores,
    )
    q.add_time("bab_s", t)
    q.stats["bab_domains"] = q.stats.get("bab_domains", 0) + res.domains
    q.stats["bab_processes"] = max(res.processes, q.stats.get("bab_processes", 1))
    if res.refreshed:
        q.stats["bab_refreshed"] = q.stats.get("bab_refreshed", 0) + res.refreshed
        q.stats["bab_emptied"] = q.stats.get("bab_emptied", 0) + res.emptied
    if res.status == FOUND:
        return q.done("falsified", "counterexample found by branch and bound", res.counterexample)
    if res.status == REFUTED:
        q.open_ids = []
        q.how = "branch and bound"
        return None
    # unknown leaves at least one disjunct open; never trust an empty list here
    q.open_ids = [ids[g] for g in res.open_groups] or ids
    q.stats["open_after_bab"] = len(q.open_ids)
    if o.patterns and q.stop is None and res.candidates and q.left() > 0:
        ce = q.pattern_search().search(np.array(res.candidates[::-1]), q.spec,
                                       q.until(budget * o.bab_patterns_share),
                                       lambda x: q.confirm_point(x, q.spec), order=list(q.open_ids))
        if ce is not None:
            why = "counterexample found by a pattern-fixed LP (from branch and bound's candidates)"
            return q.done("falsified", why, ce)
    q.stats["bab_reason"] = res.reason
    if res.bound is not None:
        q.stats["bab_bound"] = round(res.bound, 4)
    return None


_MilpRecord = tuple[int, str, "np.ndarray | None", str, float]  # disjunct, outcome, point, reason, s


def _milp_worker(q: Query, todo: list[int], taken, n: int) -> list[_MilpRecord]:
    """Take the next disjunct of ``todo`` (``taken``: a shared counter) until none is left,
    each with the time left (less ``milp_end_reserve_share`` of the timeout) or, with
    ``milp_time_shares``, its share of it (the disjuncts not yet taken, spread over ``n``
    processes): (disjunct, outcome, counterexample point, reason, seconds)."""
    out = []
    while q.left() > 0:
        with taken.get_lock():
            i = taken.value
            taken.value += 1
        if i >= len(todo):
            break
        t = time.monotonic()
        rounds_left = -(-(len(todo) - i) // n) if q.opts.milp_time_shares else 1  # ceil: turns to come
        reserve = q.opts.milp_end_reserve_share * q.timeout if math.isfinite(q.timeout) else 0.0
        left = q.left() - reserve
        if left <= 0:
            break
        status, ce, why = q.milp_disjunct(todo[i], time_limit=left / rounds_left,
                                          ipm=q.opts.milp_ipm and q.prop.phases is not None)
        out.append((todo[i], status, None if ce is None else ce.x, why, time.monotonic() - t))
        if status == FOUND:
            with taken.get_lock():
                taken.value = len(todo)  # the others stop after their current disjunct
            break
    return out


def _milp_pass(q: Query, todo: list[int]) -> list[_MilpRecord]:
    """One pass over ``todo`` on the query's free cores: each process (this one and forked
    ones, which no longer poll the falsifier) takes the next disjunct when it is done with
    one; their points are re-checked here by the caller."""
    n = max(1, min(q.free_cores(), len(todo))) if can_fork() else 1
    q.stats["milp_processes"] = max(n, q.stats.get("milp_processes", 1))
    taken = mp.get_context("fork").Value("i", 0)
    stop = q.stop

    def run(part: int):
        if part:  # a forked child: the falsifier's pipe is the parent's
            q.stop = None
        before = q.stats.get("milp_s", 0.0)
        records = _milp_worker(q, todo, taken, n)
        return records, q.stats.get("milp_s", 0.0) - before

    try:
        got = fork_map(run, list(range(n)), q.deadline)
    finally:
        q.stop = stop
    for part in got[1:]:  # the children's HiGHS time (the parent's is counted already)
        if part is not None:
            q.stats["milp_s"] = q.stats.get("milp_s", 0.0) + part[1]
    return [r for part in got if part is not None for r in part[0]]


def milp(q: Query) -> VerificationResult | None:
    """The complete method on each disjunct still open, on the free cores, each until it is
    decided or the time is up, weakest bound first: a proof waits for the slowest disjunct, so
    the likely long ones start first and the short ones fill in beside them (and a disjunct
    with a counterexample is likeliest among the weak ones). With ``milp_time_shares``, each
    pass gives every undecided disjunct an equal share of the time left, strongest bound first
    (the likeliest quick refutations), and the ones that ran out are asked again while that
    share grows by ``milp_retry_growth`` or more."""
    shares = q.opts.milp_time_shares
    todo = sorted(q.open_ids, key=lambda k: (-1 if shares else 1) * float(q.lows[k].max()))
    reasons: list[str] = []
    share = 0.0
    while todo and q.left() > 0 and q.left() / len(todo) >= q.opts.milp_retry_growth * share:
        share = q.left() / len(todo)
        decided, reasons = set(), []
        for k, status, x, why, secs in _milp_pass(q, todo):
            done = f"{k}:{status}:{secs:.1f}s"  # disjunct, outcome, seconds
            q.stats["milp_disjuncts"] = " ".join(filter(None, [q.stats.get("milp_disjuncts"), done]))
            if status == FOUND:
                ce = q.confirm_point(x, q.spec)
                if ce is not None:
                    return q.done("falsified", "counterexample found by MILP", ce)
                status, why = UNKNOWN, "MILP solution failed the exact float64 re-check"
            if status == REFUTED:
                decided.add(k)
                q.how = "MILP"
            else:
                reasons.append(why or "timeout")
        todo = [k for k in todo if k not in decided]
        if not shares:  # each disjunct ran until decided or the time was up: one pass
            break
    if todo:
        q.open_ids = todo
        return q.done("unknown", "; ".join(dict.fromkeys(reasons or ["timeout"])))
    q.open_ids = []
    return None


def non_empty(q: Query) -> VerificationResult:
    """Every disjunct is refuted: ``verified`` once some input is known to follow the phases."""
    ok, why = q.nonempty()
    if ok is False:
        return q.done("vacuous", why)
    if ok is None:
        return q.done("unknown", f"property holds on the region ({q.how}) but {why}")
    return q.done("verified", f"proved by {q.how}")


STAGES: tuple[Stage, ...] = (
    symbolic_bounds, data_points, quick_attack, nap_tail, nap_lp, nap_tail_lp, nap_milp, optimised_bounds,
    first_patterns, lp_relaxation, attack, patterns, lp_tightening, first_bab, milp_refine, bab, milp,
    non_empty,
)
# with a falsifier process (``parallel.py``): the common prefix (with the cheap exact tail, which
# proves most whole-domain NAP queries before any fork), then each side's stages; the
# falsifier starts before the optimised bounds (1-25 s on deep nets), which both sides compute:
# with phases the bounds' minimisers start its pattern-fixed LPs, without phases the attack
# goes first (VNN-COMP sat instances fall to it in well under a second)
PREFIX_STAGES: tuple[Stage, ...] = (symbolic_bounds, data_points, quick_attack, nap_tail)
FALSIFY_STAGES: tuple[Stage, ...] = (optimised_bounds, first_patterns, lp_relaxation, attack, patterns)
FALSIFY_STAGES_PLAIN: tuple[Stage, ...] = (attack, optimised_bounds, patterns)
PROVE_STAGES: tuple[Stage, ...] = (nap_lp, nap_tail_lp, nap_milp, optimised_bounds, lp_relaxation,
                                   lp_tightening, first_bab, milp_refine, bab, milp, non_empty)


def _pattern_walk(q: Query, budget: float, starts: list[np.ndarray], repair: bool = True
                  ) -> Counterexample | None:
    """Pattern-fixed LPs from ``starts`` (``pattern_walk_search_share`` of the budget, all of
    it without ``repair``); then, when no point is known to follow the phases, repair a start
    into one (elastic LPs) and walk from there."""
    t_end = time.monotonic() + budget
    ps = q.pattern_search()

    def check(x):
        return q.confirm_point(x, q.spec)

    share = q.opts.pattern_walk_search_share if repair else 1.0
    ce = ps.search(np.array(starts), q.spec, time.monotonic() + share * budget, check,
                   order=q.open_ids, rounds=4)
    if ce is not None or not repair or q.prop.phases is None or time.monotonic() > t_end:
        return ce
    if q.witness is None:
        ps.repair(np.array([*agreement_starts(q.net, q.bounds), *q.starts[:3]]), t_end,
                  lambda x: q.confirm_point(x))
    if q.witness is not None:  # its region is non-empty: the walk starts from a feasible LP
        ce = ps.search(q.witness.x[None], q.spec, t_end, check, order=q.open_ids, rounds=6)
    return ce

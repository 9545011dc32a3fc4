"""Verdicts: bounds, then attack, then MILP, with vacuity checked and counterexamples re-checked.

Order for one query: phase-aware bounds (an empty interval: vacuous), bounds on each
disjunct of the violation (a positive lower bound refutes it), for plain queries (no
phases) a short attack, optimised bounds with the phases as Lagrangian constraints
(``optimized.py``), with phases pattern-fixed LPs from the optimised bounds' minimisers
(``patternlp.py``: the network is linear on the activation region of a candidate point),
the LP relaxation of the phase-constrained region (infeasible: vacuous), a
projected-gradient attack, pattern-fixed LPs from the LP relaxation and the attack's
iterates, then per disjunct left branch and bound on the optimised bounds (``bab.py``,
half the time left, 15% with at most ``_FEW_UNSTABLE`` unstable neurons; pattern-fixed
LPs from its candidate points when it stays undecided) and a MILP with the rest.
``verified`` also needs the region to be non-empty (a witness point: one given by the
caller, e.g. a training input that follows the NAP, the box centre, pattern-fixed and
elastic LPs, the attack, or a feasibility MILP); otherwise the answer is ``vacuous`` or
``unknown``.
A counterexample is reported only after an exact float64 forward pass (and onnxruntime,
when an ONNX model is given) confirms it. MILP "infeasible" is trusted up to HiGHS's
feasibility tolerances (1e-6 integrality, 1e-7 primal); the proving MILP relaxes the
violation rows by ``PROOF_SLACK`` (1e-6) so that it errs on the side of ``unknown``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napkit.network import ReluNetwork, onnx_logits
from napkit.verify.attack import Counterexample, check_point, pgd_attack
from napkit.verify.bab import branch_and_bound
from napkit.verify.bounds import propagate, spec_lower
from napkit.verify.milp import MilpEncoding, tighten_bounds
from napkit.verify.optimized import one_thread, optimize_rows, tighten_optimized
from napkit.verify.patternlp import PatternSearch, agreement_starts
from napkit.verify.properties import (
    InputBox,
    OutputSpec,
    Phases,
    Property,
    check_phases,
    follows_phases,
    merge_phases,
    robustness_spec,
)
from napkit.verify.vnnlib import VnnlibSpec, read_vnnlib

# The proving MILP asks for C y <= d + PROOF_SLACK: "infeasible" then also rules out points
# that violate by less than HiGHS's feasibility tolerance (1e-7), a margin on the safe side.
PROOF_SLACK = 1e-6
_FEW_UNSTABLE = 64  # at most this many unstable neurons: MILP before branch and bound
VNNLIB_ANSWER = {"verified": "unsat", "vacuous": "unsat", "falsified": "sat", "unknown": "unknown"}


@dataclass
class VerificationResult:
    verdict: str  # verified / falsified / unknown / vacuous (sat / unsat / unknown for VNN-LIB)
    reason: str
    seconds: float
    counterexample: np.ndarray | None = None
    logits: np.ndarray | None = None
    strict: bool | None = None
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "result": self.verdict,
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
            "counterexample": None if self.counterexample is None else self.counterexample.tolist(),
            "strict": self.strict,
            **{k: v for k, v in self.stats.items() if isinstance(v, int | float | str | bool)},
        }


class _Run:
    """One query in progress: its deadline, statistics and re-checks."""

    def __init__(self, net, prop: Property, timeout: float, onnx_model, witness=None):
        self.net, self.prop, self.onnx = net, prop, onnx_model
        self.t0 = time.monotonic()
        self.deadline = self.t0 + float(timeout)
        self.stats: dict = {}
        self.witness = witness
        self.starts: list[np.ndarray] = []  # candidate points for pattern-fixed LPs
        self.patterns: PatternSearch | None = None
        self.lp_x: np.ndarray | None = None  # a point of the LP relaxation of the phase polytope

    def pattern_search(self, bounds=None) -> PatternSearch:
        if self.patterns is None:
            self.patterns = PatternSearch(self.net, self.prop.box, self.prop.phases, bounds)
        return self.patterns

    def pattern_stats(self) -> None:
        if self.patterns is not None:
            st = self.patterns.stats
            self.stats.update(pattern_lps=st.lps, pattern_s=round(st.seconds, 3), pattern_flips=st.flips)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def done(self, verdict: str, reason: str, ce: Counterexample | None = None):
        self.pattern_stats()
        return VerificationResult(
            verdict, reason, time.monotonic() - self.t0,
            None if ce is None else ce.x, None if ce is None else ce.logits,
            None if ce is None else ce.strict, self.stats,
        )

    def confirm(self, ce: Counterexample | None, spec: OutputSpec | None) -> Counterexample | None:
        """Keep a candidate only if the float64 pass (and onnxruntime) agree it is one."""
        if ce is None:
            return None
        ce = check_point(self.net, self.prop.box, spec, self.prop.phases, ce.x)
        if ce is not None and self.onnx is not None and spec is not None:
            y32 = onnx_logits(self.onnx, ce.x[None], self.net.input_shape)
            self.stats["onnx_checked"] = True
            if not spec.violated(y32)[0]:
                self.stats["onnx_disagreed"] = True
                return None
        if ce is not None and self.witness is None and self.follows_strictly(ce.x):
            self.witness = ce  # proves the region non-empty under the strict definition
        return ce

    def follows_strictly(self, x: np.ndarray) -> bool:
        """Does ``x`` follow the phases with active meaning z > 0 (DESIGN's definition)?

        A point that follows only on the closed boundary (z = 0 for an active neuron) does
        not show that any input follows the NAP, so it is no witness of non-emptiness.
        """
        if self.prop.phases is None:
            return True
        _, pre = self.net.forward(np.asarray(x, dtype=np.float64)[None])
        return bool(follows_phases(pre, self.prop.phases, strict=True)[0])


def _milp_point(run: _Run, enc_maker, spec, c, d) -> tuple[str, Counterexample | None, str]:
    """One disjunct by MILP: ('infeasible'|'found'|'unknown', counterexample, reason)."""
    res = enc_maker(-PROOF_SLACK).solve(c, d, time_limit=run.left())
    run.stats["milp_s"] = run.stats.get("milp_s", 0.0) + res.seconds
    if res.status == "infeasible":
        return "infeasible", None, ""
    if res.status != "feasible":
        return "unknown", None, res.message
    ce = run.confirm(Counterexample(res.x, np.empty(0), False), spec)
    if ce is None:  # a near-boundary solution: repair by a local attack, then a margin
        att = pgd_attack(run.net, run.prop.box, spec, run.prop.phases, restarts=4, steps=60,
                         starts=res.x[None], deadline=time.monotonic() + min(5.0, run.left()))
        ce = run.confirm(att, spec)
    if ce is None:
        res2 = enc_maker(1e-6).solve(c, d, time_limit=run.left())
        if res2.status == "feasible":
            ce = run.confirm(Counterexample(res2.x, np.empty(0), False), spec)
    if ce is None:
        return "unknown", None, "MILP solution failed the exact float64 re-check"
    return "found", ce, ""


def _nonempty(run: _Run, enc_maker, bounds=None) -> tuple[bool | None, str]:
    """Does some input of the box follow the phases? True/False/None (undecided)."""
    if run.prop.phases is None or run.witness is not None:
        return True, ""
    def confirm(x):  # a witness must follow strictly (see _Run.follows_strictly)
        ce = run.confirm(Counterexample(x, np.empty(0), False), None)
        return ce if run.witness is not None else None

    if confirm(run.prop.box.center) is not None:  # e.g. the centre of a small ball
        return True, ""

    # 1. pattern-fixed LPs from points that tend to follow the phases (cheap: one LP each)
    first = [*agreement_starts(run.net, bounds)] if bounds is not None else []
    first += [] if run.lp_x is None else [run.lp_x]
    if first and run.pattern_search(bounds).witness(
            np.array(first), time.monotonic() + min(0.3 * run.left(), 3.0), confirm) is not None:
        run.stats["witness"] = "pattern LP"
        return True, ""
    # 2. the attack with the phases as a penalty
    keep: list[np.ndarray] = []
    cand = pgd_attack(run.net, run.prop.box, None, run.prop.phases, restarts=8, steps=50,
                      deadline=time.monotonic() + min(5.0, max(run.left(), 0)), keep=keep)
    run.confirm(cand, None)
    if run.witness is not None:
        return True, ""
    # 3. pattern-fixed LPs from its iterates and the LP relaxation, then elastic repairs
    if run.lp_x is None and run.left() > 0:
        lp = enc_maker(0.0).solve(time_limit=min(5.0, max(run.left(), 0.01)), relax=True)
        run.lp_x = lp.x
    starts = ([] if run.lp_x is None else [run.lp_x]) + keep[:4] + run.starts[:4]
    if starts and run.left() > 0:
        ps = run.pattern_search(bounds)
        w = ps.witness(np.array(starts), time.monotonic() + min(0.5 * run.left(), 5.0), confirm)
        if w is None and run.left() > 0:
            w = ps.repair(np.array(first + starts), time.monotonic() + min(0.5 * run.left(), 5.0),
                          confirm)
        if w is not None:
            run.stats["witness"] = "pattern LP"
            return True, ""
    res = enc_maker(0.0).solve(time_limit=run.left())
    if res.status == "infeasible":
        return False, "no input of the region follows the phases (MILP infeasible)"
    if res.status == "feasible" and confirm(res.x) is not None:
        return True, ""
    return None, "could not decide whether any input follows the phases (strictly)"


def verify_property(
    net: ReluNetwork,
    prop: Property,
    timeout: float = 60.0,
    onnx_model=None,
    attack: bool = True,
    tighten: bool = False,
    witness: np.ndarray | None = None,
    optimize: bool = True,
    bab: bool = True,
    patterns: bool = True,
) -> VerificationResult:
    """Decide whether some x of ``prop.box`` following ``prop.phases`` violates ``prop.output``.

    ``optimize``: optimised (alpha-beta-CROWN style) bounds with the phases as split
    constraints before attack and MILP; ``bab``: branch and bound over unstable neurons
    on those bounds before the MILP; ``tighten``: LP tightening before the MILP;
    ``patterns``: pattern-fixed LPs (``patternlp.py``) from the attack's iterates, the LP
    relaxation and branch and bound's candidates, for counterexamples and witnesses.
    """
    with one_thread():
        return _verify_property(net, prop, timeout, onnx_model, attack, tighten, witness, optimize, bab,
                                patterns)


def _verify_property(net, prop, timeout, onnx_model, attack, tighten, witness, optimize, bab, patterns):
    prop = prop.check(net.layer_sizes, net.n_inputs, net.n_outputs)
    run = _Run(net, prop, timeout, onnx_model)
    if witness is not None:
        run.confirm(Counterexample(np.asarray(witness, dtype=np.float64), np.empty(0), False), None)
        run.stats["witness"] = "given" if run.witness is not None else "given point rejected"
    spec = prop.output
    b = propagate(net, prop.box, prop.phases)
    run.stats["unstable"] = b.n_unstable
    if b.vacuous:
        return run.done("vacuous", b.reason)
    encs: dict[float, MilpEncoding] = {}

    def enc_maker(margin: float) -> MilpEncoding:
        if margin not in encs:
            encs[margin] = MilpEncoding(net, b, strict_margin=margin)
        return encs[margin]

    lows = spec_lower(net, b, spec)
    open_ids = [k for k, lo in enumerate(lows) if not (lo > 0).any()]
    run.stats["open_after_bounds"] = len(open_ids)
    if open_ids and attack and prop.phases is None:
        # plain robustness: a short attack before the optimised bounds (which take 1-2 s on
        # 256x4), as alpha-beta-CROWN does; falsifiable VNN-COMP instances fall in 0.1 s
        sub = OutputSpec(tuple(spec.disjuncts[k] for k in open_ids), spec.n_outputs)
        ce = run.confirm(pgd_attack(net, prop.box, sub, None, restarts=16, steps=40,
                                    deadline=time.monotonic() + min(0.05 * timeout, 0.5, run.left())), spec)
        if ce is not None:
            return run.done("falsified", "counterexample found by attack", ce)
    how = "bounds"
    n_h = len(net.layer_sizes)
    tried = 0  # candidate starts already walked by pattern-fixed LPs
    if open_ids and optimize and run.left() > 0:
        t = time.monotonic()
        tighten_optimized(net, b, iters=20, deadline=time.monotonic() + min(0.25 * timeout, run.left()))
        run.stats["unstable_final"] = b.n_unstable
        if b.vacuous:
            run.stats["optimize_s"] = time.monotonic() - t
            return run.done("vacuous", b.reason)
        rows = np.vstack([spec.disjuncts[k][0] for k in open_ids])
        consts = -np.concatenate([spec.disjuncts[k][1] for k in open_ids])
        v, info = optimize_rows(net, b, n_h, rows, consts, iters=40, stop_at=0.0,
                                deadline=time.monotonic() + min(0.25 * timeout, run.left()))
        sizes = np.cumsum([0] + [spec.disjuncts[k][0].shape[0] for k in open_ids])
        # the minimisers of the weakest bounds first: starts for the pattern-fixed LPs
        run.starts.extend(info["argmin"][np.argsort(v)])
        opt_lows = {k: v[sizes[i]:sizes[i + 1]] for i, k in enumerate(open_ids)}
        for k in open_ids:
            lows[k] = np.maximum(lows[k], opt_lows[k])
        open_ids = [k for k in open_ids if not (lows[k] > 0).any()]
        run.stats["open_after_optimize"] = len(open_ids)
        run.stats["optimize_s"] = time.monotonic() - t
        how = "optimised bounds"
        if open_ids and patterns and prop.phases is not None and run.starts and run.left() > 0:
            # with phases, the bounds' minimisers are the cheapest good starts: try them before
            # the LP relaxation and the attack (256x2 domain queries: 0.1 s against 1 s). Without
            # phases the attack is quicker (VNN-COMP 256x4 prop_6_0.05: 0.1 s against 3 s).
            ce = _pattern_stage(run, b, spec, open_ids, min(0.1 * timeout, 0.3 * run.left(), 3.0),
                                run.starts, repair=False)
            if ce is not None:
                return run.done("falsified", "counterexample found by a pattern-fixed LP", ce)
            tried = len(run.starts)
    if prop.phases is not None and run.witness is None and open_ids:
        # capped: on deep nets this LP alone can take the whole budget (256x4 domain: > 8 s)
        lp = enc_maker(0.0).solve(time_limit=max(min(0.15 * timeout, run.left()), 0.01), relax=True)
        if lp.status == "infeasible":
            return run.done("vacuous", "the LP relaxation of the phase constraints is infeasible")
        if lp.x is not None:
            run.starts.append(lp.x)
            run.lp_x = lp.x
    if open_ids and attack and run.left() > 0:
        sub = OutputSpec(tuple(spec.disjuncts[k] for k in open_ids), spec.n_outputs)
        budget = min(max(0.1 * timeout, 1.0), 6.0, run.left())
        t = time.monotonic()
        keep: list[np.ndarray] = []
        ce = run.confirm(pgd_attack(net, prop.box, sub, prop.phases,
                                    deadline=time.monotonic() + budget, keep=keep), spec)
        run.stats["attack_s"] = time.monotonic() - t
        if ce is not None:
            return run.done("falsified", "counterexample found by attack", ce)
        run.starts.extend(keep[:6])
    if open_ids and patterns and run.left() > 0 and run.starts[tried:]:
        ce = _pattern_stage(run, b, spec, open_ids, min(0.12 * timeout, 0.3 * run.left()),
                            run.starts[tried:])
        if ce is not None:
            return run.done("falsified", "counterexample found by a pattern-fixed LP", ce)
    if open_ids and tighten and run.left() > 0:
        run.stats["tightened"] = tighten_bounds(net, b, time.monotonic() + 0.3 * run.left())
        encs.clear()
    open_ids.sort(key=lambda k: float(lows[k].max()))
    reasons = []
    for k in open_ids:
        if run.left() <= 0:
            reasons.append("timeout")
            break
        c, d = spec.disjuncts[k]
        status, ce, why = "unknown", None, ""
        if bab and run.left() > 0:
            t = time.monotonic()
            status, ce, why = _bab_disjunct(run, b, spec, c, d, k if patterns else None)
            run.stats["bab_s"] = run.stats.get("bab_s", 0.0) + time.monotonic() - t
            if status == "infeasible":
                how = "branch and bound" if how != "MILP" else how
        if status == "unknown" and run.left() > 0:
            status, ce, why = _milp_point(run, enc_maker, spec, c, d)
            if status == "infeasible":
                how = "MILP"
        if status == "found":
            src = "MILP" if "milp_s" in run.stats and "bab_found" not in run.stats else "branch and bound"
            if run.stats.get("pattern_found"):
                src = "a pattern-fixed LP (from branch and bound's candidates)"
            return run.done("falsified", f"counterexample found by {src}", ce)
        if status == "unknown":
            reasons.append(why or "timeout")
    if reasons:
        return run.done("unknown", "; ".join(dict.fromkeys(reasons)))
    ok, why = _nonempty(run, enc_maker, b)
    if ok is False:
        return run.done("vacuous", why)
    if ok is None:
        return run.done("unknown", f"property holds on the region ({how}) but {why}")
    return run.done("verified", f"proved by {how}")


def _pattern_stage(run: _Run, b, spec, open_ids, budget: float, starts: list[np.ndarray],
                   repair: bool = True) -> Counterexample | None:
    """Pattern-fixed LPs from ``starts`` (60% of the budget, all of it without ``repair``); then,
    when no point is known to follow the phases, repair a start into one (elastic LPs) and
    walk from there."""
    t_end = time.monotonic() + budget
    ps = run.pattern_search(b)

    def check(x):
        return run.confirm(Counterexample(x, np.empty(0), False), spec)

    ce = ps.search(np.array(starts), spec, time.monotonic() + (0.6 if repair else 1.0) * budget, check,
                   order=open_ids, rounds=4)
    if ce is not None or not repair or run.prop.phases is None or time.monotonic() > t_end:
        return ce
    if run.witness is None:
        ps.repair(np.array([*agreement_starts(run.net, b), *run.starts[:3]]), t_end,
                  lambda x: run.confirm(Counterexample(x, np.empty(0), False), None))
    if run.witness is not None:  # its region is non-empty: the walk starts from a feasible LP
        ce = ps.search(run.witness.x[None], spec, t_end, check, order=open_ids, rounds=6)
    return ce


def _bab_disjunct(run: _Run, b, spec, c, d, k=None) -> tuple[str, Counterexample | None, str]:
    """Branch and bound on one disjunct, with half the time left (the MILP gets the rest).

    With ``k`` (the disjunct's index), the first candidate points branch and bound tried
    start pattern-fixed LPs for that disjunct when it ends undecided (a third of its budget).
    """
    # with few unstable neurons HiGHS's MILP decides a disjunct faster than branch and bound
    # (256x2 domain, 27 unstable: 4 s against > 30 s), so branch and bound gets less time there
    budget = (0.5 if b.n_unstable > _FEW_UNSTABLE else 0.15) * run.left()
    tried: list[np.ndarray] = []

    def check(x):
        if len(tried) < 16:
            tried.append(np.array(x, dtype=np.float64))
        return run.confirm(Counterexample(x, np.empty(0), False), spec)

    bab_budget = budget if k is None else budget * 2 / 3
    res = branch_and_bound(run.net, b, c, -np.asarray(d, dtype=np.float64),
                           deadline=time.monotonic() + bab_budget, check=check)
    run.stats["bab_domains"] = run.stats.get("bab_domains", 0) + res.domains
    if res.status == "proved":
        return "infeasible", None, ""
    if res.status == "found":
        run.stats["bab_found"] = True
        return "found", res.counterexample, ""
    if k is not None and tried and run.left() > 0:
        ce = run.pattern_search(b).search(
            np.array(tried[::-1]), spec, time.monotonic() + budget / 3,
            lambda x: run.confirm(Counterexample(x, np.empty(0), False), spec), order=[k])
        if ce is not None:
            run.stats["pattern_found"] = True
            return "found", ce, ""
    return "unknown", None, res.reason


def verify_robustness(
    net: ReluNetwork, box: InputBox, label: int, phases: Phases | None = None,
    timeout: float = 60.0, onnx_model=None, **kw,
) -> VerificationResult:
    """Is ``argmax f(x) = label`` (strictly) for every x of ``box`` following ``phases``?"""
    prop = Property(box, robustness_spec(label, net.n_outputs), phases)
    return verify_property(net, prop, timeout, onnx_model, **kw)


def verify_disjoint(
    net: ReluNetwork, box: InputBox, phases_i: Phases, phases_j: Phases, timeout: float = 60.0,
) -> VerificationResult:
    """Non-ambiguity: ``verified`` when no x of ``box`` follows both sets of phases."""
    pi = check_phases(net.layer_sizes, phases_i) or [np.zeros(n, np.int8) for n in net.layer_sizes]
    pj = check_phases(net.layer_sizes, phases_j) or [np.zeros(n, np.int8) for n in net.layer_sizes]
    t0 = time.monotonic()
    merged, conflict = merge_phases(pi, pj)
    if conflict:
        return VerificationResult("verified", "the patterns fix some neuron to opposite phases",
                                  time.monotonic() - t0)
    anything = OutputSpec(((np.zeros((1, net.n_outputs)), np.zeros(1)),), net.n_outputs)  # not used
    prop = Property(box, anything, check_phases(net.layer_sizes, merged))
    run = _Run(net, prop, timeout, None)
    b = propagate(net, box, prop.phases)
    if b.vacuous:
        return run.done("verified", "no input follows both: " + b.reason)
    enc = MilpEncoding(net, b)
    if enc.solve(time_limit=max(run.left(), 0.01), relax=True).status == "infeasible":
        return run.done("verified", "no input follows both (LP relaxation infeasible)")
    ok, why = _nonempty(run, lambda m: enc, b)
    if ok is True:
        if run.witness is None:  # no phases at all: any point follows both
            run.witness = check_point(net, box, None, None, box.center)
        return run.done("falsified", "an input follows both patterns", run.witness)
    if ok is False:
        return run.done("verified", why)
    return run.done("unknown", why)


def verify_vnnlib(
    net: ReluNetwork, spec: VnnlibSpec | str | Path, phases: Phases | None = None,
    timeout: float = 60.0, onnx_model=None, **kw,
) -> VerificationResult:
    """A VNN-LIB query (optionally with phases): verdict ``sat``, ``unsat`` or ``unknown``."""
    if not isinstance(spec, VnnlibSpec):
        spec = read_vnnlib(spec)
    prop = spec.to_property(net.n_inputs, net.n_outputs, net.layer_sizes)
    extra = check_phases(net.layer_sizes, phases)
    own = check_phases(net.layer_sizes, prop.phases)
    if extra is not None and own is not None:
        extra, conflict = merge_phases(extra, own)
        if conflict:
            return VerificationResult("unsat", "vacuous: the phases conflict", 0.0)
    prop = Property(prop.box, prop.output, extra if extra is not None else own)
    res = verify_property(net, prop, timeout, onnx_model, **kw)
    if res.verdict == "vacuous":
        res.reason = "vacuous: " + res.reason
    res.verdict = VNNLIB_ANSWER[res.verdict]
    return res

"""One query in progress: its options, deadline, bounds, open disjuncts, statistics and
the re-checks every answer goes through (shared by the stages of ``stages.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from napkit.network import ReluNetwork, onnx_logits
from napkit.verify.attack import Counterexample, check_point, pgd_attack
from napkit.verify.bounds import Bounds
from napkit.verify.compact_milp import CompactEncoding
from napkit.verify.milp import MilpEncoding
from napkit.verify.options import VerifyOptions
from napkit.verify.patternlp import PatternSearch, agreement_starts
from napkit.verify.properties import OutputSpec, Property, follows_phases
from napkit.verify.tolerances import PROOF_SLACK, STRICT_MARGIN
from napkit.verify.verdict import FOUND, REFUTED, UNKNOWN, Outcome, VerificationResult


class Query:
    """State of one query: what the stages learnt so far, and how much time is left."""

    def __init__(self, net: ReluNetwork, prop: Property, opts: VerifyOptions, onnx_model=None):
        self.net, self.prop, self.opts, self.onnx = net, prop, opts, onnx_model
        self.spec: OutputSpec = prop.output
        self.timeout = float(opts.timeout)
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.timeout
        self.stats: dict = {}
        self.witness: Counterexample | None = None
        self.starts: list[np.ndarray] = []  # candidate points for pattern-fixed LPs
        self.tried = 0  # how many of ``starts`` pattern-fixed LPs have walked already
        self.patterns: PatternSearch | None = None
        self.lp_x: np.ndarray | None = None  # a point of the LP relaxation of the phase polytope
        # the optimised bounds' parameters per output row of the open disjuncts (disjunct ->
        # (alphas, betas) of its rows): branch and bound starts its root from them
        self.row_params: dict[int, tuple[dict, dict]] = {}
        self.bounds: Bounds | None = None
        self.lows: list[np.ndarray] = []  # per disjunct: lower bounds of its rows
        self.open_ids: list[int] = []  # disjuncts not refuted yet
        self.how = "bounds"  # what refuted the disjuncts closed so far
        self._encs: dict[tuple[float, float, bool], MilpEncoding] = {}
        # with a falsifier process beside (``parallel.py``): a poll that is True once it found
        # a counterexample, and that counterexample (re-checked here)
        self.stop: Callable[[], bool] | None = None
        self.helper_alive: Callable[[], bool] | None = None  # is the falsifier process still running?
        self.found: Counterexample | None = None
        # points given with the query (e.g. the data a NAP was mined from), and per open
        # disjunct the smallest slack among those that follow the phases (``napfalsify.py``)
        self.data: np.ndarray | None = None
        self.data_slack: dict[int, float] = {}
        # per hidden layer: the largest post-activations of the given points that follow the
        # phases (None until the data stage saw one); and how many followed
        self.data_reach: list[np.ndarray] | None = None
        self.data_followers = 0
        # the LP relaxation of the NAP region (``naplp.RegionLp``) the ``nap_lp`` stage built
        # last: any LP of a superset of the region gives sound bounds, so later stages reuse it
        self.region_lp = None

    # ---- time -----------------------------------------------------------------------------
    def left(self) -> float:
        return self.deadline - time.monotonic()

    def free_cores(self) -> int:
        """The query's worker processes less the falsifier's, while it still runs."""
        return self.opts.n_workers - (1 if self.helper_alive is not None and self.helper_alive() else 0)

    def until(self, seconds: float) -> float:
        """A deadline ``seconds`` from now, never past the query's."""
        return time.monotonic() + max(0.0, min(seconds, self.left()))

    # ---- shared helpers ----------------------------------------------------------------------
    def encoding(self, strict: float = 0.0, slack: float = 0.0, compact: bool = False) -> MilpEncoding:
        """The MILP of the region (cached); ``compact``: stable neurons substituted out
        (``CompactEncoding``: the same points, no column per neuron for the pattern LPs)."""
        key = (strict, slack, compact)
        if key not in self._encs:
            kind = CompactEncoding if compact else MilpEncoding
            self._encs[key] = kind(self.net, self.bounds, strict=strict, slack=slack)
        return self._encs[key]

    def forget_encodings(self) -> None:
        self._encs.clear()

    def open_spec(self) -> OutputSpec:
        return OutputSpec(tuple(self.spec.disjuncts[k] for k in self.open_ids), self.spec.n_outputs)

    def pattern_search(self) -> PatternSearch:
        if self.patterns is None:
            self.patterns = PatternSearch(self.net, self.prop.box, self.prop.phases, self.bounds)
        return self.patterns

    def done(self, verdict: str, reason: str, ce: Counterexample | None = None) -> VerificationResult:
        if self.patterns is not None:
            st = self.patterns.stats
            self.stats.update(pattern_lps=st.lps, pattern_s=round(st.seconds, 3), pattern_flips=st.flips)
        return VerificationResult(
            verdict, reason, time.monotonic() - self.t0,
            None if ce is None else ce.x, None if ce is None else ce.logits,
            None if ce is None else ce.strict, self.stats,
        )

    def add_time(self, key: str, since: float) -> None:
        self.stats[key] = self.stats.get(key, 0.0) + time.monotonic() - since

    # ---- re-checks ---------------------------------------------------------------------------
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

    def confirm_point(self, x: np.ndarray, spec: OutputSpec | None = None) -> Counterexample | None:
        return self.confirm(Counterexample(np.asarray(x, dtype=np.float64), np.empty(0), False), spec)

    def try_centre_witness(self) -> None:
        """The box centre as the witness of non-emptiness, when it follows the phases strictly
        (a local query's image usually does: the prover then skips the LP relaxation)."""
        self.confirm_point(self.prop.box.center)
        if self.witness is not None:
            self.stats["witness"] = "box centre"

    def follows_strictly(self, x: np.ndarray) -> bool:
        """Does ``x`` follow the phases with active meaning z > 0 (DESIGN's definition)?

        A point that follows only on the closed boundary (z = 0 for an active neuron) does
        not show that any input follows the NAP, so it is no witness of non-emptiness.
        """
        if self.prop.phases is None:
            return True
        _, pre = self.net.forward(np.asarray(x, dtype=np.float64)[None])
        return bool(follows_phases(pre, self.prop.phases, strict=True)[0])

    def screen(self, xs: np.ndarray) -> np.ndarray:
        """Which rows of ``xs`` could pass ``confirm`` (one batched forward pass)?"""
        y, pre = self.net.forward(xs)
        return self.prop.box.contains(xs) & follows_phases(pre, self.prop.phases) & self.spec.violated(y)

    # ---- the complete method -------------------------------------------------------------
    def milp_disjunct(self, k: int, time_limit: float | None = None, ipm: bool = False
                      ) -> tuple[Outcome, Counterexample | None, str]:
        """Disjunct ``k`` by MILP: (outcome, counterexample, reason) within ``time_limit``
        seconds (default: the time left); ``ipm``: see ``MilpEncoding.solve``. ``refuted``:
        the MILP relaxed by ``PROOF_SLACK`` is infeasible; ``found``: a re-checked point."""
        c, d = self.spec.disjuncts[k]
        end = self.until(self.left() if time_limit is None else time_limit)
        compact = self.opts.milp_compact and self.prop.phases is None
        res = self.encoding(slack=PROOF_SLACK, compact=compact).solve(
            c, d, time_limit=end - time.monotonic(), stop=self.stop, ipm=ipm)
        self.stats["milp_s"] = self.stats.get("milp_s", 0.0) + res.seconds
        if res.status == "infeasible":
            return REFUTED, None, ""
        if res.status != "feasible":
            return UNKNOWN, None, res.message
        ce = self.confirm_point(res.x, self.spec)
        if ce is None:  # a near-boundary solution: repair by a local attack, then a margin
            att = pgd_attack(self.net, self.prop.box, self.spec, self.prop.phases, restarts=4, steps=60,
                             starts=res.x[None],
                             deadline=min(self.until(self.opts.milp_repair_attack_cap), end))
            ce = self.confirm(att, self.spec)
        if ce is None:
            res2 = self.encoding(strict=STRICT_MARGIN, compact=compact).solve(
                c, d, time_limit=end - time.monotonic(), stop=self.stop)
            if res2.status == "feasible":
                ce = self.confirm_point(res2.x, self.spec)
        if ce is None:
            return UNKNOWN, None, "MILP solution failed the exact float64 re-check"
        return FOUND, ce, ""

    def nonempty(self) -> tuple[bool | None, str]:
        """Does some input of the box follow the phases? True/False/None (undecided)."""
        if self.prop.phases is None or self.witness is not None:
            return True, ""

        def confirm(x):  # a witness must follow strictly (see follows_strictly)
            self.confirm_point(x)
            return self.witness

        if confirm(self.prop.box.center) is not None:  # e.g. the centre of a small ball
            return True, ""
        b, o = self.bounds, self.opts
        # 1. pattern-fixed LPs from points that tend to follow the phases (cheap: one LP each)
        first = [*agreement_starts(self.net, b)] if b is not None else []
        first += [] if self.lp_x is None else [self.lp_x]
        if first and self.pattern_search().witness(
                np.array(first), self._share_end(o.nonempty_first_left, o.nonempty_first_cap),
                confirm) is not None:
            self.stats["witness"] = "pattern LP"
            return True, ""
        # 2. the attack with the phases as a penalty
        keep: list[np.ndarray] = []
        cand = pgd_attack(self.net, self.prop.box, None, self.prop.phases, restarts=8, steps=50,
                          deadline=self.until(o.nonempty_attack_cap), keep=keep)
        self.confirm(cand, None)
        if self.witness is not None:
            return True, ""
        # 3. pattern-fixed LPs from its iterates and the LP relaxation, then elastic repairs
        if self.lp_x is None and self.left() > 0:
            lp = self.encoding().solve(time_limit=min(o.nonempty_lp_cap, max(self.left(), 0.01)), relax=True)
            self.lp_x = lp.x
        starts = ([] if self.lp_x is None else [self.lp_x]) + keep[:4] + self.starts[:4]
        if starts and self.left() > 0:
            ps = self.pattern_search()
            w = ps.witness(np.array(starts), self._share_end(o.nonempty_walk_left, o.nonempty_walk_cap),
                           confirm)
            if w is None and self.left() > 0:
                w = ps.repair(np.array(first + starts),
                              self._share_end(o.nonempty_walk_left, o.nonempty_walk_cap), confirm)
            if w is not None:
                self.stats["witness"] = "pattern LP"
                return True, ""
        res = self.encoding().solve(time_limit=self.left())
        if res.status == "infeasible":
            return False, "no input of the region follows the phases (MILP infeasible)"
        if res.status == "feasible" and confirm(res.x) is not None:
            return True, ""
        return None, "could not decide whether any input follows the phases (strictly)"

    def _share_end(self, share: float, cap: float) -> float:
        """A deadline ``share`` of the time left from now, at most ``cap`` seconds away."""
        return time.monotonic() + min(share * self.left(), cap)

"""Counterexamples and witnesses by pattern-fixed LPs: the network is linear on one activation region.

Take a candidate input (an LP-relaxation point, an attack iterate, a branch-and-bound
minimiser), fix every free neuron to that point's on/off state, and the network becomes
an affine map ``y = A x + c`` on the polytope

    box  ∩  {phase-fixed neurons: active z >= mu, inactive z <= -mu}
         ∩  {free unstable neurons: the candidate's state, with the same margin mu}.

One LP over that polytope (columns: the inputs, one free column ``t_k`` per disjunct of
the violation with rows ``C_k y - d_k <= t_k``; minimise ``t_k``) finds the most violating
point of the region for disjunct k; ``t_k <= 0`` gives a candidate counterexample. The
same LP with no objective gives a point that follows the phases (a non-emptiness witness).
When the best ``t_k`` stays positive, the free neurons whose rows are tight with a non-zero
dual are flipped and the LP solved again (a walk to neighbouring regions that does not
lose objective value on the shared face), a few rounds per start.

Nothing here is trusted: every point goes through ``check`` (the exact float64 re-check
of ``attack.check_point``, plus onnxruntime in the engine) before it is reported. The
margin ``mu`` keeps HiGHS's feasibility tolerance (1e-7) from landing on the wrong side
of a phase boundary; the disjunct rows use no margin, but the point is re-checked.
Neurons that the bounds already show stable on the region are not constrained (their
state is implied there) and are linearised by that state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds, check_bounds_of
from napkit.verify.properties import InputBox, OutputSpec, Phases, check_phases, follows_phases

_INF = highspy.kHighsInf
_DUAL_TOL = 1e-9  # a row's dual above this (in magnitude) binds the LP's optimum


@dataclass
class PatternStats:
    lps: int = 0
    infeasible: int = 0
    flips: int = 0
    seconds: float = 0.0
    best: float = np.inf  # smallest t_k seen (<= 0: a violating point of some region)
    climb_end: str = ""  # why the last climb stopped: "no move", "rounds" or "deadline"


class PatternSearch:
    """Pattern-fixed LPs on ``box`` ∩ ``phases`` (and the stable states of ``bounds``)."""

    def __init__(self, net: ReluNetwork, box: InputBox, phases: Phases | None,
                 bounds: Bounds | None = None, margin: float = 1e-6) -> None:
        self.net, self.box, self.margin = net, box, float(margin)
        sizes = net.layer_sizes
        if not isinstance(box, InputBox) or box.n != net.n_inputs:
            raise NapkitError(f"the region must be an InputBox of the network's {net.n_inputs} inputs")
        check_phases(sizes, phases)  # refuses, never rewrites
        if bounds is not None:
            check_bounds_of(net, bounds)
        self.phase = [np.zeros(n, np.int8) if phases is None else np.asarray(phases[k], np.int8)
                      for k, n in enumerate(sizes)]
        if bounds is not None and not bounds.vacuous:
            stab_on = [(lo >= 0) & (p == 0) for lo, p in zip(bounds.lower, self.phase, strict=True)]
            stab_off = [(up <= 0) & (lo < 0) & (p == 0)
                        for lo, up, p in zip(bounds.lower, bounds.upper, self.phase, strict=True)]
        else:
            stab_on = [np.zeros(n, bool) for n in sizes]
            stab_off = [np.zeros(n, bool) for n in sizes]
        self.stab_on, self.stab_off = stab_on, stab_off
        # rows: phase-fixed neurons and free neurons not known stable
        self.rowmask = [(p != 0) | ~(on | off) for p, on, off in zip(self.phase, stab_on, stab_off,
                                                                     strict=True)]
        self.freemask = [(p == 0) & ~(on | off) for p, on, off in zip(self.phase, stab_on, stab_off,
                                                                      strict=True)]
        self.stats = PatternStats()

    def pattern_of(self, x: np.ndarray) -> list[np.ndarray]:
        """The state (True: active) of every neuron at ``x``, with phases and stable states imposed."""
        _, pre = self.net.forward(np.asarray(x, dtype=np.float64).reshape(1, -1))
        out = []
        for z, p, on, off in zip(pre, self.phase, self.stab_on, self.stab_off, strict=True):
            s = z[0] > 0
            s = np.where(p > 0, True, np.where(p < 0, False, s))
            s = np.where(on, True, np.where(off, False, s))
            out.append(s)
        return out

    def _binding_free(self, kinds: np.ndarray, dual: np.ndarray) -> np.ndarray:
        """Mask of the LP's neuron rows (``kinds``: layer, unit) that belong to free neurons
        and bind at the optimum (a non-zero dual): the boundaries a walk may cross."""
        free = np.array([self.freemask[a][b] for a, b in kinds], dtype=bool)
        return (np.abs(dual) > _DUAL_TOL) & free if kinds.size else np.zeros(0, dtype=bool)

    @staticmethod
    def _flip(pattern: list[np.ndarray], rows: np.ndarray) -> None:
        """In place: switch the state of the neurons of ``rows`` (layer, unit pairs of ``kinds``)."""
        for a, b in rows:
            pattern[a][b] = ~pattern[a][b]

    def _affine(self, pattern: list[np.ndarray]):
        """Per hidden layer (A_k, c_k) with ``z_k = A_k x + c_k`` on the region, and the output map."""
        net = self.net
        a_mat, c_vec = net.weights[0], net.biases[0]
        zs = [(a_mat, c_vec)]
        for k in range(1, len(net.layer_sizes) + 1):
            s = pattern[k - 1].astype(np.float64)
            w = net.weights[k] * s[None, :]
            a_mat, c_vec = w @ a_mat, w @ c_vec + net.biases[k]
            zs.append((a_mat, c_vec))
        return zs[:-1], zs[-1]

    def _model(self, pattern, spec: OutputSpec | None, elastic: float = 0.0, affine=None):
        zs, (ao, co) = self._affine(pattern) if affine is None else affine
        mu = self.margin
        blocks, lo, hi, kinds = [], [], [], []
        for k, (a_mat, c_vec) in enumerate(zs):
            m = self.rowmask[k]
            on = pattern[k][m]
            blocks.append(a_mat[m])
            lo.append(np.where(on, -c_vec[m] + mu, -_INF))
            hi.append(np.where(on, _INF, -c_vec[m] - mu))
            kinds.append(np.stack([np.full(m.sum(), k), np.flatnonzero(m)], 1))
        n_in = self.net.n_inputs
        n_dis = 0 if spec is None else len(spec.disjuncts)
        dense = np.vstack(blocks) if blocks else np.zeros((0, n_in))
        dense = np.hstack([dense, np.zeros((dense.shape[0], n_dis))])
        rlo, rhi = np.concatenate(lo), np.concatenate(hi)
        if spec is not None:
            out_rows, olo, ohi = [], [], []
            for q, (cm, d) in enumerate(spec.disjuncts):
                g = cm @ ao
                tcol = np.zeros((cm.shape[0], n_dis))
                tcol[:, q] = -1.0
                out_rows.append(np.hstack([g, tcol]))
                olo.append(np.full(cm.shape[0], -_INF))
                ohi.append(d - cm @ co)
            dense = np.vstack([dense, *out_rows])
            rlo, rhi = np.concatenate([rlo, *olo]), np.concatenate([rhi, *ohi])
        n_col = n_in + n_dis
        cost = np.zeros(n_col)
        col_lo = np.concatenate([self.box.lower, np.full(n_dis, -_INF)])
        col_hi = np.concatenate([self.box.upper, np.full(n_dis, _INF)])
        if elastic:  # one slack column per neuron row (cost 1; phase-fixed rows cost ``elastic``)
            n_r = kinds.shape[0] if (kinds := np.vstack(kinds) if kinds else None) is not None else 0
            on_all = np.concatenate([pattern[k][self.rowmask[k]] for k in range(len(zs))])
            sl = np.zeros((dense.shape[0], n_r))
            sl[np.arange(n_r), np.arange(n_r)] = np.where(on_all, 1.0, -1.0)
            dense = np.hstack([dense, sl])
            fixed = np.array([self.phase[a][b] != 0 for a, b in kinds], dtype=bool)
            cost = np.concatenate([cost, np.where(fixed, float(elastic), 1.0)])
            col_lo = np.concatenate([col_lo, np.zeros(n_r)])
            col_hi = np.concatenate([col_hi, np.full(n_r, _INF)])
            n_col += n_r
            kinds = [kinds]
        nz = dense != 0
        lp = highspy.HighsLp()
        lp.num_col_ = n_col
        lp.num_row_ = dense.shape[0]
        lp.col_cost_ = cost
        lp.col_lower_ = col_lo
        lp.col_upper_ = col_hi
        lp.row_lower_ = rlo
        lp.row_upper_ = rhi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.num_col_ = n_col
        lp.a_matrix_.num_row_ = dense.shape[0]
        lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(nz.sum(1))]).astype(np.int32)
        lp.a_matrix_.index_ = np.nonzero(nz)[1].astype(np.int32)
        lp.a_matrix_.value_ = dense[nz]
        return lp, np.vstack(kinds) if kinds else np.zeros((0, 2), int), n_in, n_dis

    def _highs(self, lp, left: float):
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("time_limit", max(float(left), 0.01))
        h.setOptionValue("presolve", "off")  # re-solves after a cost change stay warm
        h.passModel(lp)
        return h

    def _run(self, h) -> str:
        h.run()
        self.stats.lps += 1
        st = h.getModelStatus()
        S = highspy.HighsModelStatus
        if st == S.kOptimal:
            return "optimal"
        if st in (S.kInfeasible, S.kUnboundedOrInfeasible):
            self.stats.infeasible += 1
            return "infeasible"
        return "other"

    def witness(self, starts: np.ndarray, deadline: float,
                check: Callable[[np.ndarray], object]) -> object | None:
        """A point following the phases: the pattern LP of each start, no objective."""
        t0 = time.monotonic()
        try:
            for x0 in np.atleast_2d(starts):
                if time.monotonic() > deadline:
                    return None
                lp, _, n_in, _ = self._model(self.pattern_of(x0), None)
                h = self._highs(lp, deadline - time.monotonic())
                if self._run(h) != "optimal":
                    continue
                x = self.box.clip(np.asarray(h.getSolution().col_value[:n_in]))
                ce = check(x)
                if ce is not None:
                    return ce
            return None
        finally:
            self.stats.seconds += time.monotonic() - t0

    def repair(self, starts: np.ndarray, deadline: float, check: Callable[[np.ndarray], object],
               rounds: int = 12, weight: float = 10.0) -> object | None:
        """A point following the phases, by elastic pattern LPs from each start.

        With the start's pattern fixed, every neuron row gets a slack (phase-fixed rows cost
        ``weight``, free ones 1) and the total slack is minimised; the pattern is then reset
        to the solution's real one and the LP solved again, until ``check`` accepts a point,
        the pattern repeats or ``rounds`` run out. Exact LP solutions of zero slack are
        witnesses of the pattern region (up to HiGHS's tolerances, hence the re-check).
        """
        t0 = time.monotonic()
        try:
            for x0 in np.atleast_2d(starts):
                x = np.asarray(x0, dtype=np.float64)
                seen: set[bytes] = set()
                last = None  # (pattern, rows, duals) of the previous LP
                for _ in range(rounds):
                    if time.monotonic() > deadline:
                        return None
                    pattern = self.pattern_of(x)
                    key = np.concatenate(pattern).tobytes()
                    if key in seen and last is not None:
                        # a fixed point with slack left: flip the free neurons whose rows bind
                        pattern, kinds, dual = last
                        flip = self._binding_free(kinds, dual)
                        if not flip.any():
                            break
                        self._flip(pattern, kinds[flip])
                        self.stats.flips += int(flip.sum())
                        key = np.concatenate(pattern).tobytes()
                        if key in seen:
                            break
                    seen.add(key)
                    lp, kinds, n_in, _ = self._model(pattern, None, elastic=weight)
                    h = self._highs(lp, deadline - time.monotonic())
                    if self._run(h) != "optimal":
                        break
                    sol = h.getSolution()
                    x = self.box.clip(np.asarray(sol.col_value[:n_in]))
                    ce = check(x)
                    if ce is not None:
                        return ce
                    last = (pattern, kinds, np.asarray(sol.row_dual[: kinds.shape[0]]))
            return None
        finally:
            self.stats.seconds += time.monotonic() - t0

    def climb(self, x0: np.ndarray, layer: int, weights: np.ndarray, deadline: float,
              rounds: int = 40, single_flips: int = 8) -> tuple[float, np.ndarray | None]:
        """The largest ``weights · z_layer`` found on the phases' region from ``x0``: (value, point).

        Each round maximises the hidden pre-activations' combination over the region of the
        current pattern (one LP) and moves to a neighbouring region across the free neurons'
        rows that bind there: all of them at once, or when that region is empty or was seen,
        one at a time by decreasing dual (at most ``single_flips``), the first non-empty one
        taken. It stops when no move is left, after ``rounds`` regions or at ``deadline``
        (``stats.climb_end`` says which). A local search, not a bound: it says how far inputs
        that follow the phases can push a unit (a NAP tail's needs against what inputs reach).
        Only points that follow the phases in an exact forward pass count, with that pass's
        value; ``(-inf, None)`` when none did.
        """
        t0 = time.monotonic()
        weights = np.asarray(weights, dtype=np.float64)
        best: tuple[float, np.ndarray | None] = (-np.inf, None)

        def score(x: np.ndarray) -> None:
            nonlocal best
            _, pre = self.net.forward(x[None])
            value = float(weights @ pre[layer][0])
            if follows_phases(pre, self.phase)[0] and value > best[0]:
                best = (value, x)

        def solve(pattern):  # (solution, row kinds) of the pattern's LP, None when not optimal
            affine = self._affine(pattern)
            lp, kinds, n_in, _ = self._model(pattern, None, affine=affine)
            cost = -(weights @ affine[0][layer][0])
            lp.col_cost_ = np.concatenate([cost, np.zeros(lp.num_col_ - n_in)])
            h = self._highs(lp, deadline - time.monotonic())
            return (h.getSolution(), kinds) if self._run(h) == "optimal" else None

        try:
            x = self.box.clip(np.asarray(x0, dtype=np.float64).reshape(-1))
            score(x)
            pattern = self.pattern_of(x)
            seen = {np.concatenate(pattern).tobytes()}
            found = solve(pattern)
            self.stats.climb_end = "no move"
            for r in range(max(rounds, 1)):
                if found is None:
                    break
                sol, kinds = found
                score(self.box.clip(np.asarray(sol.col_value[: self.net.n_inputs])))
                if r == rounds - 1 or time.monotonic() > deadline:
                    self.stats.climb_end = "rounds" if r == rounds - 1 else "deadline"
                    break
                dual = np.abs(np.asarray(sol.row_dual[: kinds.shape[0]]))
                bind = np.flatnonzero(self._binding_free(kinds, dual))
                bind = bind[np.argsort(-dual[bind])]
                moves = [bind] + ([[i] for i in bind[:single_flips]] if bind.size > 1 else [])
                found = None
                for move in moves:
                    if time.monotonic() > deadline:
                        self.stats.climb_end = "deadline"
                        break
                    trial = [p.copy() for p in pattern]
                    self._flip(trial, kinds[move])
                    key = np.concatenate(trial).tobytes()
                    if key in seen:
                        continue
                    seen.add(key)
                    found = solve(trial)
                    if found is not None:
                        pattern = trial
                        self.stats.flips += len(move)
                        break
            return best
        finally:
            self.stats.seconds += time.monotonic() - t0

    def search(self, starts: np.ndarray, spec: OutputSpec, deadline: float,
               check: Callable[[np.ndarray], object], rounds: int = 6,
               order: list[int] | None = None, per_round: int = 3) -> object | None:
        """A counterexample from the regions of ``starts`` (and a few flips from each).

        ``order``: the disjuncts to try (default all, most violated at the start first);
        ``per_round``: LPs per region (the disjuncts closest to violation there).
        """
        t0 = time.monotonic()
        try:
            for x0 in np.atleast_2d(starts):
                ce = self._walk(x0, spec, deadline, check, rounds, order, per_round)
                if ce is not None:
                    return ce
                if time.monotonic() > deadline:
                    return None
            return None
        finally:
            self.stats.seconds += time.monotonic() - t0

    def _walk(self, x0, spec, deadline, check, rounds, order, per_round):
        pattern = self.pattern_of(x0)
        y0, _ = self.net.forward(np.asarray(x0, dtype=np.float64).reshape(1, -1))
        ks = list(range(len(spec.disjuncts))) if order is None else list(order)
        slack0 = spec.slack(y0)[0]
        ks.sort(key=lambda k: slack0[k])
        for _ in range(max(rounds, 1)):
            if time.monotonic() > deadline:
                return None
            lp, kinds, n_in, n_dis = self._model(pattern, spec)
            h = self._highs(lp, deadline - time.monotonic())  # one model, warm re-solves per k
            best = None  # (t, k, x, row duals)
            ts: dict[int, float] = {}
            for k in ks[:per_round]:
                if time.monotonic() > deadline:
                    return None
                h.setOptionValue("time_limit", max(deadline - time.monotonic(), 0.01))
                cost = np.zeros(n_dis)
                cost[k] = 1.0
                h.changeColsCost(n_dis, np.arange(n_in, n_in + n_dis, dtype=np.int32), cost)
                st = self._run(h)
                if st == "infeasible":
                    return None  # the region itself is empty (same rows for every k)
                if st != "optimal":
                    continue
                sol = h.getSolution()
                t = float(sol.col_value[n_in + k])
                ts[k] = t
                x = self.box.clip(np.asarray(sol.col_value[:n_in]))
                self.stats.best = min(self.stats.best, t)
                if t <= 1e-9:
                    ce = check(x)
                    if ce is not None:
                        return ce
                if best is None or t < best[0]:
                    best = (t, k, x, np.asarray(sol.row_dual[: kinds.shape[0]]))
            if best is None:
                return None
            t, k, x, dual = best
            # next round: the disjuncts by their LP value here, the untried ones after
            ks = sorted(ts, key=ts.get) + [q for q in ks if q not in ts]
            # flip the free neurons whose rows bind at the optimum
            flip = self._binding_free(kinds, dual)
            if not flip.any():
                return None
            self._flip(pattern, kinds[flip])
            self.stats.flips += int(flip.sum())
        return None


def agreement_starts(net: ReluNetwork, bounds: Bounds) -> np.ndarray:
    """Candidate points that tend to follow the phases: per hidden layer with phases, the box
    corner minimising the linear lower bound of ``-sum_j phase_j z_j`` (one backward pass)."""
    from napkit.verify.optimized import optimize_rows
    from napkit.verify.threads import torch_pinned

    torch_pinned()

    if bounds.phases is None or bounds.vacuous:
        return np.zeros((0, net.n_inputs))
    out = []
    for k in range(len(net.layer_sizes) - 1, -1, -1):
        p = bounds.phases[k].astype(np.float64)
        if not p.any():
            continue
        _, info = optimize_rows(net, bounds, k, -p[None], np.zeros(1), iters=0)
        out.append(info["argmin"][0])
    return np.array(out) if out else np.zeros((0, net.n_inputs))

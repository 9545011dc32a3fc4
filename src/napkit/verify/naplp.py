"""The LP relaxation of a NAP region, with a sound lower bound from its duals.

A NAP fixes most neurons, and in the LP of ``milp.py`` a fixed phase is a column bound of
``z``, so the phases of the *later* layers constrain the earlier ones as well; CROWN-style
bounds cannot use that. On the NAP paper's whole-domain queries (256x4, δ = 0.99) the
symbolic bounds of a disjunct "y_j >= y_c" stay near -5, the LP relaxation's minimum of
y_c - y_j is +0.3 to +0.7: the LP alone refutes every disjunct the MILP used to refute.

Cost: the LP has the dense 256x784 input block. HiGHS's interior point method solves the
first objective in about 1 CPU-s (dual simplex: 3.6 CPU-s, 5700 iterations); after its
crossover the other disjuncts change only the objective and the primal simplex re-solves
from that basis in 5-20 iterations (0.01 CPU-s each).

Soundness does not rest on HiGHS's optimality or tolerances: for *any* row multipliers
``lam``, weak duality gives

    min c.x  >=  sum_j min(r_j lo_j, r_j hi_j) + sum_i min(lam_i rlo_i, lam_i rhi_i),
    r = c - A^T lam,

over ``rlo <= A x <= rhi``, ``lo <= x <= hi`` (``dual_bound``, with a multiplier set to 0
where its row side is infinite). HiGHS's duals only make that bound tight; it is evaluated
in float64 and padded by ``BOUND_PAD`` as the symbolic bounds are.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import highspy
import numpy as np

from napkit.verify.bounds import Bounds, relaxation
from napkit.verify.milp import MilpEncoding
from napkit.verify.tolerances import BOUND_PAD


def dual_bound(a_t, cost: np.ndarray, const: float, lam: np.ndarray, col_lo: np.ndarray,
               col_hi: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray) -> float:
    """A lower bound of ``min cost.x + const`` over ``row_lo <= A x <= row_hi``,
    ``col_lo <= x <= col_hi``, valid for any multipliers ``lam`` (both signs are tried);
    ``a_t`` is A transposed (anything with ``@``). ``-inf`` when no finite bound follows."""
    best = -np.inf
    mag_a = abs(a_t)
    for sign in (1.0, -1.0):
        lam_s = sign * np.asarray(lam, dtype=np.float64)
        lam_s = np.where((lam_s > 0) & np.isfinite(row_lo) | (lam_s < 0) & np.isfinite(row_hi), lam_s, 0.0)
        r = cost - a_t @ lam_s
        lo_ok = (r <= 0) | np.isfinite(col_lo)
        hi_ok = (r >= 0) | np.isfinite(col_hi)
        if not (lo_ok.all() and hi_ok.all()):
            continue
        col_terms = np.where(r > 0, r * np.where(np.isfinite(col_lo), col_lo, 0.0),
                             r * np.where(np.isfinite(col_hi), col_hi, 0.0))
        row_side = np.where(lam_s > 0, np.where(np.isfinite(row_lo), row_lo, 0.0),
                            np.where(np.isfinite(row_hi), row_hi, 0.0))
        row_terms = lam_s * row_side
        val = float(col_terms.sum() + row_terms.sum() + const)
        # round-off: of r (|cost| + |A|^T |lam| per column, times the column's range) and of the sums
        x_mag = np.maximum(np.abs(np.where(np.isfinite(col_lo), col_lo, 0.0)),
                           np.abs(np.where(np.isfinite(col_hi), col_hi, 0.0)))
        scale = float(((np.abs(cost) + mag_a @ np.abs(lam_s)) * x_mag).sum() + np.abs(row_terms).sum()
                      + abs(const))
        best = max(best, val - BOUND_PAD * (1.0 + abs(val) + scale))
    return best


class RegionLp:
    """One HiGHS LP of the region (the encoding with binaries relaxed), re-solved per
    objective from the previous basis; every bound it returns is ``dual_bound``'s."""

    def __init__(self, enc: MilpEncoding) -> None:
        import scipy.sparse as sp

        self.enc = enc
        n_row = enc.rlo.size
        self.a_t = sp.csr_matrix((enc.val, enc.idx, np.append(enc.starts, enc.idx.size)),
                                 shape=(n_row, enc.n_col)).T.tocsr()
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", 1)
        self.h.setOptionValue("solver", "ipm")  # crossover stays on: its basis warm-starts the rest
        self.h.passModel(enc._lp(relax=True))
        self._cols = np.arange(enc.n_col, dtype=np.int32)
        self._deadline = np.inf
        self._stop: Callable[[], bool] | None = None

        def check(event) -> None:  # HiGHS's time_limit is not checked in every phase (milp.py)
            if time.monotonic() > self._deadline or (self._stop is not None and self._stop()):
                event.interrupt()

        self.h.cbSimplexInterrupt.subscribe(check)
        self.h.cbIpmInterrupt.subscribe(check)
        self.solves = 0
        self.seconds = 0.0
        # per unit of the last hidden layer: how much its ReLU relaxation helped the LP minima
        # of the rows left open (|objective coefficient| x (a - relu(z)) at the LP's point)
        self.gap = np.zeros(enc.net.layer_sizes[-1])

    def lower(self, g: np.ndarray, const: float, deadline: float, stop=None) -> float:
        """A sound lower bound of ``g . a_last + const`` (``g`` over the last hidden layer's
        units, as ``MilpEncoding.output_rows``) on the region; ``-inf`` when none was found."""
        cost = np.zeros(self.enc.n_col)
        cost[self.enc.out_cols] = g
        return self.minimum(cost, const, deadline, stop)

    def minimum(self, cost: np.ndarray, const: float, deadline: float, stop=None) -> float:
        """A sound lower bound of ``cost . x + const`` over the columns; ``-inf`` when none."""
        t = time.monotonic()
        left = deadline - t
        if left <= 0:
            return -np.inf
        enc = self.enc
        self.h.changeColsCost(enc.n_col, self._cols, cost)
        # HiGHS may count time_limit over all runs of this object: give it from the total so far
        self.h.setOptionValue("time_limit", float(self.h.getRunTime() + left))
        self._deadline, self._stop = deadline, stop
        self.h.run()
        if self.solves == 0:  # from the crossover's basis on: primal simplex (only the cost changed)
            self.h.setOptionValue("solver", "simplex")
            self.h.setOptionValue("simplex_strategy", 4)
        self.solves += 1
        sol = self.h.getSolution()
        self.seconds += time.monotonic() - t
        if not sol.dual_valid:
            return -np.inf
        return dual_bound(self.a_t, cost, const, np.asarray(sol.row_dual), enc.col_lo, enc.col_hi,
                          enc.rlo, enc.rhi)

    def disjunct_lows(self, c: np.ndarray, d: np.ndarray, deadline: float, stop=None) -> np.ndarray:
        """Sound lower bounds of the rows of ``C y - d`` on the region."""
        c = np.atleast_2d(c)
        w, b = self.enc.net.weights[-1][:, self.enc.out_keep], self.enc.net.biases[-1]
        out = np.full(c.shape[0], -np.inf)
        for i in range(c.shape[0]):
            g = c[i] @ w
            out[i] = self.lower(g, float(c[i] @ b - d[i]), deadline, stop)
            if out[i] > 0:
                break  # one refuted row refutes the disjunct
            self._note_gap(g)
        return out

    def _note_gap(self, g: np.ndarray) -> None:
        sol = self.h.getSolution()
        if not sol.value_valid:
            return
        x = np.asarray(sol.col_value)
        enc = self.enc
        a = x[enc.out_cols]
        z = x[enc.z_cols[-1][enc.out_keep]]
        self.gap[enc.out_keep] += np.abs(g) * np.maximum(a - np.maximum(z, 0.0), 0.0)


def tighten_layer(lp: RegionLp, bounds: Bounds, k: int, deadline: float, stop=None,
                  order: np.ndarray | None = None) -> int:
    """Sound LP bounds (``dual_bound``) of the unstable neurons of hidden layer ``k`` over
    ``lp``'s region, written into ``bounds`` (in place, never loosened); returns how many
    became stable. With a NAP the region's LP uses every layer's phases, which CROWN-style
    bounds cannot: on 256x4 whole-domain class 7 the last layer's 18 free neurons (3 become
    stable) move the LP bound of every disjunct from about -2.7 to +0.8. ``order``: only
    these neurons, in this order (default: every unstable one)."""
    col = lp.enc.z_cols[k]
    lo, up = bounds.lower[k], bounds.upper[k]
    gained = 0
    todo = np.flatnonzero((lo < 0) & (up > 0)) if order is None else np.asarray(order)
    for i in todo:
        if not (lo[i] < 0 < up[i]):
            continue
        if time.monotonic() >= deadline or (stop is not None and stop()):
            break
        cost = np.zeros(lp.enc.n_col)
        cost[col[i]] = 1.0
        new_lo = lp.minimum(cost, 0.0, deadline, stop)
        cost[col[i]] = -1.0
        new_up = -lp.minimum(cost, 0.0, deadline, stop) if new_lo < 0 else up[i]
        if new_lo > new_up:  # an empty region: left to the stages that prove vacuity
            continue
        lo[i], up[i] = max(lo[i], new_lo), min(up[i], new_up)
        gained += int(lo[i] >= 0 or up[i] <= 0)
    if k < len(bounds.relax):
        bounds.relax[k] = relaxation(lo, up)
    return gained

"""Ideal-formulation ReLU cuts (Anderson et al. 2020, "Strong mixed-integer programming
formulations for trained neural networks") for a ``CompactEncoding``, and neuron bounds from its
LP relaxation strengthened by them.

An unstable neuron a = relu(w @ v + b) with binary d, whose pre-activation reads columns v each
in its box [L, U], satisfies for every subset I of those columns

    a <= sum_{i in I} w_i (v_i - L'_i (1 - d)) + (b + sum_{i not in I} w_i U'_i) d,

with L'_i / U'_i the bound where w_i v_i is smallest / largest. The big-M rows of the encoding
use only the neuron's own interval; these inequalities describe the convex hull of one neuron
over its input box, so they cut the LP relaxation much closer to the MILP. At a point of the
LP, the most violated one takes i into I exactly when its term in the first sum is the
smaller one (one linear pass per neuron).

On VNN-COMP 256x4 prop_7_0.05's root bounds, the LP of the layers below hidden layer 1 with
three rounds of these cuts per side (``cut_lp_bounds``) narrowed 30 neurons to a mean width of
8.03 in 2.7 s. HiGHS's MILP dual bound at 0.3 s per side reached 9.20 in 18.7 s
(``benchmarks/milp_disjunct_probe.py`` measures the cuts inside the disjunct's MILP instead:
there they slow the MILP down).
"""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp

from napkit.verify.compact_milp import CompactEncoding
from napkit.verify.tolerances import REFINE_BOUND_PAD

CUT_TOLERANCE = 1e-4  # a cut is added when the point violates it by this much (relative)


class IdealCuts:
    """The separation of every unstable neuron's ideal cut for one ``CompactEncoding``."""

    def __init__(self, enc: CompactEncoding) -> None:
        self.enc = enc
        m = sp.csr_matrix((enc.val, enc.idx, np.append(enc.starts, enc.idx.size)),
                          shape=(enc.rlo.size, enc.n_col))
        self.layers = []  # per layer with unstable neurons: (layout, w, b, L', U')
        for lay in enc.layout:
            if lay.neurons.size == 0:
                continue
            w = -m[lay.z_rows].toarray()  # the z row: z - w @ v = b
            w[np.arange(lay.z.size), lay.z] = 0.0
            lo_w = np.where(w >= 0, enc.col_lo, enc.col_hi)
            up_w = np.where(w >= 0, enc.col_hi, enc.col_lo)
            self.layers.append((lay, w, enc.rlo[lay.z_rows], lo_w, up_w))

    def separate(self, point: np.ndarray, tol: float = CUT_TOLERANCE
                 ) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """The most violated cut of each neuron that ``point`` violates: (columns, coefficients,
        rhs) of a row ``coefficients @ columns <= rhs``."""
        out = []
        for coef, rhs in self._cut_rows(point, tol):
            for row, r in zip(coef, rhs, strict=True):
                cols = np.flatnonzero(row).astype(np.int32)
                out.append((cols, row[cols], float(r)))
        return out

    def add_to(self, h: highspy.Highs, point: np.ndarray, tol: float = CUT_TOLERANCE) -> np.ndarray:
        """Add the cuts ``separate`` finds at ``point`` to ``h`` as rows (one call per layer);
        their right-hand sides, in row order."""
        added = []
        for coef, rhs in self._cut_rows(point, tol):
            m = sp.csr_matrix(coef)
            h.addRows(m.shape[0], np.full(m.shape[0], -highspy.kHighsInf), rhs, m.nnz,
                      m.indptr[:-1].astype(np.int32), m.indices.astype(np.int32), m.data)
            added.append(rhs)
        return np.concatenate(added) if added else np.empty(0)

    def _cut_rows(self, point: np.ndarray, tol: float):
        """Per layer with a violated neuron: the dense rows (over every column) and right-hand
        sides of the most violated cut of each violated neuron, all neurons at once."""
        for lay, w, b, lo_w, up_w in self.layers:
            d = point[lay.d][:, None]
            left, right = w * (point[None, :] - lo_w * (1 - d)), w * up_w * d
            take = (left < right) & (w != 0)
            value = np.where(take, left, right).sum(1) + b * point[lay.d]
            t = np.flatnonzero(point[lay.a] - value > tol * (1 + np.abs(value)))
            if t.size == 0:
                continue
            wt, inside = w[t], take[t]
            shift = np.where(inside, wt * lo_w[t], 0.0).sum(1)
            rest = np.where(inside, 0.0, wt * up_w[t]).sum(1)
            coef = np.where(inside, -wt, 0.0)
            r = np.arange(t.size)
            coef[r, lay.a[t]] += 1.0
            coef[r, lay.d[t]] -= shift + b[t] + rest
            yield coef, -shift


def cut_lp_bounds(enc: CompactEncoding, neurons: np.ndarray, rounds: int, deadline: float
                  ) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Lower and upper bounds of the pre-activations ``neurons`` (rows of ``enc.target``, with
    ``enc.offset``) from the LP relaxation with ideal cuts: per side up to ``rounds`` rounds of
    (solve, separate at the optimum, add), each bound the last optimum, padded by
    ``REFINE_BOUND_PAD``. Cuts are valid for the whole region, so they stay for the next
    neurons, except that after each neuron the ones not tight at its optimum are dropped (the
    LP stays small).

    Returns (lower, upper, LPs solved, region shown empty); ±inf where no optimum came out
    (deadline, or a status other than optimal).
    """
    cuts = IdealCuts(enc)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.passModel(enc._lp(relax=True))
    n, base_rows = enc.n_col, enc.rlo.size
    every = np.arange(n, dtype=np.int32)
    lower, upper = np.full(neurons.size, -np.inf), np.full(neurons.size, np.inf)
    solved = 0
    cut_rhs = np.empty(0)  # of the cut rows after ``base_rows``, in row order
    for j, i in enumerate(neurons):
        for sense in (1.0, -1.0):
            h.changeColsCost(n, every, sense * enc.target[i])
            for r in range(rounds + 1):
                left = deadline - time.monotonic()
                if left <= 0:
                    return lower, upper, solved, False
                h.setOptionValue("time_limit", left)
                h.run()
                solved += 1
                status = h.getModelStatus()
                if status == highspy.HighsModelStatus.kInfeasible:
                    return lower, upper, solved, True
                if status != highspy.HighsModelStatus.kOptimal:
                    break
                v = sense * h.getInfo().objective_function_value + enc.offset[i]
                pad = REFINE_BOUND_PAD * (1.0 + abs(v))
                if sense > 0:
                    lower[j] = max(lower[j], v - pad)
                else:
                    upper[j] = min(upper[j], v + pad)
                if r == rounds:
                    break
                found = cuts.add_to(h, np.asarray(h.getSolution().col_value))
                if found.size == 0:
                    break
                cut_rhs = np.concatenate([cut_rhs, found])
        cut_rhs = _drop_slack_cuts(h, base_rows, cut_rhs)
    return lower, upper, solved, False


def _drop_slack_cuts(h: highspy.Highs, base_rows: int, cut_rhs: np.ndarray) -> np.ndarray:
    """Delete the cut rows (after ``base_rows``, right-hand sides ``cut_rhs``) not tight at the
    last solution; the right-hand sides of the rows kept. (The rows' bounds are kept here rather
    than read back with ``getLp``, which copies the whole model once per neuron.)"""
    if cut_rhs.size == 0 or h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return cut_rhs
    activity = np.asarray(h.getSolution().row_value)[base_rows:]
    slack = cut_rhs - activity > 1e-6 * (1.0 + np.abs(cut_rhs))
    if slack.any():
        gone = np.flatnonzero(slack) + base_rows
        h.deleteRows(gone.size, gone.astype(np.int32))
    return cut_rhs[~slack]

"""The MILP of the network with every stable neuron substituted out: only unstable neurons get
columns, so the dense input block has one row per unstable neuron of the first layer, not one
per neuron.

On VNN-COMP 256x4 prop_5_0.05 the model of the layers below hidden layer 1 has 39 600
nonzeros instead of 201 310 (``MilpEncoding``), the same LP optimum to 1e-14, and a tighter
dual bound per second of HiGHS. Every layer's output is carried as an affine map of the
columns so far (dense numpy): an active stable neuron is its affine expression, an inactive
one is 0. A neuron whose phase the query fixes keeps a ranged row, since its interval is then a
constraint of the region, not a consequence of the box; a neuron stable by its bounds needs
none (the bounds hold on every point of the region). ``upto=k`` cuts the network before layer
k and exposes layer k's pre-activations as rows (the MILP-refined bounds); by default the rows
are the logits, and the encoding answers ``solve(c, d)`` like ``MilpEncoding``.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds, check_bounds_of
from napkit.verify.milp import MilpEncoding

_INF = highspy.kHighsInf


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


@dataclass(frozen=True)
class UnstableColumns:
    """Where one hidden layer's unstable neurons live in a ``CompactEncoding``: for neuron
    ``neurons[t]`` its pre-activation column ``z[t]``, post-activation column ``a[t]``, binary
    ``d[t]``, and the equality row ``z_rows[t]`` (``z - pre-activation = bias``, whose other
    entries are minus the neuron's weights on the columns before)."""

    neurons: np.ndarray
    z: np.ndarray
    a: np.ndarray
    d: np.ndarray
    z_rows: np.ndarray


class CompactEncoding(MilpEncoding):
    """Columns: the inputs (the box), then per hidden layer, for its unstable neurons, the
    pre-activation ``z`` (its bounds), the post-activation ``a`` in [0, u] and a binary ``d``:
    ``a >= z``, ``a <= z - l (1 - d)``, ``a <= u d``, and one row ``z = (affine in the columns
    before)``. ``target @ columns + offset`` is layer ``upto``'s pre-activation (the logits);
    ``layout[j]`` says where hidden layer j's unstable neurons are (``UnstableColumns``).
    (``MilpEncoding.z_cols`` has a column for every neuron; here only unstable ones have any.)"""

    def __init__(self, net: ReluNetwork, bounds: Bounds, strict: float = 0.0, slack: float = 0.0,
                 upto: int | None = None) -> None:
        if not (strict >= 0 and slack >= 0):
            raise NapkitError(f"strict and slack are margins: both >= 0, got {strict} and {slack}")
        check_bounds_of(net, bounds)
        if bounds.vacuous:
            raise NapkitError("no MILP for a vacuous region")
        k = len(net.layer_sizes) if upto is None else upto
        self.net, self.strict, self.slack = net, strict, slack
        n_in = self.n_in = net.n_inputs
        lows, highs, binary = [bounds.box.lower], [bounds.box.upper], [np.zeros(n_in, dtype=bool)]
        rows = _Rows()
        post, post_c = np.eye(n_in), np.zeros(n_in)
        n_col = n_in
        self.layout: list[UnstableColumns] = []
        for j in range(k):
            w = net.weights[j]
            pre, pre_c = w @ post, w @ post_c + net.biases[j]
            lo, up = bounds.lower[j], bounds.upper[j]
            unst = np.flatnonzero((lo < 0) & (up > 0))
            nu = unst.size
            z, a, d = (n_col + np.arange(nu) + s * nu for s in range(3))
            self.layout.append(UnstableColumns(unst, z, a, d, rows.n + np.arange(nu)))
            rows.dense(-pre[unst], pre_c[unst], pre_c[unst], extra=z)  # z - pre = pre_c
            if bounds.phases is not None:  # a phase the query fixes is a constraint of the region
                p = bounds.phases[j]
                fixed = np.flatnonzero(p != 0)
                zlo, zhi = lo[fixed].copy(), up[fixed].copy()
                if strict > 0:
                    zlo[p[fixed] > 0] = np.maximum(zlo[p[fixed] > 0], strict)
                    zhi[p[fixed] < 0] = np.minimum(zhi[p[fixed] < 0], -strict)
                rows.dense(pre[fixed], zlo - pre_c[fixed], zhi - pre_c[fixed])
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
        self.n_col = n_col
        self.col_lo, self.col_hi = np.concatenate(lows), np.concatenate(highs)
        self.integ = np.concatenate(binary)
        self.n_binary = int(self.integ.sum())
        self.starts = a_mat.indptr[:-1].astype(np.int32)
        self.idx = a_mat.indices.astype(np.int32)
        self.val = a_mat.data
        self.rlo, self.rhi = np.concatenate(rows.lo), np.concatenate(rows.hi)
        w = net.weights[k]
        self.target, self.offset = w @ post, w @ post_c + net.biases[k]
        self.out_cols = np.arange(n_col)  # the rows below are dense over every column

    def output_rows(self, c: np.ndarray, d: np.ndarray):
        """CSR rows of ``C y <= d - strict + slack`` over the columns (as ``MilpEncoding``)."""
        c = np.atleast_2d(c)
        g = c @ self.target
        rhs = d - c @ self.offset - self.strict + self.slack
        r = c.shape[0]
        return (
            self.n_col * np.arange(r),
            np.broadcast_to(self.out_cols, (r, self.n_col)).ravel(),
            g.ravel(),
            np.full(r, -_INF),
            rhs,
            g,
        )

"""Comparing RDMs: Spearman, Kendall's tau-a, Pearson and cosine over condensed entries.

Kendall's tau-a is (concordant − discordant) / (m(m−1)/2), ties counting as neither
(Nili et al. recommend it for RDMs with tied entries). It is computed in O(m log² m):
discordant pairs are the inversions of one vector once the pairs are sorted by the
other, counted by a vectorised bottom-up merge; an RDM of 1000 patterns has 499500
entries, far beyond a quadratic loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from napkit.errors import NapkitError
from napkit.geometry._input import as_vector
from napkit.geometry.rdm import to_condensed

COMPARISONS = ("spearman", "kendall_tau_a", "pearson", "cosine")


def _inversions(a: np.ndarray) -> int:
    """Number of pairs i < j with a[i] > a[j], for non-negative integers a."""
    n = a.shape[0]
    span = int(a.max()) + 1 if n else 1
    pos = np.arange(n, dtype=np.int64)
    cur = a.astype(np.int64)
    total = 0
    width = 1
    while width < n:
        run = pos // width
        key = run * span + cur  # sorted: runs ascending, values sorted within runs
        right = run % 2 == 1
        left = run[right] - 1
        below = np.searchsorted(key, left * span + cur[right], side="right")
        total += int(((left + 1) * width - below).sum())
        width *= 2
        run = pos // width
        cur = np.sort(run * span + cur) - run * span
    return total


def _pairs_in_runs(same_as_previous: np.ndarray) -> int:
    """Pairs within runs of equal consecutive items, given item i == item i−1 flags."""
    starts = np.flatnonzero(np.concatenate([[True], ~same_as_previous, [True]]))
    runs = np.diff(starts).astype(np.int64)
    return int((runs * (runs - 1) // 2).sum())


def kendall_tau_a(x: Any, y: Any) -> float:
    """Kendall's tau-a of two equally long vectors (no correction for ties)."""
    x, y = as_vector(x, "x"), as_vector(y, "y")  # NaN sorted as a value gave tau = 1
    m = x.shape[0]
    if m < 2 or y.shape[0] != m:
        raise NapkitError(f"tau-a needs two vectors of equal length >= 2, got {m} and {y.shape[0]}")
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    _, yrank, ycounts = np.unique(ys, return_inverse=True, return_counts=True)
    discordant = _inversions(yrank)
    n0 = m * (m - 1) // 2
    same_x = xs[1:] == xs[:-1]
    n1 = _pairs_in_runs(same_x)
    n2 = int((ycounts.astype(np.int64) * (ycounts - 1) // 2).sum())
    n3 = _pairs_in_runs(same_x & (ys[1:] == ys[:-1]))
    return (n0 - n1 - n2 + n3 - 2 * discordant) / n0


def _correlation(a: np.ndarray, b: np.ndarray, center: bool) -> float:
    if center:
        a, b = a - a.mean(), b - b.mean()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        what = "constant RDM" if center else "all-zero RDM"
        raise NapkitError(f"cannot compare a {what} by {'correlation' if center else 'cosine'}")
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def compare_rdms(a: Any, b: Any, method: str = "spearman") -> float:
    """Similarity of two RDMs (square or condensed, same number of patterns)."""
    va, vb = to_condensed(a), to_condensed(b)
    if va.shape != vb.shape:
        raise NapkitError(f"RDMs of different sizes: {va.shape[0]} and {vb.shape[0]} entries")
    if va.shape[0] < 2 and method != "cosine":
        raise NapkitError("comparing RDMs by rank or correlation needs at least 3 patterns")
    if method == "spearman":
        return _correlation(rankdata(va), rankdata(vb), center=True)
    if method == "pearson":
        return _correlation(va, vb, center=True)
    if method == "cosine":
        return _correlation(va, vb, center=False)
    if method == "kendall_tau_a":
        return kendall_tau_a(va, vb)
    raise NapkitError(f"unknown comparison {method!r}; choose one of {', '.join(COMPARISONS)}")

"""Representational dissimilarity matrices through one matrix product, in blocks.

Every method reduces to a Gram matrix of prepared patterns: euclidean from squared
norms and inner products of column-centred patterns (centring keeps precision), cosine
from unit-norm patterns, correlation from row-centred unit-norm patterns (1 − r). The
product is taken block by block over the upper triangle, so memory beyond the input
and the output is one block, and the output may be condensed (n(n−1)/2 values).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from napkit.errors import NapkitError
from napkit.geometry._input import as_patterns, as_real, as_vector

METHODS = ("correlation", "cosine", "euclidean")


def _prepare(x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray | None]:
    if method == "euclidean":
        u = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        return u, np.einsum("ij,ij->i", u, u)
    if method == "correlation":
        u = x - x.mean(axis=1, keepdims=True, dtype=np.float64).astype(x.dtype)
        what = "constant patterns (zero variance) have no correlation"
    elif method == "cosine":
        u = x.copy()
        what = "all-zero patterns have no cosine"
    else:
        raise NapkitError(f"unknown RDM method {method!r}; choose one of {', '.join(METHODS)}")
    norms = np.sqrt(np.einsum("ij,ij->i", u, u))
    bad = np.flatnonzero(norms <= np.finfo(u.dtype).tiny)
    if bad.size:
        raise NapkitError(f"{what}: pattern(s) {bad[:5].tolist()}")
    u /= norms[:, None]
    return u, None


def rdm_blocks(
    patterns: Any,
    method: str = "correlation",
    block_rows: int | None = None,
    dtype: Any = np.float64,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (start, stop, D[start:stop, start:]) over the upper triangle of the RDM."""
    if block_rows is not None and (
        isinstance(block_rows, bool) or not isinstance(block_rows, int | np.integer) or block_rows < 1
    ):
        raise NapkitError(f"block_rows must be a whole number >= 1 (or None), got {block_rows!r}")
    x = as_patterns(patterns, dtype=dtype)
    u, sq = _prepare(x, method)
    n = u.shape[0]
    rows = int(block_rows or max(1, (1 << 25) // (n * u.dtype.itemsize)))
    for a in range(0, n, rows):
        b = min(n, a + rows)
        g = u[a:b] @ u[a:].T
        if sq is None:
            np.subtract(1.0, g, out=g)
            np.clip(g, 0.0, 2.0, out=g)
        else:
            g *= -2.0
            g += sq[a:b, None]
            g += sq[None, a:]
            np.maximum(g, 0.0, out=g)
            np.sqrt(g, out=g)
        g[np.arange(b - a), np.arange(b - a)] = 0.0
        yield a, b, g


def rdm(
    patterns: Any,
    method: str = "correlation",
    condensed: bool = False,
    block_rows: int | None = None,
    dtype: Any = np.float64,
) -> np.ndarray:
    """RDM of (patterns, units): square (n, n) or condensed (n(n−1)/2,) as in scipy.

    ``method`` is "correlation" (1 − Pearson r), "cosine" (1 − cos) or "euclidean".
    ``dtype=np.float32`` halves memory and time at single precision.
    """
    out: np.ndarray | None = None
    n = 0
    for a, b, g in rdm_blocks(patterns, method, block_rows, dtype):
        if out is None:
            n = g.shape[1]
            out = np.empty(n * (n - 1) // 2 if condensed else (n, n), dtype=g.dtype)
        if condensed:
            for i in range(a, b):
                off = i * n - i * (i + 1) // 2
                out[off : off + n - i - 1] = g[i - a, i - a + 1 :]
        else:
            out[a:b, b:] = g[:, b - a :]
            out[b:, a:b] = g[:, b - a :].T
            diag = np.triu(g[:, : b - a])  # the product is not exactly symmetric: mirror
            out[a:b, a:b] = diag + np.triu(diag, 1).T
    assert out is not None
    return out


def condensed_size(m: int) -> int:
    """Number of patterns n of a condensed RDM with m = n(n−1)/2 entries."""
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
        raise NapkitError(f"{m!r} values are not a condensed RDM (n(n-1)/2 for some n >= 2)")
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        raise NapkitError(f"{m} values are not a condensed RDM (n(n-1)/2 for some n >= 2)")
    return n


def to_condensed(rdm_: Any, atol: float = 1e-8) -> np.ndarray:
    """Condensed vector of an RDM; a vector passes through (checked), a square is checked
    for symmetry and a zero diagonal."""
    if not atol >= 0:
        raise NapkitError(f"atol must be >= 0, got {atol}")
    a = as_real(rdm_, "rdm")
    if a.ndim == 1:
        condensed_size(a.shape[0])
        return as_vector(a, "rdm")
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise NapkitError(f"an RDM is square (n, n) with n >= 2 or condensed; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise NapkitError("rdm: contains NaN or infinity")
    if not np.allclose(np.diagonal(a), 0.0, atol=atol):
        raise NapkitError("rdm: the diagonal of an RDM must be zero")
    if not np.allclose(a, a.T, atol=atol, rtol=1e-6):
        raise NapkitError("rdm: an RDM must be symmetric")
    n = a.shape[0]
    out = np.empty(n * (n - 1) // 2)
    for i in range(n - 1):
        off = i * n - i * (i + 1) // 2
        out[off : off + n - i - 1] = a[i, i + 1 :]
    return out


def to_square(rdm_: Any) -> np.ndarray:
    """Square (n, n) form of a condensed RDM (a square one is checked and returned)."""
    v = to_condensed(rdm_)
    n = condensed_size(v.shape[0])
    out = np.zeros((n, n))
    for i in range(n - 1):
        off = i * n - i * (i + 1) // 2
        out[i, i + 1 :] = v[off : off + n - i - 1]
        out[i + 1 :, i] = v[off : off + n - i - 1]
    return out

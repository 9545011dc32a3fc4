"""Linear centred kernel alignment (Kornblith et al. 2019) and its debiased form.

CKA compares two representations of the same n inputs, whatever their widths; linear
CKA is invariant to orthogonal transforms and isotropic scaling of either side. Both
forms are computed from four statistics of the column-centred patterns (tr KL, tr KK,
tr LL and the squared row norms), through features or through Gram matrices, whichever
product is smaller; the debiased form uses the unbiased HSIC estimator (Song et al.
2012), which needs n ≥ 4 and removes the bias of CKA towards 1 when units outnumber
inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napkit.errors import NapkitError
from napkit.geometry._input import as_patterns


@dataclass(frozen=True)
class _Centred:
    x: np.ndarray  # column-centred patterns
    sq: np.ndarray  # squared row norms = diagonal of the Gram matrix
    gram_sq: float  # tr(K K) = ||X^T X||_F^2


def _centre(patterns: Any, name: str) -> _Centred:
    x = as_patterns(patterns, name)
    x = x - x.mean(axis=0)
    if not np.any(x):
        raise NapkitError(f"{name}: constant over the patterns; CKA is undefined")
    return _Centred(x, np.einsum("ij,ij->i", x, x), _cross(x, x))


def _cross(x: np.ndarray, y: np.ndarray) -> float:
    """tr(K L) = ||X^T Y||_F^2 = <X X^T, Y Y^T>, through the cheaper product."""
    n, p, q = x.shape[0], x.shape[1], y.shape[1]
    if p * q <= n * (p + q + n):
        return float(np.square(x.T @ y).sum())
    return float(np.einsum("ij,ij->", x @ x.T, y @ y.T))


def _hsic_unbiased(cross: float, k: np.ndarray, l_: np.ndarray) -> float:
    n = k.shape[0]
    # with centred columns K·1 = 0, so the zero-diagonal K~ has K~·1 = −k and 1'K~1 = −Σk
    kl = float(k @ l_)
    return (cross - kl + k.sum() * l_.sum() / ((n - 1) * (n - 2)) - 2.0 * kl / (n - 2)) / (n * (n - 3))


def _cka(a: _Centred, b: _Centred, debiased: bool) -> float:
    if a.x.shape[0] != b.x.shape[0]:
        na, nb = a.x.shape[0], b.x.shape[0]
        raise NapkitError(f"CKA compares the same inputs: {na} vs {nb} patterns")
    cross = _cross(a.x, b.x)
    if not debiased:
        return float(cross / np.sqrt(a.gram_sq * b.gram_sq))
    if a.x.shape[0] < 4:
        raise NapkitError("debiased CKA needs at least 4 patterns")
    xx = _hsic_unbiased(a.gram_sq, a.sq, a.sq)
    yy = _hsic_unbiased(b.gram_sq, b.sq, b.sq)
    if xx <= 0 or yy <= 0:
        raise NapkitError("debiased CKA is undefined here (a self-similarity estimate is <= 0)")
    return float(_hsic_unbiased(cross, a.sq, b.sq) / np.sqrt(xx * yy))


def linear_cka(x: Any, y: Any, debiased: bool = False) -> float:
    """Linear CKA between (n, p) and (n, q) patterns of the same n inputs."""
    return _cka(_centre(x, "x"), _centre(y, "y"), debiased)

"""Read activation patterns (numpy, torch, zarr/dask layers) as checked float matrices."""

from __future__ import annotations

from typing import Any

import numpy as np

from napkit.errors import NapkitError


def as_patterns(x: Any, name: str = "patterns", dtype: Any = np.float64) -> np.ndarray:
    """(patterns, units) float matrix; trailing axes are flattened; needs ≥ 2 finite rows."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except Exception as exc:  # broken __array__ implementations fail in many ways
        raise NapkitError(f"{name}: cannot be read as an array ({exc})") from exc
    if a.dtype.kind not in "biuf":  # complex would silently lose its imaginary part
        raise NapkitError(f"{name}: expected real numbers, got dtype {a.dtype}")
    if np.dtype(dtype).kind != "f":
        raise NapkitError(f"{name}: compute in a float dtype (float32 or float64), not {np.dtype(dtype)}")
    if a.ndim < 2:
        raise NapkitError(f"{name}: expected (patterns, units), got shape {a.shape}")
    a = np.asarray(a.reshape(a.shape[0], -1), dtype=dtype)
    if a.shape[0] < 2:
        raise NapkitError(f"{name}: need at least 2 patterns, got {a.shape[0]}")
    if a.shape[1] < 1:
        raise NapkitError(f"{name}: patterns have no units")
    if not np.isfinite(a).all():
        raise NapkitError(f"{name}: contains NaN or infinity")
    return a


def as_real(x: Any, name: str) -> np.ndarray:
    """Any array of real numbers as float64 (torch tensors detached); others refused by name."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists, broken __array__
        raise NapkitError(f"{name}: cannot be read as an array ({exc})") from exc
    if a.dtype.kind not in "biuf":
        raise NapkitError(f"{name}: expected real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def as_vector(x: Any, name: str) -> np.ndarray:
    """A finite 1-D float64 vector."""
    a = as_real(x, name)
    if a.ndim != 1:
        raise NapkitError(f"{name}: expected a vector, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise NapkitError(f"{name}: contains NaN or infinity")
    return a

"""Turn what users hand us (numpy, torch tensors, zarr/dask layers) into numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from napkit.errors import NapkitError


def as_numpy(x: Any, name: str = "input") -> np.ndarray:
    """``x`` as a numpy array; torch tensors are detached and moved to the CPU first."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # objects with a broken __array__ fail in many ways
        raise NapkitError(f"{name}: cannot be read as an array ({exc})") from exc


def as_rows(x: Any, name: str = "input") -> np.ndarray:
    """A (samples, features) array: one sample per row, trailing axes flattened."""
    a = as_numpy(x, name)
    if a.ndim == 0:
        raise NapkitError(f"{name}: expected one row per sample, got a scalar")
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    elif a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    if a.dtype.kind not in "biuf":  # complex would lose its imaginary part in "> 0"
        raise NapkitError(f"{name}: expected real numbers, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise NapkitError(f"{name}: contains NaN or infinity")
    return a


def as_labels(y: Any, n: int, name: str = "labels") -> np.ndarray:
    """Integer class labels, one per sample."""
    a = as_numpy(y, name).reshape(-1)
    if a.shape[0] != n:
        raise NapkitError(f"{name}: {a.shape[0]} labels for {n} samples")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or (a != np.round(a)).any():
            raise NapkitError(f"{name}: labels must be integers")
    elif a.dtype.kind not in "iub":
        raise NapkitError(f"{name}: labels must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)

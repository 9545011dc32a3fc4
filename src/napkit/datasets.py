"""Data: ``.npz`` files as the CLI reads them, the embedded digits demo data, and MNIST.

Nothing is downloaded: the demo uses scikit-learn's bundled digits; MNIST is read from a
local ``mnist.npz`` (``NAPKIT_MNIST`` or the project's ``../shared/data``).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from napkit.arrays import real_numbers
from napkit.errors import NapkitError


def scale_inputs(x: np.ndarray) -> np.ndarray:
    """uint8 pixels (0..255) become float32 in [0, 1]; other numbers keep their values."""
    x = real_numbers(x, "inputs")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise NapkitError("inputs contain NaN or infinity")
    return x if x.dtype.kind == "f" else x.astype(np.float32)


NPZ_SIGNATURE = b"PK"  # an .npz is a zip archive of .npy arrays
NPY_SIGNATURE = b"\x93NUMPY"


def npz_keys(path: str | Path) -> list[str]:
    """The array names of an ``.npz`` file (NapkitError when it is not one)."""
    with _open_npz(Path(path)) as f:
        return sorted(f.files)


def _open_npz(p: Path):
    """``p`` opened as an .npz archive, never unpickled; a one-line NapkitError otherwise.

    The file's first bytes are checked first: numpy reads any other file as a pickle (and
    refuses it as "pickled data") and a bare .npy as one array, not as an archive.
    """
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(NPY_SIGNATURE))
        if not head:
            raise EOFError
        if head.startswith(NPY_SIGNATURE):
            raise NapkitError(f"{p} is a single .npy array, not an .npz file: save x and y with np.savez")
        if not head.startswith(NPZ_SIGNATURE):
            raise NapkitError(f"{p} is not an .npz file (not a zip archive of arrays)")
        return np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise NapkitError(f"data file not found: {p}") from None
    except EOFError:  # numpy's answer to an empty or cut-off file
        raise NapkitError(f"{p} is not a readable .npz file: it is empty or truncated") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, NapkitError):
            raise
        raise NapkitError(f"{p} is not a readable .npz file: {exc}") from None


def load_npz(path: str | Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``x`` and ``y`` (or ``x_<split>``/``y_<split>``) from an ``.npz`` file, validated."""
    p = Path(path)
    with _open_npz(p) as f:
        keys = set(f.files)
        xk, yk = ("x", "y") if split is None else (f"x_{split}", f"y_{split}")
        if xk not in keys or yk not in keys:
            hint = "" if split else " (use --split for x_train/y_train style files)"
            raise NapkitError(f"{p} has no arrays {xk!r} and {yk!r}; it has {sorted(keys)}{hint}")
        try:
            x, y = f[xk], f[yk]
        except EOFError:
            raise NapkitError(f"{p} is not a readable .npz file: it is empty or truncated") from None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise NapkitError(f"{p} is not a readable .npz file: {exc}") from None
    return check_data(x, y, str(p))


def check_data(x: np.ndarray, y: np.ndarray, where: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise inputs and integer labels of equal length."""
    try:
        x = scale_inputs(x)
    except NapkitError as exc:
        raise NapkitError(f"{where}: {exc}") from None
    y = np.asarray(y)
    if x.ndim < 2:
        raise NapkitError(f"{where}: inputs must have a sample axis and features, got shape {x.shape}")
    if y.ndim != 1:
        raise NapkitError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if len(x) != len(y):
        raise NapkitError(f"{where}: {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise NapkitError(f"{where}: no samples")
    if y.dtype.kind == "f" and (not np.isfinite(y).all() or (y != np.round(y)).any()):
        raise NapkitError(f"{where}: labels must be whole numbers")
    if y.dtype.kind not in "iuf":
        raise NapkitError(f"{where}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise NapkitError(f"{where}: labels must be ≥ 0")
    return x, y


def load_digits_split(test_fraction: float = 0.3, seed: int = 0):
    """scikit-learn's bundled 8×8 digits, scaled to [0, 1], split with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return train_test_split(
        x, d.target.astype(np.int64), test_size=test_fraction, random_state=seed, stratify=d.target
    )


def mnist_path() -> Path | None:
    """Where a local ``mnist.npz`` is, or None."""
    env = os.environ.get("NAPKIT_MNIST")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist.npz")
    return next((c for c in candidates if c.exists()), None)


def load_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST images as float32 (n, 784) in [0, 1] and labels, from a local file."""
    p = mnist_path()
    if p is None:
        raise NapkitError("mnist.npz not found: set NAPKIT_MNIST to its path")
    x, y = load_npz(p, split)
    return x.reshape(len(x), -1), y

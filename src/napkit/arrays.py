"""Arrays from users, checked once at a public boundary: rectangular and real, not copied."""

from __future__ import annotations

import numpy as np

from napkit.errors import NapkitError

REAL_KINDS = "biuf"  # bool, signed, unsigned, float: complex (its imaginary part would be lost),
# strings and objects are refused


def real_numbers(x, name: str) -> np.ndarray:
    """``x`` as an array of its own dtype (no copy when it is one already). Ragged nested lists
    and anything but real numbers are one :class:`NapkitError` that names ``name``."""
    try:
        a = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise NapkitError(f"{name} is not a rectangular array ({exc})") from None
    if a.dtype.kind not in REAL_KINDS:
        raise NapkitError(f"{name} must be real numbers, got dtype {a.dtype}")
    return a

"""Does an activation pattern follow a NAP? Bit-packed, vectorised over samples.

Patterns and NAP masks are packed into uint64 words; the number of violated constraints
of a pattern s against (A, D) is popcount((A & ~s) | (D & s)), summed over words.
"""

from __future__ import annotations

import numpy as np

from napkit.errors import NapkitError


def as_signs(signs: np.ndarray, name: str = "patterns") -> np.ndarray:
    """On/off patterns as a boolean matrix; 0/1 numbers are accepted, anything else refused.

    A float pre-activation, NaN or a string would otherwise read as "on" wherever it is
    non-zero: the caller must threshold (``x > 0``) itself.
    """
    a = np.asarray(signs)
    if a.dtype == bool:
        return np.atleast_2d(a)
    if a.dtype.kind not in "iuf":
        raise NapkitError(f"{name} must be boolean on/off values, got dtype {a.dtype}")
    if not np.isin(a, (0, 1)).all():
        raise NapkitError(f"{name} must be boolean or 0/1; threshold activations first (x > 0)")
    return np.atleast_2d(a.astype(bool))


def pack_signs(signs: np.ndarray) -> np.ndarray:
    """Pack a boolean (n, neurons) matrix into (n, words) uint64, zero-padded."""
    signs = as_signs(signs)
    if signs.ndim != 2:
        raise NapkitError(f"patterns must be an (n, neurons) matrix, got shape {signs.shape}")
    packed = np.packbits(signs, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def violations_per_class(packed: np.ndarray, active: np.ndarray, inactive: np.ndarray) -> np.ndarray:
    """(n, C) number of constraints of each class's NAP that each pattern violates."""
    _check_packed(packed, active, inactive)
    out = np.empty((packed.shape[0], active.shape[0]), dtype=np.int32)
    notp = ~packed
    for c in range(active.shape[0]):  # a loop over classes, vectorised over samples
        out[:, c] = np.bitwise_count((notp & active[c]) | (packed & inactive[c])).sum(1)
    return out


def violations_for(
    packed: np.ndarray, active: np.ndarray, inactive: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """(n,) violations of each pattern against the NAP in row ``rows[i]`` of the masks."""
    _check_packed(packed, active, inactive)
    rows = np.asarray(rows)
    if rows.shape != (packed.shape[0],) or rows.dtype.kind not in "iu":
        raise NapkitError(
            f"rows must give one integer NAP row per pattern ({packed.shape[0]}), got {rows.shape}"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= active.shape[0]):
        raise NapkitError(f"NAP rows must lie in 0..{active.shape[0] - 1}")
    a, d = active[rows], inactive[rows]
    return np.bitwise_count((~packed & a) | (packed & d)).sum(1).astype(np.int32)


def _check_packed(packed: np.ndarray, active: np.ndarray, inactive: np.ndarray) -> None:
    """Packed patterns and masks must be uint64 words of the same width (same neurons)."""
    for name, a in (("patterns", packed), ("active masks", active), ("inactive masks", inactive)):
        if not isinstance(a, np.ndarray) or a.ndim != 2 or a.dtype != np.uint64:
            raise NapkitError(f"packed {name} must be a 2-D uint64 array from pack_signs")
    if active.shape != inactive.shape or packed.shape[1] != active.shape[1]:
        raise NapkitError(
            f"packed patterns {packed.shape} and masks {active.shape}/{inactive.shape} "
            "cover different neurons"
        )

"""Does an activation pattern follow a NAP? Bit-packed, vectorised over samples.

Patterns and NAP masks are packed into uint64 words; the number of violated constraints
of a pattern s against (A, D) is popcount((A & ~s) | (D & s)), summed over words.
"""

from __future__ import annotations

import numpy as np


def pack_signs(signs: np.ndarray) -> np.ndarray:
    """Pack a boolean (n, neurons) matrix into (n, words) uint64, zero-padded."""
    signs = np.atleast_2d(np.asarray(signs, dtype=bool))
    packed = np.packbits(signs, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def violations_per_class(packed: np.ndarray, active: np.ndarray, inactive: np.ndarray) -> np.ndarray:
    """(n, C) number of constraints of each class's NAP that each pattern violates."""
    out = np.empty((packed.shape[0], active.shape[0]), dtype=np.int32)
    notp = ~packed
    for c in range(active.shape[0]):  # a loop over classes, vectorised over samples
        out[:, c] = np.bitwise_count((notp & active[c]) | (packed & inactive[c])).sum(1)
    return out


def violations_for(
    packed: np.ndarray, active: np.ndarray, inactive: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """(n,) violations of each pattern against the NAP in row ``rows[i]`` of the masks."""
    a, d = active[rows], inactive[rows]
    return np.bitwise_count((~packed & a) | (packed & d)).sum(1).astype(np.int32)

"""Determinism of codes: how many inputs share their code with another one.

Lei et al. call the fraction of inputs that do not get a code of their own the
redundancy ratio, (N − number of distinct codes) / N: 0 means the network hashes every
input to its own code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napkit.codes._input import as_rows
from napkit.errors import NapkitError


def distinct_codes(codes: Any) -> int:
    """Number of distinct rows of a code matrix (packed uint8 or boolean)."""
    c = np.ascontiguousarray(as_rows(codes, "codes"))
    if c.shape[0] == 0:
        raise NapkitError("codes: no samples")
    if c.shape[1] == 0:
        return 1
    rows = c.view(np.dtype((np.void, c.dtype.itemsize * c.shape[1]))).reshape(-1)
    return int(np.unique(rows).shape[0])


def redundancy_ratio(codes: Any) -> float:
    """(N − distinct codes) / N over the rows of ``codes``."""
    distinct = distinct_codes(codes)  # raises on no samples
    n = as_rows(codes, "codes").shape[0]
    return (n - distinct) / n

"""One rounding rule for every number the report shows or prints (HTML, JSON, captions).

Rates, AUROCs and seconds all keep ``DIGITS`` decimals; counts stay integers; an undefined
figure (None or NaN) shows as an en dash in HTML and as ``null`` in JSON.
"""

from __future__ import annotations

import math

import numpy as np

DIGITS = 3
MISSING = "–"


def rounded(v):
    """``v`` with every float rounded to ``DIGITS`` decimals (recursively; NaN becomes None)."""
    if isinstance(v, bool | str) or v is None:
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, DIGITS)
    if isinstance(v, int):
        return v
    if isinstance(v, dict):
        return {k: rounded(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [rounded(x) for x in v]
    return v


def fmt(v, percent: bool = False) -> str:
    """Text of one figure: ints as they are, floats with ``DIGITS`` decimals (or as a percentage
    with ``DIGITS - 2`` decimals, the same precision), missing ones as an en dash."""
    v = rounded(v)
    if v is None:
        return MISSING
    if isinstance(v, bool | str):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if percent:
        return f"{100 * v:.{max(DIGITS - 2, 0)}f}%"
    return f"{v:.{DIGITS}f}"

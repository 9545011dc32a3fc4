"""The one JSON line every command prints with ``--json`` (DESIGN.md's contract), shared by
``napkit`` and ``napkit lm``: floats rounded to 6 decimals, NaN as null, numpy scalars and
arrays as plain JSON."""

from __future__ import annotations

import json
import math
import sys

import numpy as np


def clean_json(v):
    """``v`` with floats rounded (NaN: None), numpy values made plain, containers walked."""
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else round(float(v), 6)
    if isinstance(v, dict):
        return {k: clean_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [clean_json(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


def emit_json(payload: dict, as_json: bool) -> None:
    """Print ``payload`` as one JSON line on stdout when ``--json`` was given."""
    if as_json:
        sys.stdout.write(json.dumps(clean_json(payload)) + "\n")

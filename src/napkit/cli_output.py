"""The one JSON line every command prints with ``--json`` (DESIGN.md's contract), shared by
``napkit`` and ``napkit lm``: floats rounded to 6 decimals, NaN as null, infinities as the
strings ``"inf"``/``"-inf"`` (JSON has no infinity, and ``json.dumps``' bare ``Infinity`` is
rejected by strict parsers), counterexamples unrounded, numpy values as plain JSON."""

from __future__ import annotations

import json
import math
import sys

import numpy as np

# Values under these keys keep every bit: a counterexample rounded to 6 decimals may no
# longer be one.
EXACT_KEYS = frozenset({"counterexample"})


def clean_json(v, exact: bool = False):
    """``v`` with floats rounded (NaN: None; infinities: "inf"/"-inf"), numpy values made
    plain, containers walked. Floats under ``EXACT_KEYS`` (or with ``exact``) are not rounded:
    JSON's shortest repr round-trips a float64 exactly."""
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return float(v) if exact else round(float(v), 6)
    if isinstance(v, dict):
        return {k: clean_json(x, exact or k in EXACT_KEYS) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [clean_json(x, exact) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


def json_text(payload, indent: int | None = None) -> str:
    """``payload`` as strict JSON text (``clean_json``'s rules): what the figure files that
    commands write (report, demos) hold, so that they parse wherever the ``--json`` line does."""
    return json.dumps(clean_json(payload), allow_nan=False, indent=indent, default=float)


def emit_json(payload: dict, as_json: bool) -> None:
    """Print ``payload`` as one JSON line on stdout when ``--json`` was given."""
    if as_json:
        sys.stdout.write(json_text(payload) + "\n")

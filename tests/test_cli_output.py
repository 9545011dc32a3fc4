"""The one JSON line of ``--json``: valid JSON for any float, numpy values made plain."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from napkit.cli_output import clean_json, emit_json, json_text


def _strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8))
def test_any_float_gives_strict_json(values):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        emit_json({"values": values, "array": np.asarray(values, dtype=np.float64)}, True)
    out = _strict_loads(buf.getvalue().strip())
    for got, v in zip(out["values"], values, strict=True):
        if math.isnan(v):
            assert got is None
        elif math.isinf(v):
            assert got == ("inf" if v > 0 else "-inf")
        else:
            assert got == round(v, 6)
    assert out["array"] == out["values"]


def test_numpy_scalars_and_nesting_become_plain():
    got = clean_json({"a": np.int64(3), "b": (np.float32(0.5), [np.float64(np.inf)])})
    assert got == {"a": 3, "b": [0.5, ["inf"]]}
    assert type(got["a"]) is int


def test_nothing_is_printed_without_json(capsys):
    emit_json({"a": 1}, False)
    assert capsys.readouterr().out == ""


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_counterexamples_keep_every_bit(point):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        emit_json({"result": "falsified", "counterexample": np.asarray(point)}, True)
    assert _strict_loads(buf.getvalue())["counterexample"] == point


def test_figure_files_are_strict_json_with_infinities():
    """What the report and the demos write to their figures files parses strictly too."""
    text = json_text({"gap": float("inf"), "low": np.float32(-np.inf), "rows": [np.float64(0.25), math.nan]},
                     indent=1)
    assert _strict_loads(text) == {"gap": "inf", "low": "-inf", "rows": [0.25, None]}
    assert "\n" in text  # indented for people who read the file

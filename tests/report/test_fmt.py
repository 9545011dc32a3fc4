"""One rounding rule: the same figure reads the same in HTML and in JSON."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from napkit.report.fmt import DIGITS, MISSING, fmt, rounded


def test_missing_figures():
    assert fmt(None) == MISSING
    assert fmt(float("nan")) == MISSING
    assert rounded(float("nan")) is None
    assert rounded({"a": [np.float32("nan"), 1]}) == {"a": [None, 1]}


def test_counts_stay_integers_and_text_stays_text():
    assert fmt(np.int64(7)) == "7"
    assert fmt(12) == "12"
    assert fmt("verified") == "verified"
    assert rounded(True) is True


def test_percent_keeps_the_same_precision():
    assert fmt(0.203704) == "0.204"
    assert fmt(0.203704, percent=True) == "20.4%"


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_html_text_is_the_json_value(v):
    assert float(fmt(v)) == rounded(v)
    assert len(fmt(v).split(".")[1]) == DIGITS
    assert math.isclose(rounded(v), v, abs_tol=0.5 * 10**-DIGITS + 1e-9)


def test_rounded_walks_nested_containers():
    out = rounded({"x": (0.12345, [np.float64(2.71828)]), "y": np.array([0.5556, 1.0])})
    assert out == {"x": [0.123, [2.718]], "y": [0.556, 1.0]}

"""Bad input to the geometry room: one NapkitError naming the problem, never a silent
tau of 1 for NaN, a dropped imaginary part or an AssertionError from inside."""

from __future__ import annotations

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.geometry import condensed_size, kendall_tau_a, linear_cka, rdm, to_condensed

PAT = np.random.default_rng(0).normal(size=(10, 5))


def test_kendall_tau_refuses_nan_and_matrices():
    """NaN sorted as a value and tau came out 1.0."""
    with pytest.raises(NapkitError, match="NaN"):
        kendall_tau_a(np.full(5, np.nan), np.arange(5))
    with pytest.raises(NapkitError, match="vector"):
        kendall_tau_a(np.ones((2, 2)), np.ones((2, 2)))


@pytest.mark.parametrize("call", [lambda: rdm(PAT * 1j), lambda: linear_cka(PAT * 1j, PAT)])
def test_complex_patterns_are_refused(call):
    with pytest.raises(NapkitError, match="real numbers"):
        call()


@pytest.mark.parametrize(("kw", "match"), [
    ({"block_rows": -1}, "block_rows"),  # an AssertionError
    ({"block_rows": 0}, "block_rows"),  # silently meant "automatic"
    ({"dtype": np.int32}, "float dtype"),
    ({"dtype": "U3"}, "float dtype"),
])
def test_rdm_refuses_bad_block_sizes_and_dtypes(kw, match):
    with pytest.raises(NapkitError, match=match):
        rdm(PAT, **kw)


@pytest.mark.parametrize("m", [-1, 0, 1.5])
def test_condensed_size_refuses_impossible_lengths(m):
    with pytest.raises(NapkitError, match="condensed RDM"):
        condensed_size(m)


def test_to_condensed_refuses_strings_and_a_negative_tolerance():
    with pytest.raises(NapkitError, match="real numbers"):
        to_condensed(np.array([["0", "1"], ["1", "0"]]))
    with pytest.raises(NapkitError, match="atol"):
        to_condensed(rdm(PAT), atol=-1)

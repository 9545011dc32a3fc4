"""RDM comparisons against naive and scipy references."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau, pearsonr, spearmanr

from napkit.errors import NapkitError
from napkit.geometry import compare_rdms, kendall_tau_a, to_square


def _naive_tau_a(x, y):
    pairs = list(itertools.combinations(range(len(x)), 2))
    return sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in pairs) / len(pairs)


def _tau_a_from_scipy_tau_b(x, y):
    n0 = len(x) * (len(x) - 1) / 2
    ties = [sum(c * (c - 1) / 2 for c in np.unique(v, return_counts=True)[1]) for v in (x, y)]
    tau_b = kendalltau(x, y, variant="b").statistic
    return tau_b * np.sqrt((n0 - ties[0]) * (n0 - ties[1])) / n0


def test_tau_a_hand_case():
    # pairs: (0,1) concordant, (0,2) tied in y, (1,2) discordant -> (1 - 1) / 3
    assert kendall_tau_a([1, 2, 3], [1, 3, 1]) == 0.0
    assert kendall_tau_a([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau_a([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau_a([1, 1, 1], [1, 2, 3]) == 0.0  # tau-a counts ties as neither


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 40), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_tau_a_matches_naive_and_scipy(m, levels, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels + 1, m).astype(float)
    y = rng.integers(0, levels + 1, m).astype(float)
    ours = kendall_tau_a(x, y)
    assert ours == pytest.approx(_naive_tau_a(x, y), abs=1e-12)
    if len(np.unique(x)) > 1 and len(np.unique(y)) > 1:
        assert ours == pytest.approx(_tau_a_from_scipy_tau_b(x, y), abs=1e-9)


def test_tau_a_without_ties_equals_scipy_tau_b_on_a_large_rdm():
    rng = np.random.default_rng(0)
    x = rng.random(20000)
    y = x + rng.random(20000)
    assert kendall_tau_a(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 15), st.integers(0, 2**31 - 1))
def test_other_comparisons_match_scipy(n, seed):
    rng = np.random.default_rng(seed)
    m = n * (n - 1) // 2
    a, b = rng.random(m), rng.random(m)
    assert compare_rdms(a, b, "spearman") == pytest.approx(spearmanr(a, b).statistic, abs=1e-9)
    assert compare_rdms(a, b, "pearson") == pytest.approx(pearsonr(a, b).statistic, abs=1e-9)
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert compare_rdms(to_square(a), b, "cosine") == pytest.approx(cos)
    assert compare_rdms(a, to_square(b), "kendall_tau_a") == pytest.approx(_naive_tau_a(a, b))


def test_bad_input():
    a = np.arange(1.0, 7.0)
    with pytest.raises(NapkitError, match="constant"):
        compare_rdms(a, np.ones(6), "pearson")
    with pytest.raises(NapkitError, match="different sizes"):
        compare_rdms(a, np.arange(3.0), "spearman")
    with pytest.raises(NapkitError, match="unknown comparison"):
        compare_rdms(a, a, "mutual_information")
    with pytest.raises(NapkitError, match="NaN"):
        compare_rdms(a, np.array([1, 2, np.nan, 4, 5, 6.0]), "pearson")

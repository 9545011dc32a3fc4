"""RDMs: hand cases, scipy's pdist, invariances, blocks, forms and bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform

from napkit.errors import NapkitError
from napkit.geometry import METHODS, condensed_size, rdm, to_condensed, to_square


def test_hand_case():
    x = np.array([[0.0, 0.0, 1.0], [3.0, 4.0, 1.0], [1.0, 2.0, 3.0]])
    e = rdm(x, "euclidean")
    assert e[0, 1] == pytest.approx(5.0) and e[0, 2] == pytest.approx(3.0)
    # rows 0 and 2 of the correlation case are perfectly correlated, 1 is anti-correlated
    c = rdm(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [10.0, 20.0, 30.0]]), "correlation")
    assert np.allclose(c, [[0, 2, 0], [2, 0, 2], [0, 2, 0]], atol=1e-12)
    cos = rdm(np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]), "cosine", condensed=True)
    assert cos == pytest.approx([1.0, 1 - 1 / np.sqrt(2), 1 - 1 / np.sqrt(2)])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 30),
    st.integers(2, 12),
    st.sampled_from(METHODS),
    st.sampled_from([None, 1, 3, 7]),
    st.integers(0, 2**31 - 1),
)
def test_matches_pdist(n, p, method, block_rows, seed):
    x = np.random.default_rng(seed).normal(size=(n, p)) * 10 ** np.random.default_rng(seed).uniform(-2, 2)
    ref = pdist(x, method)
    assert np.allclose(rdm(x, method, condensed=True, block_rows=block_rows), ref, atol=1e-9)
    sq = rdm(x, method, block_rows=block_rows)
    assert np.allclose(sq, squareform(ref), atol=1e-9)
    assert np.array_equal(sq, sq.T) and not np.diagonal(sq).any()


def test_float32_and_torch_inputs():
    x = np.random.default_rng(0).normal(size=(20, 9))
    ref = pdist(x, "correlation")
    assert rdm(x, "correlation", condensed=True, dtype=np.float32).dtype == np.float32
    assert np.allclose(rdm(x, "correlation", condensed=True, dtype=np.float32), ref, atol=1e-5)
    assert np.allclose(rdm(torch.from_numpy(x), "correlation", condensed=True), ref)
    assert rdm(x.reshape(20, 3, 3), "euclidean").shape == (20, 20)


def test_correlation_rdm_invariant_to_per_pattern_affine_changes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 25))
    scale = rng.uniform(0.1, 10, size=(40, 1))
    shift = rng.normal(scale=100, size=(40, 1))
    assert np.allclose(rdm(x, "correlation"), rdm(scale * x + shift, "correlation"), atol=1e-10)


def test_euclidean_rdm_invariant_to_translation_and_rotation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 25))
    q, _ = np.linalg.qr(rng.normal(size=(25, 25)))
    t = rng.normal(scale=50, size=(1, 25))
    assert np.allclose(rdm(x, "euclidean"), rdm(x @ q + t, "euclidean"), atol=1e-9)
    assert np.allclose(rdm(x, "cosine"), rdm(x @ q, "cosine"), atol=1e-12)


def test_bad_input():
    x = np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(NapkitError, match="NaN"):
        rdm(np.where(x > 1, np.nan, x))
    with pytest.raises(NapkitError, match="at least 2 patterns"):
        rdm(x[:1])
    with pytest.raises(NapkitError, match="patterns, units"):
        rdm(x[0])
    with pytest.raises(NapkitError, match="constant"):
        rdm(np.vstack([x, np.full(4, 3.0)]), "correlation")
    with pytest.raises(NapkitError, match="all-zero"):
        rdm(np.vstack([x, np.zeros(4)]), "cosine")
    with pytest.raises(NapkitError, match="unknown RDM method"):
        rdm(x, "manhattan")
    with pytest.raises(NapkitError, match="numbers"):
        rdm(np.array([["a", "b"], ["c", "d"]]))


def test_forms_round_trip_and_checks():
    v = np.arange(1.0, 11.0)
    assert condensed_size(10) == 5
    assert np.array_equal(to_square(v), squareform(v))
    assert np.array_equal(to_condensed(to_square(v)), v)
    with pytest.raises(NapkitError, match="not a condensed"):
        to_square(np.ones(4))
    with pytest.raises(NapkitError, match="symmetric"):
        to_condensed(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(NapkitError, match="diagonal"):
        to_condensed(np.array([[1.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(NapkitError, match="square"):
        to_condensed(np.zeros((2, 3)))

"""Blocked Hamming k-NN against brute force and scikit-learn."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import KNeighborsClassifier

from napkit.codes import HammingKNN, hamming_distances, hamming_kneighbors, pack_codes
from napkit.errors import NapkitError


def test_hand_distances():
    a = pack_codes(np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool))
    b = pack_codes(np.array([[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]], dtype=bool))
    assert hamming_distances(a, b).tolist() == [[1, 2, 0], [1, 4, 2]]


def _brute(q_bits, r_bits, k):
    d = (q_bits[:, None, :] != r_bits[None, :, :]).sum(axis=2)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]  # ties: smaller index first
    return np.take_along_axis(d, idx, axis=1), idx


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(1, 60),
    st.integers(1, 140),
    st.integers(1, 9),
    st.sampled_from([64, 512, 1 << 22]),
    st.integers(0, 2**31 - 1),
)
def test_kneighbors_matches_brute_force(nq, nr, bits, k, block_bytes, seed):
    k = min(k, nr)
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95)
    q_bits, r_bits = rng.random((nq, bits)) < p, rng.random((nr, bits)) < p
    dist, idx = hamming_kneighbors(pack_codes(q_bits), pack_codes(r_bits), k, block_bytes)
    bd, bi = _brute(q_bits, r_bits, k)
    assert np.array_equal(dist, bd)
    assert np.array_equal(idx, bi)


def test_knn_classifier_agrees_with_sklearn_hamming():
    rng = np.random.default_rng(3)
    centres = rng.random((4, 48)) < 0.5
    y = rng.integers(0, 4, 400)
    bits = centres[y] ^ (rng.random((400, 48)) < 0.15)
    tr, te = slice(0, 300), slice(300, 400)
    ours = HammingKNN(9, block_bytes=4096).fit(pack_codes(bits[tr]), y[tr])
    ref = KNeighborsClassifier(9, metric="hamming", algorithm="brute").fit(bits[tr], y[tr])
    ref_d, _ = ref.kneighbors(bits[te])
    our_d, _ = ours.kneighbors(pack_codes(bits[te]))
    assert np.allclose(np.sort(ref_d, axis=1) * 48, our_d)
    agree = (ours.predict(pack_codes(bits[te])) == ref.predict(bits[te])).mean()
    assert agree >= 0.97  # only neighbour ties at equal distance may differ
    assert ours.score(pack_codes(bits[te]), y[te]) > 0.9


def test_vote_ties_go_to_smallest_label():
    codes = pack_codes(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=bool))
    knn = HammingKNN(2).fit(codes[:2], [7, 3])
    assert knn.predict(codes[:1]).tolist() == [3]


def test_bad_input():
    codes = pack_codes(np.eye(3, dtype=bool))
    with pytest.raises(NapkitError, match="k = 4"):
        hamming_kneighbors(codes, codes, 4)
    with pytest.raises(NapkitError, match="uint8"):
        hamming_kneighbors(codes.astype(np.int64), codes, 1)
    with pytest.raises(NapkitError, match="different lengths"):
        hamming_kneighbors(np.zeros((1, 9), np.uint8), codes, 1)
    with pytest.raises(NapkitError, match="different lengths"):
        hamming_distances(np.zeros((1, 9), np.uint8), codes)
    with pytest.raises(NapkitError, match="uint8"):
        hamming_distances([[0, 1]], codes)
    with pytest.raises(NapkitError, match="labels"):
        HammingKNN(1).fit(codes, [0, 1])
    with pytest.raises(NapkitError, match="not fitted"):
        HammingKNN(1).predict(codes)

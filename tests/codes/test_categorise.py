"""Clustering accuracies (matched and greedy), k-means and logistic regression on codes."""

import numpy as np
import pytest

from napkit.codes import (
    greedy_accuracy,
    kmeans_accuracy,
    logistic_accuracy,
    matched_accuracy,
    pack_codes,
)
from napkit.errors import NapkitError


def test_matched_and_greedy_hand_case():
    y = [0, 0, 0, 1, 1, 2]
    clusters = [5, 5, 6, 6, 6, 6]
    # one-to-one: 5->0 (2), 6->1 (2) = 4/6; greedy: 5->0 (2), 6->1 (2) = 4/6
    assert matched_accuracy(y, clusters) == pytest.approx(4 / 6)
    assert greedy_accuracy(y, clusters) == pytest.approx(4 / 6)
    # greedy may send two clusters to one label; matching may not
    y2 = [0, 0, 0, 0, 1, 1]
    c2 = [0, 0, 1, 1, 1, 2]
    assert greedy_accuracy(y2, c2) == pytest.approx(5 / 6)
    assert matched_accuracy(y2, c2) == pytest.approx(3 / 6)  # e.g. 0->0 (2), 2->1 (1)


def test_label_permutation_scores_one():
    y = np.array([0, 1, 2, 0, 1, 2])
    assert matched_accuracy(y, (y + 1) % 3) == 1.0


def _separable(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.random((3, 40)) < 0.5
    y = rng.integers(0, 3, 300)
    bits = centres[y] ^ (rng.random((300, 40)) < 0.05)
    return pack_codes(bits), y


def test_kmeans_and_logistic_on_separable_codes():
    codes, y = _separable()
    acc = kmeans_accuracy(codes, y, n_bits=40, seed=0)
    assert acc["matched"] == pytest.approx(1.0) and acc["greedy"] == pytest.approx(1.0)
    assert logistic_accuracy(codes[:200], y[:200], codes[200:], y[200:], 40) == 1.0


def test_kmeans_is_seeded():
    codes, y = _separable(1)
    assert kmeans_accuracy(codes, y, 5, seed=4) == kmeans_accuracy(codes, y, 5, seed=4)


def test_bad_input():
    codes, y = _separable()
    with pytest.raises(NapkitError, match="labels"):
        kmeans_accuracy(codes, y[:-1])
    with pytest.raises(NapkitError, match="two classes"):
        logistic_accuracy(codes, np.zeros(300, int), codes, y)
    with pytest.raises(NapkitError, match="integers"):
        matched_accuracy([0.5, 1.0], [0, 1])

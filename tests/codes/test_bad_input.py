"""Bad input to the codes room: one NapkitError naming the problem, never a silently
packed NaN, a zero-padded width mismatch or a torch error from inside training."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import random_net
from napkit.codes import (
    HammingKNN,
    hamming_distances,
    hamming_kneighbors,
    make_mlp,
    network_on_off,
    on_off,
    pack_codes,
    train_mlp,
    unpack_codes,
)
from napkit.errors import NapkitError

BITS = np.random.default_rng(0).random((20, 30)) > 0.5


def test_on_off_refuses_complex_pre_activations():
    """The imaginary part was dropped by "> 0" without a word."""
    with pytest.raises(NapkitError, match="real numbers"):
        on_off(np.ones((3, 4)) * 1j)


@pytest.mark.parametrize(
    ("bits", "match"),
    [
        (np.full((3, 4), np.nan), "0/1"),
        (np.full((3, 4), 0.5), "0/1"),
        (np.array([["a"]]), "0/1"),
        (np.ones(5, bool), "matrix"),  # was an AxisError
    ],
)
def test_pack_codes_refuses_what_is_not_a_bit_matrix(bits, match):
    with pytest.raises(NapkitError, match=match):
        pack_codes(bits)


def test_pack_codes_accepts_zero_one_integers():
    assert (pack_codes(BITS.astype(int)) == pack_codes(BITS)).all()


@pytest.mark.parametrize("n_bits", [-1, 999, 16, 2.5])
def test_unpack_codes_refuses_a_bit_count_the_codes_cannot_hold(n_bits):
    """-1 dropped the last bit and 999 was silently clamped; 16 of 4 bytes cut whole bytes."""
    with pytest.raises(NapkitError, match="n_bits"):
        unpack_codes(pack_codes(BITS), n_bits)


def test_unpack_codes_round_trips_the_exact_width():
    assert (unpack_codes(pack_codes(BITS), 30) == BITS).all()


def test_codes_of_different_byte_widths_are_not_compared():
    """30 and 9 bits (4 and 2 bytes) both padded to one word and gave distances."""
    a, b = pack_codes(BITS), pack_codes(BITS[:, :9])
    with pytest.raises(NapkitError, match="different lengths"):
        hamming_distances(a, b)
    with pytest.raises(NapkitError, match="different lengths"):
        hamming_kneighbors(a, b, 3)


def test_network_on_off_refuses_a_zero_batch():
    x = np.random.default_rng(0).normal(size=(5, 4))
    with pytest.raises(NapkitError, match="batch"):
        network_on_off(random_net(0), x, batch=0)


def test_training_refuses_bad_hyper_parameters_and_labels():
    x = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 3
    with pytest.raises(NapkitError, match="class"):
        make_mlp(4, [3], 0)
    with pytest.raises(NapkitError, match="learning rate"):
        train_mlp(x, y, (5,), epochs=1, lr=float("nan"))
    with pytest.raises(NapkitError, match="batch_size"):
        train_mlp(x, y, (5,), epochs=1, batch_size=0)
    with pytest.raises(NapkitError, match="0 .. n_classes - 1 = 2"):  # was a torch IndexError
        train_mlp(x, y + 9, (5,), epochs=1, n_classes=3)


def test_knn_score_refuses_fractional_labels():
    """scikit-learn's score raised its own ValueError about continuous targets."""
    codes, y = pack_codes(BITS), np.arange(20) % 3
    knn = HammingKNN(3).fit(codes, y)
    with pytest.raises(NapkitError, match="integers"):
        knn.score(codes, y + 0.5)
    assert knn.score(codes, y) == pytest.approx(np.mean(knn.predict(codes) == y))

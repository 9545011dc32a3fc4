"""Codes: on/off patterns, the constant-unit mask, bit packing."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napkit.codes import CodeEncoder, network_on_off, on_off, pack_codes, unpack_codes
from napkit.errors import NapkitError
from napkit.network import ReluNetwork


def test_on_off_is_strictly_positive_and_concatenates_layers():
    a = np.array([[1.0, 0.0], [-1.0, 2.0]])
    b = np.array([[0.0], [3.0]])
    assert on_off([a, b]).tolist() == [[True, False, False], [False, True, True]]


def test_encoder_drops_constant_units_and_keeps_the_train_mask():
    train = np.array([[1.0, -1.0, 1.0, 0.5], [1.0, -1.0, -1.0, -0.5], [1.0, -2.0, 1.0, 2.0]])
    enc = CodeEncoder().fit(train)
    assert enc.mask_.tolist() == [False, False, True, True]
    assert enc.n_bits_ == 2
    codes = enc.transform(train)
    assert codes.dtype == np.uint8 and codes.shape == (3, 1)
    assert enc.unpack(codes).tolist() == [[True, True], [False, False], [True, True]]
    # a test input on which unit 0 is off still uses the train mask
    test = np.array([[-1.0, 5.0, -1.0, 1.0]])
    assert enc.unpack(enc.transform(test)).tolist() == [[False, True]]


def test_encoder_accepts_torch_and_layer_lists():
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    enc = CodeEncoder().fit([x, x])
    assert enc.n_bits_ == 4
    assert enc.unpack(enc.transform([x, x])).tolist() == [[True, False, True, False]] + [
        [False, True, False, True]
    ]


def test_encoder_rejects_bad_input():
    with pytest.raises(NapkitError, match="constant"):
        CodeEncoder().fit(np.ones((4, 3)))
    with pytest.raises(NapkitError, match="NaN"):
        CodeEncoder().fit(np.array([[np.nan, 1.0], [1.0, -1.0]]))
    with pytest.raises(NapkitError, match="not fitted"):
        CodeEncoder().transform(np.ones((2, 2)))
    enc = CodeEncoder().fit(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    with pytest.raises(NapkitError, match="2 units"):
        enc.transform(np.ones((2, 3)))
    with pytest.raises(NapkitError, match="different numbers"):
        on_off([np.ones((2, 2)), np.ones((3, 2))])


def test_network_on_off_by_name_and_index():
    net = ReluNetwork(
        weights=(np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]]), np.array([[1.0]])),
        biases=(np.zeros(2), np.array([-0.5]), np.zeros(1)),
        layer_names=("h0", "h1"),
    )
    x = np.array([[1.0], [-1.0], [0.25]])
    assert network_on_off(net, x).tolist() == [[True, False, True], [False, True, True], [True, False, False]]
    assert network_on_off(net, x, ["h1"]).tolist() == [[True], [True], [False]]
    assert network_on_off(net, x, [-1]).tolist() == [[True], [True], [False]]
    with pytest.raises(NapkitError, match="no hidden layer named"):
        network_on_off(net, x, ["nope"])
    with pytest.raises(NapkitError, match="out of range"):
        network_on_off(net, x, [2])


@settings(max_examples=40, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 70))))
def test_pack_unpack_round_trip(bits):
    packed = pack_codes(bits)
    assert packed.shape == (bits.shape[0], -(-bits.shape[1] // 8))
    assert np.array_equal(unpack_codes(packed, bits.shape[1]), bits)

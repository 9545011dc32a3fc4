"""Bad input to the network room: one NapkitError naming the problem, never a numpy,
safetensors or torch error from inside, and no half-written model file."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import random_net
from napkit.errors import NapkitError
from napkit.network import ReluNetwork, from_onnx, onnx_logits, save_model, to_onnx, to_torch


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (([[1.0, 2.0], [3.0]],), "rectangular"),
        ((np.array([["a", "b"]]),), "real numbers"),
        ((np.ones((2, 2)) * 1j,), "real numbers"),  # the imaginary part was silently dropped
        (None, "sequences of arrays"),
    ],
)
def test_network_refuses_weights_that_are_not_real_matrices(weights, match):
    with pytest.raises(NapkitError, match=match):
        ReluNetwork(weights, (np.zeros(2),) if weights is not None else None)


def test_network_refuses_a_layer_without_units():
    """A (0, 2) weight with a (0,) bias made a network with no outputs."""
    with pytest.raises(NapkitError, match="do not fit"):
        ReluNetwork((np.ones((0, 2)),), (np.zeros(0),))


def test_network_refuses_non_string_layer_names_and_negative_input_shapes():
    two = (np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(NapkitError, match="strings"):
        ReluNetwork(two, (np.zeros(2), np.zeros(2)), layer_names=(1,))
    with pytest.raises(NapkitError, match="input shape"):
        ReluNetwork((np.ones((2, 4)),), (np.zeros(2),), input_shape=(-2, -2))


def test_forward_refuses_ragged_lists_and_empty_batches_of_the_wrong_width():
    net = random_net(0)
    with pytest.raises(NapkitError, match="rectangular"):
        net.forward([[1, 2, 3, 4], [1, 2]])
    with pytest.raises(NapkitError, match="do not fit"):
        net.forward(np.ones((0, 5)))
    assert net.forward(np.ones((0, 4)))[0].shape == (0, 3)


def test_functions_taking_a_network_name_what_they_got(tmp_path):
    for call in (lambda: save_model("net", tmp_path / "m"), lambda: to_onnx("net"), lambda: to_torch("net")):
        with pytest.raises(NapkitError, match="must be a ReluNetwork"):
            call()
    with pytest.raises(NapkitError, match="path or an onnx.ModelProto"):
        from_onnx(42)


def test_to_torch_refuses_an_integer_dtype():
    import torch

    with pytest.raises(NapkitError, match="floating-point"):
        to_torch(random_net(0), dtype=torch.int32)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.ones((2, 5)), "do not fit"),
        (np.full((2, 4), np.nan), "NaN"),
        (np.array([["a"] * 4]), "do not fit"),
    ],
)
def test_onnx_logits_refuses_inputs_that_do_not_fit(x, match):
    """NaN came back as NaN logits; a wrong width was a numpy reshape error."""
    with pytest.raises(NapkitError, match=match):
        onnx_logits(to_onnx(random_net(0)), x, (4,))


def test_model_writes_into_a_missing_folder_leave_nothing_behind(tmp_path):
    net = random_net(0)
    for write in (save_model, to_onnx):
        with pytest.raises(NapkitError, match="cannot write"):
            write(net, tmp_path / "missing" / "model.onnx")
    assert list(tmp_path.iterdir()) == []

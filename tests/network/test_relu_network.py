import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.network import ReluNetwork


def test_forward_matches_hand_computation(tiny_net):
    logits, pre = tiny_net.forward(np.array([[2.0, 1.0]]))
    # h0 pre: [2, 0.5, 1] -> relu same; h1 pre: [2+0.5-1, -0.5+2+0.5] = [1.5, 2.0]
    np.testing.assert_array_equal(pre[0], [[2.0, 0.5, 1.0]])
    np.testing.assert_array_equal(pre[1], [[1.5, 2.0]])
    np.testing.assert_array_equal(logits, [[1.5, 2.0]])
    assert tiny_net.predict(np.array([2.0, 1.0])).tolist() == [1]


def test_zero_pre_activation_is_inactive(tiny_net):
    _, pre = tiny_net.forward(np.array([[0.0, 0.5]]))
    assert pre[0][0, 1] == 0.0  # exactly on the boundary
    assert not (pre[0] > 0)[0, 1]


def test_sizes_and_offsets(tiny_net):
    assert tiny_net.layer_sizes == (3, 2)
    assert tiny_net.n_neurons == 5
    assert tiny_net.neuron_offsets.tolist() == [0, 3, 5]
    assert (tiny_net.n_inputs, tiny_net.n_outputs) == (2, 2)


def test_fingerprint_names_the_weights(tiny_net):
    w = [a.copy() for a in tiny_net.weights]
    w[1][0, 0] += 1e-12
    other = ReluNetwork(tuple(w), tiny_net.biases, tiny_net.layer_names)
    assert other.fingerprint() != tiny_net.fingerprint()
    same = ReluNetwork(tiny_net.weights, tiny_net.biases, ("a", "b"))
    assert same.fingerprint() == tiny_net.fingerprint()


@pytest.mark.parametrize(
    "weights, biases, msg",
    [
        ((np.ones((3, 2)), np.ones((2, 4))), (np.ones(3), np.ones(2)), "takes 4 inputs"),
        ((np.ones((3, 2)),), (np.ones(2),), "do not fit"),
        ((np.full((3, 2), np.nan),), (np.ones(3),), "NaN"),
        ((), (), "at least one"),
    ],
)
def test_malformed_networks_are_refused(weights, biases, msg):
    with pytest.raises(NapkitError, match=msg):
        ReluNetwork(weights, biases)


def test_bad_inputs_are_refused(tiny_net):
    with pytest.raises(NapkitError, match="do not fit"):
        tiny_net.forward(np.zeros((4, 3)))
    with pytest.raises(NapkitError, match="NaN"):
        tiny_net.forward(np.array([[np.nan, 0.0]]))
    with pytest.raises(NapkitError, match="real numbers"):
        tiny_net.forward(np.array([["a", "b"]]))

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from helpers import random_net
from napkit.errors import NapkitError
from napkit.patterns import NAPMiner, count_patterns, mine


def naive_naps(signs, labels, preds, delta, n_classes, all_samples=False):
    """The paper's way: a dense boolean matrix per class, then the mean, compared exactly."""
    d = Fraction(repr(float(delta)))
    active, inactive = [], []
    for c in range(n_classes):
        keep = (labels == c) & (all_samples | (labels == preds))
        rows = signs[keep]
        p = [Fraction(int(v), len(rows)) for v in rows.sum(0)]
        active.append([q >= d for q in p])
        inactive.append([1 - q >= d for q in p])
    return np.array(active), np.array(inactive)


@st.composite
def pattern_data(draw):
    n = draw(st.integers(1, 60))
    neurons = draw(st.integers(1, 20))
    c = draw(st.integers(1, 4))
    signs = draw(arrays(bool, (n, neurons)))
    labels = draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))
    preds = draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))
    # every class has at least one correctly classified sample
    extra_signs = draw(arrays(bool, (c, neurons)))
    signs = np.vstack([signs, extra_signs])
    labels = np.concatenate([labels, np.arange(c)])
    preds = np.concatenate([preds, np.arange(c)])
    splits = sorted(draw(st.lists(st.integers(0, len(labels)), max_size=4)))
    return signs, labels, preds, c, splits


@settings(max_examples=150, deadline=None)
@given(
    pattern_data(),
    st.sampled_from([1.0, 0.99, 0.95, 0.9, 0.85, 0.75, 0.6, 0.51]),
    st.booleans(),
)
def test_streaming_miner_equals_naive_reference(data, delta, all_samples):
    signs, labels, preds, c, splits = data
    miner = NAPMiner(c, ("l",), (signs.shape[1],), "fp", all_samples)
    bounds = [0, *splits, len(labels)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        miner.update(signs[lo:hi], labels[lo:hi], preds[lo:hi])
    naps = miner.naps(delta)
    ref_a, ref_d = naive_naps(signs, labels, preds, delta, c, all_samples)
    np.testing.assert_array_equal(naps.active, ref_a)
    np.testing.assert_array_equal(naps.inactive, ref_d)


def test_delta_boundary_is_inclusive():
    # neuron 0 active in 99 of 100 samples, neuron 1 in 1 of 100, neuron 2 in 98
    signs = np.zeros((100, 3), bool)
    signs[:99, 0] = True
    signs[:1, 1] = True
    signs[:98, 2] = True
    labels = np.zeros(100, np.int64)
    miner = NAPMiner(1, ("l",), (3,), "fp")
    miner.update(signs, labels, labels)
    naps = miner.naps(0.99)
    assert naps.active[0].tolist() == [True, False, False]
    assert naps.inactive[0].tolist() == [False, True, False]
    coarse = miner.naps(1.0)
    assert not coarse.active.any() and not coarse.inactive.any()


def test_misclassified_samples_are_left_out_unless_asked():
    signs = np.array([[True], [False]])
    labels = np.array([0, 0])
    preds = np.array([0, 1])
    correct = NAPMiner(2, ("l",), (1,), "fp")
    correct.update(signs, labels, preds)
    assert correct.totals.tolist() == [1, 0]
    everything = NAPMiner(2, ("l",), (1,), "fp", all_samples=True)
    everything.update(signs, labels, preds)
    assert everything.totals.tolist() == [2, 0]
    with pytest.raises(NapkitError, match="class 1 has no correctly classified samples"):
        correct.naps(0.9)
    assert correct.naps(0.9, classes=[0]).labels.tolist() == [0]


@pytest.mark.parametrize("delta", [0.5, 0.2, 1.01, float("nan"), "x"])
def test_delta_out_of_range(delta):
    miner = NAPMiner(1, ("l",), (1,), "fp")
    with pytest.raises(NapkitError, match="δ"):
        miner.naps(delta)


def test_labels_are_validated():
    miner = NAPMiner(2, ("l",), (1,), "fp")
    with pytest.raises(NapkitError, match="0..1"):
        miner.update(np.ones((1, 1), bool), np.array([2]), np.array([0]))
    with pytest.raises(NapkitError, match="whole numbers"):
        miner.update(np.ones((1, 1), bool), np.array([0.5]), np.array([0]))


def test_mining_a_network_matches_its_exact_forward_pass():
    net = random_net(7, sizes=(5, 16, 12, 3))
    x = np.random.default_rng(0).normal(size=(400, 5))
    y = net.predict(x)
    y[::7] = (y[::7] + 1) % 3  # some misclassified samples
    naps = mine(net, x, y, 0.9, batch_size=37, progress=False)
    _, pre = net.forward(x)
    signs = np.concatenate([p > 0 for p in pre], axis=1)
    ref_a, ref_d = naive_naps(signs, y, net.predict(x), 0.9, 3)
    # float32 capture may flip a sign within rounding of zero: allow none on this data
    np.testing.assert_array_equal(naps.active, ref_a)
    np.testing.assert_array_equal(naps.inactive, ref_d)
    assert naps.fingerprint == net.fingerprint()
    assert naps.layer_sizes == (16, 12)


def test_count_patterns_refuses_mismatched_data():
    net = random_net(0)
    with pytest.raises(NapkitError, match="labels"):
        count_patterns(net, np.zeros((3, 4)), np.zeros(2, np.int64), progress=False)
    with pytest.raises(NapkitError, match="0..2"):
        count_patterns(net, np.zeros((3, 4)), np.array([0, 1, 5]), progress=False)


def test_mining_memory_does_not_grow_with_the_number_of_samples():
    """Peak memory numpy allocates while mining is set by the batch, not by the data size."""
    import tracemalloc

    net = random_net(9, sizes=(20, 64, 64, 4))
    peaks = []
    for n in (2000, 16000):
        x = np.random.default_rng(0).normal(size=(n, 20)).astype(np.float32)
        y = net.predict(x)
        tracemalloc.start()
        tracemalloc.reset_peak()
        count_patterns(net, x, y, batch_size=500, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 8x the samples: the dense approach would need 8x the memory (16000 x 128 x 4 bytes = 8 MB)
    assert peaks[1] < 1.5 * peaks[0] + 100_000, peaks

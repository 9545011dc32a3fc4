"""Minimal NAPs on a network whose minimal NAP is known exactly."""

import numpy as np
import pytest

from helpers import random_net
from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.patterns import mine
from napkit.verify import domain_box, linf_ball, minimize_nap, verify_robustness


@pytest.fixture
def known():
    """Class 0 is robust on [0,1]^2 exactly when neuron h0 = 0.5 - x0 is inactive (x0 >= 0.5).

    h1 = x0 + x1 + 1 is always active, h2 = -x1 - 1 always inactive (implied by the domain),
    h3 = x1 - 0.5 does not reach the logits. y0 = 1, y1 = 10 relu(h0) + 0.5.
    """
    w0 = np.array([[-1.0, 0.0], [1.0, 1.0], [0.0, -1.0], [0.0, 1.0]])
    b0 = np.array([0.5, 1.0, -1.0, -0.5])
    w1 = np.array([[0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0]])
    b1 = np.array([1.0, 0.5])
    net = ReluNetwork((w0, w1), (b0, b1))
    full = [np.array([-1, 1, -1, 1], np.int8)]
    return net, full


@pytest.mark.parametrize(
    "method, priority",
    [("greedy", None), ("ranked", np.array([0.0, 0.0, 0.0, 1.0]))],  # ranked: h3 ranked first
)
def test_minimal_nap_is_exactly_the_needed_neuron(known, method, priority):
    net, full = known
    box = domain_box(2)
    assert verify_robustness(net, box, 0, None, timeout=10).verdict == "falsified"
    res = minimize_nap(net, box, 0, full, method=method, priority=priority, timeout=10)
    assert res.final.verdict == "verified"
    assert res.phases[0].tolist() == [-1, 0, 0, 0]
    assert (res.original, res.kept, res.implied) == (4, 1, 2)


def test_ranked_with_an_unlucky_order_keeps_a_valid_superset(known):
    net, full = known
    # h0 ranked first: dropping it fails, so the bisection keeps both h0 and h3
    res = minimize_nap(net, domain_box(2), 0, full, method="ranked", priority=np.array([1.0, 0, 0, 0]))
    assert res.phases[0].tolist() == [-1, 0, 0, 1] and res.final.verdict == "verified"


def test_a_nap_that_does_not_prove_is_refused(known):
    net, _ = known
    with pytest.raises(NapkitError, match="nothing to minimise"):
        minimize_nap(net, domain_box(2), 0, [np.array([0, 1, 0, 0], np.int8)], timeout=5)


@pytest.mark.parametrize("method", ["greedy", "ranked"])
def test_minimised_nap_still_proves_on_random_networks(method):
    net = random_net(40, sizes=(3, 12, 10, 3))
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(400, 3))
    y = net.predict(x)
    naps = mine(net, x, y, 0.9, classes=sorted(set(y.tolist())), progress=False)
    minimised = 0
    for c in naps.labels.tolist():
        i = int(np.flatnonzero(y == c)[0])
        box = linf_ball(x[i], 0.05)
        if verify_robustness(net, box, c, naps.phases(c), timeout=10).verdict != "verified":
            continue
        minimised += 1
        res = minimize_nap(net, box, c, naps.phases(c), method=method, timeout=10)
        assert res.kept <= res.original
        # independent re-check of the returned NAP
        assert verify_robustness(net, box, c, res.phases, timeout=10).verdict == "verified"
        kept = np.concatenate(res.phases)
        orig = np.concatenate(naps.phases(c))
        assert ((kept == 0) | (kept == orig)).all()  # only drops, never flips
        # the NAP set with the minimised NAP covers at least the same inputs
        smaller = naps.with_phases(c, res.phases)
        assert smaller.sizes()[smaller.row(c)] == res.kept
    assert minimised, "no class verified, so nothing was minimised"

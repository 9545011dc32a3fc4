"""Radius search: exact radius on the hand-weighted net, brackets, and the NAP's larger radius."""

from __future__ import annotations

import numpy as np
import pytest
from verify_helpers import random_net

from napkit.errors import NapkitError
from napkit.verify import Property, linf_ball, robustness_spec, verify_property
from napkit.verify.radius import RadiusResult, radius_with_and_without_nap, verified_radius

# tiny_net around (0.1, 0.1), label 1: the first counterexample is x0 = x1 = 0.1 + eps with
# y0 = 2 eps - 1.3 = y1 = 0.9 - eps, i.e. eps = 2.2 / 3 (derivation in the test below).
TINY_RADIUS = 2.2 / 3


def test_radius_of_the_tiny_net(tiny_net):
    """y0 = relu(relu(x0) + relu(x1-.5) - 1), y1 = relu(2 relu(x0-x1) - relu(x1-.5) + .5).

    Inside the ball both inputs stay <= 0.1 + eps; y0 - y1 is largest at x0 = x1 = 0.1 + eps,
    where it is 3 eps - 2.2 once eps > 0.4.
    """
    r = verified_radius(tiny_net, np.array([0.1, 0.1]), 1, timeout=10)
    assert isinstance(r, RadiusResult)
    assert r.lower <= TINY_RADIUS <= r.upper
    assert r.width <= 1e-4
    assert r.upper_verdict == "falsified"
    assert r.steps[0].eps == 0.0 and r.steps[0].verdict == "verified"
    # the counterexample's distance shortcut: far fewer queries than a blind bisection from 1.0
    assert len(r.steps) <= 16


def test_nap_makes_the_radius_larger(tiny_net):
    # unit 1 of layer 0 inactive (x1 <= 0.5): then y0 = relu(x0 - 1) = 0 < y1 on the whole domain
    phases = [np.array([0, -1, 0], np.int8), np.zeros(2, np.int8)]
    plain, nap = radius_with_and_without_nap(tiny_net, np.array([0.1, 0.1]), 1, phases, timeout=10)
    assert plain.lower <= TINY_RADIUS <= plain.upper
    assert nap.lower == nap.upper == 1.0 and nap.upper_verdict == "verified"
    assert nap.with_nap and not plain.with_nap
    assert nap.steps[0].eps == 1.0  # started from the plain radius: no query at 0


def test_point_not_robust(tiny_net):
    # at (0.1, 0.1) label 0 already loses: y0 = 0 < y1 = 0.5
    r = verified_radius(tiny_net, np.array([0.1, 0.1]), 0, timeout=5)
    assert (r.lower, r.upper, r.upper_verdict) == (0.0, 0.0, "falsified")


def test_bad_tolerance(tiny_net):
    with pytest.raises(NapkitError):
        verified_radius(tiny_net, np.array([0.1, 0.1]), 1, tol=0)


@pytest.mark.parametrize("seed", range(6))
def test_bracket_is_sound_on_random_nets(seed):
    rng = np.random.default_rng(seed)
    net = random_net(rng, 3, [8, 6], 3)
    x0 = rng.random(3)
    label = int(net.predict(x0[None])[0])
    y, pre = net.forward(x0[None])
    phases = [np.where(z[0] > 0, 1, -1).astype(np.int8) * (rng.random(z.shape[1]) < 0.5) for z in pre]
    plain, nap = radius_with_and_without_nap(net, x0, label, phases, timeout=5, tol=1e-3)
    for r, ph in ((plain, None), (nap, phases)):
        assert r.lower <= r.upper
        if r.upper_verdict != "verified":
            assert r.width <= 1e-3
            assert verify_property(net, Property(linf_ball(x0, r.upper), robustness_spec(label, 3), ph),
                                   5).verdict in ("falsified", "unknown")
        assert verify_property(net, Property(linf_ball(x0, r.lower), robustness_spec(label, 3), ph),
                               5).verdict in ("verified", "vacuous")
    assert nap.lower >= plain.lower

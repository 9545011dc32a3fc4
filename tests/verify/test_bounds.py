import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from verify_helpers import random_net, random_phases

from napkit.network import ReluNetwork
from napkit.verify import InputBox, follows_phases, margin_lower, propagate, robustness_spec
from napkit.verify.bounds import spec_lower


def _hand_net() -> ReluNetwork:
    # z0 = x0 + x1, z1 = x0 - x1; y0 = relu(z0) - relu(z1), y1 = 0.5
    w0 = np.array([[1.0, 1.0], [1.0, -1.0]])
    w1 = np.array([[1.0, -1.0], [0.0, 0.0]])
    return ReluNetwork((w0, w1), (np.zeros(2), np.array([0.0, 0.5])))


def test_hand_network_exact_bounds():
    net = _hand_net()
    b = propagate(net, InputBox(np.full(2, 0.1), np.ones(2)))
    assert np.allclose(b.lower[0], [0.2, -0.9]) and np.allclose(b.upper[0], [2.0, 0.9])
    assert b.active[0].tolist() == [True, False] and b.unstable[0].tolist() == [False, True]
    # fixing z1 inactive makes y0 = x0 + x1 >= 0 exactly
    b2 = propagate(net, InputBox(np.full(2, 0.1), np.ones(2)), [np.array([0, -1], np.int8)])
    assert b2.n_unstable == 0
    m = margin_lower(net, b2, 1)
    assert np.isclose(m[0], 0.5 - 2.0, atol=1e-6)  # y1 - y0 >= 0.5 - 2


def test_conflicting_phase_is_vacuous():
    net = _hand_net()
    # on [0.5,1]^2, z0 = x0 + x1 >= 1 cannot be inactive
    b = propagate(net, InputBox(np.full(2, 0.5), np.ones(2)), [np.array([-1, 0], np.int8)])
    assert b.vacuous and "cannot take its fixed phase" in b.reason


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    n_in=st.integers(1, 3),
    use_phases=st.booleans(),
)
def test_bounds_are_sound_against_sampling(seed, widths, n_in, use_phases):
    rng = np.random.default_rng(seed)
    net = random_net(rng, n_in, widths, 3)
    c = rng.random(n_in)
    r = rng.random(n_in) * 0.8
    box = InputBox(c - r, c + r)
    phases = random_phases(rng, net.layer_sizes) if use_phases else None
    b = propagate(net, box, phases)
    x = box.lower + (box.upper - box.lower) * rng.random((4000, n_in))
    x = np.vstack([x, box.lower, box.upper])
    y, pre = net.forward(x)
    ok = follows_phases(pre, phases)
    if b.vacuous:
        assert not ok.any(), "a vacuous region contains a sample that follows the phases"
        return
    for z, lo, up in zip(pre, b.lower, b.upper, strict=True):
        assert (z[ok] >= lo).all() and (z[ok] <= up).all()
    for label in range(3):
        m = margin_lower(net, b, label)
        margins = y[ok, label][:, None] - y[ok]
        others = np.arange(3) != label
        assert (margins[:, others] >= m[None, others]).all()
    spec = robustness_spec(0, 3)
    for (cm, d), lo in zip(spec.disjuncts, spec_lower(net, b, spec), strict=True):
        assert ((y[ok] @ cm.T - d) >= lo).all()


def test_interval_only_is_looser_or_equal():
    rng = np.random.default_rng(3)
    net = random_net(rng, 3, [8, 8, 8], 2)
    box = InputBox(np.zeros(3), np.ones(3))
    sym, itv = propagate(net, box), propagate(net, box, symbolic=False)
    for a, b in zip(sym.lower, itv.lower, strict=True):
        assert (a >= b).all()
    for a, b in zip(sym.upper, itv.upper, strict=True):
        assert (a <= b).all()

import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.network import ReluNetwork, to_onnx
from napkit.verify import (
    InputBox,
    Property,
    domain_box,
    follows_phases,
    robustness_spec,
    verify_disjoint,
    verify_property,
    verify_robustness,
    verify_vnnlib,
    write_vnnlib,
)


def _step_net() -> ReluNetwork:
    """1 input; z0 = x, z1 = x - 0.7, z2 = -x + 0.2; y0 = relu(z0), y1 = 0.5."""
    w0 = np.array([[1.0], [1.0], [-1.0]])
    b0 = np.array([0.0, -0.7, 0.2])
    w1 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    b1 = np.array([0.0, 0.5])
    return ReluNetwork((w0, w1), (b0, b1))


def test_tiny_exact_answers():
    net = _step_net()
    # y0 > y1 iff x > 0.5
    r = verify_robustness(net, domain_box(1), 0, timeout=10)
    assert r.verdict == "falsified"
    assert r.counterexample[0] <= 0.5 and r.strict
    r = verify_robustness(net, InputBox(np.array([0.6]), np.array([1.0])), 0, timeout=10)
    assert r.verdict == "verified"
    # tie at x = 0.5 exactly: a closed counterexample, not a strict one
    r = verify_robustness(net, InputBox(np.array([0.5]), np.array([1.0])), 0, timeout=10)
    assert r.verdict == "falsified" and r.counterexample[0] == 0.5 and r.strict is False
    # with z1 fixed active (x >= 0.7), class 0 is robust over the whole domain
    ph = [np.array([0, 1, 0], np.int8)]
    r = verify_robustness(net, domain_box(1), 0, phases=ph, timeout=10)
    assert r.verdict == "verified", r.reason
    # z1 active (x >= 0.7) and z2 active (x <= 0.2): nothing follows
    r = verify_robustness(net, domain_box(1), 0, phases=[np.array([0, 1, 1], np.int8)])
    assert r.verdict == "vacuous"


def test_disjoint():
    net = _step_net()
    box = domain_box(1)
    a = [np.array([0, 1, 0], np.int8)]
    b = [np.array([0, -1, 0], np.int8)]
    c = [np.array([0, 0, 1], np.int8)]
    assert verify_disjoint(net, box, a, b).verdict == "verified"  # conflicting phases
    assert verify_disjoint(net, box, a, c).verdict == "verified"  # x >= .7 and x <= .2
    r = verify_disjoint(net, box, b, c)  # x <= .7 and x <= .2: overlap
    assert r.verdict == "falsified" and r.counterexample[0] <= 0.2


def _grid(n=161):
    g = np.linspace(0.0, 1.0, n)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


@pytest.mark.parametrize("seed", range(24))
def test_brute_force_on_2d_toys(seed):
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, [6, 5], 3)
    phases = random_phases(rng, net.layer_sizes, 0.25) if seed % 2 else None
    box = InputBox(np.zeros(2), np.ones(2))
    label = int(seed % 3)
    # every third case without the attack, so the MILP has to find counterexamples too
    r = verify_robustness(net, box, label, phases=phases, timeout=20, attack=seed % 3 != 0)
    x = _grid()
    y, pre = net.forward(x)
    follow = follows_phases(pre, phases)
    bad = follow & robustness_spec(label, 3).violated(y)
    if r.verdict == "verified":
        assert not bad.any(), "verified but a grid point is a counterexample"
        assert follow.any() or phases is not None
    elif r.verdict == "falsified":
        ce = r.counterexample
        assert box.contains(ce)[0]
        yc, prec = net.forward(ce)
        assert follows_phases(prec, phases)[0]
        assert robustness_spec(label, 3).violated(yc)[0]
    elif r.verdict == "vacuous":
        assert not follow.any()
    else:
        pytest.fail(f"tiny network left unknown: {r.reason}")


@pytest.mark.parametrize("seed", range(12))
def test_disjoint_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    net = random_net(rng, 2, [5, 4], 2)
    pi, pj = (random_phases(rng, net.layer_sizes, 0.3) for _ in range(2))
    r = verify_disjoint(net, domain_box(2), pi, pj, timeout=20)
    _, pre = net.forward(_grid())
    both = follows_phases(pre, pi) & follows_phases(pre, pj)
    if r.verdict == "verified":
        assert not both.any()
    else:
        assert r.verdict == "falsified"
        _, pc = net.forward(r.counterexample)
        assert follows_phases(pc, pi)[0] and follows_phases(pc, pj)[0]


def test_vnnlib_round_trip_agrees_and_onnx_recheck(tmp_path):
    for seed in range(6):
        rng = np.random.default_rng(200 + seed)
        net = random_net(rng, 2, [6, 4], 3)
        phases = random_phases(rng, net.layer_sizes, 0.25)
        box = InputBox(np.zeros(2), np.ones(2))
        direct = verify_robustness(net, box, 1, phases=phases, timeout=20)
        path = write_vnnlib(tmp_path / f"q{seed}.vnnlib", box, robustness_spec(1, 3), phases)
        proto = to_onnx(net, expose_preactivations=False)
        via = verify_vnnlib(net, path, timeout=20, onnx_model=proto)
        want = {"verified": "unsat", "vacuous": "unsat", "falsified": "sat"}[direct.verdict]
        assert via.verdict == want, (direct.reason, via.reason)
        if via.verdict == "sat":
            assert via.stats.get("onnx_checked")


def test_general_disjunction_property():
    net = _step_net()
    # violation: y0 <= 0.3 (a single-row polytope); holds iff x <= 0.3
    from napkit.verify import OutputSpec

    spec = OutputSpec(((np.array([[1.0, 0.0]]), np.array([0.3])),), 2)
    r = verify_property(net, Property(InputBox(np.array([0.35]), np.array([1.0])), spec))
    assert r.verdict == "verified"
    r = verify_property(net, Property(domain_box(1), spec))
    assert r.verdict == "falsified" and r.counterexample[0] <= 0.3

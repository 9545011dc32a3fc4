"""The exact tail behind a narrow NAP layer (``naptail.py``): the tail reproduces the
network on the region, refutes a disjunct linear bounds cannot, never refutes a disjunct
some follower violates (seeded random 2-input networks against a dense grid), and the
``nap_tail`` stage never proves a violated property."""

import numpy as np
import pytest
from verify_helpers import random_net

from napkit.network import ReluNetwork
from napkit.verify import InputBox, Property, domain_box, robustness_spec, verify_property
from napkit.verify.attack import check_point
from napkit.verify.bounds import propagate, spec_lower
from napkit.verify.naptail import Tail, narrowest_layer, refute_by_tail
from napkit.verify.properties import follows_phases

_ONLY_NAP_TAIL = dict(attack=False, patterns=False, optimize=False, bab=False, workers=1, nap_lp=False,
                      nap_milp=False, nap_tail_min_unstable=0)


def _narrow_twin(bump: float) -> ReluNetwork:
    """1 input in [-1, 1]. Hidden layer 0: u = x, v = -x - 5 (phase inactive), w = 2x + 3
    (free, feeds nothing): units u and w pass. Hidden layer 1: p = q = relu(u) - 0.5,
    r = relu(u) - 0.9; y0 = relu(p) + 0.1, y1 = relu(q) + bump * relu(r), so
    y0 - y1 = 0.1 - bump * relu(x - 0.9). The unstable twins p, q defeat linear bounds;
    behind layer 0 (2 units) the tail is exact."""
    w0 = np.array([[1.0], [-1.0], [2.0]])
    b0 = np.array([0.0, -5.0, 3.0])
    w1 = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    b1 = np.array([-0.5, -0.5, -0.9])
    w2 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, bump]])
    b2 = np.array([0.1, 0.0])
    return ReluNetwork((w0, w1, w2), (b0, b1, b2))


_TWIN_PHASES = [np.array([0, -1, 0], np.int8), np.zeros(3, np.int8)]
_BOX = InputBox(np.array([-1.0]), np.array([1.0]))


def test_narrowest_layer_is_the_one_with_fewest_units_not_inactive():
    ph = [np.array([0, -1, 1, -1], np.int8), np.array([-1, -1, -1, 0], np.int8), np.zeros(4, np.int8)]
    k, units = narrowest_layer(ph, 3, max_width=2)
    assert k == 1 and units.tolist() == [3]
    assert narrowest_layer(ph, 3, max_width=0) is None
    # the last hidden layer is never the cut (nothing would be left behind it)
    assert narrowest_layer([np.zeros(3, np.int8), np.array([-1, -1, 0], np.int8)], 2, 2) is None


def test_tail_refutes_what_linear_bounds_cannot():
    net = _narrow_twin(bump=0.0)  # y0 - y1 = 0.1 on the region: class 0 holds
    prop = Property(_BOX, robustness_spec(0, 2), _TWIN_PHASES)
    b = propagate(net, _BOX, _TWIN_PHASES)
    assert spec_lower(net, b, prop.output)[0].max() < 0  # the symbolic bounds leave it open
    tail = Tail(net, b, _TWIN_PHASES, *narrowest_layer(_TWIN_PHASES, 2, 8))
    refuted, needs = refute_by_tail(tail, list(prop.output.disjuncts), np.inf)
    assert refuted == [True] and needs == {}
    r = verify_property(net, prop, timeout=10, **_ONLY_NAP_TAIL)
    assert r.verdict == "verified", r.reason
    assert r.stats["nap_tail_refuted"] == 1 and "exact tail" in r.reason


def test_tail_leaves_a_reachable_violation_open_and_the_engine_finds_it():
    net = _narrow_twin(bump=4.0)  # violated for x >= 0.925
    prop = Property(_BOX, robustness_spec(0, 2), _TWIN_PHASES)
    b = propagate(net, _BOX, _TWIN_PHASES)
    tail = Tail(net, b, _TWIN_PHASES, *narrowest_layer(_TWIN_PHASES, 2, 8))
    refuted, needs = refute_by_tail(tail, list(prop.output.disjuncts), np.inf)
    assert refuted == [False] and needs[0][0] >= 0.925 - 1e-6  # the tail input it needs (u = x)
    r = verify_property(net, prop, timeout=10, **_ONLY_NAP_TAIL)
    assert r.verdict == "falsified", r.reason
    assert check_point(net, _BOX, prop.output, prop.phases, r.counterexample) is not None


def _narrow_case(seed: int):
    """A random 2-input network and phases a random point follows: the middle layer's units
    inactive there are fixed inactive (the rest free, or active), the last layer's a few fixed."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, [6, 6, 5], 3)
    _, pre = net.forward(rng.uniform(-1, 1, size=(1, 2)))
    on1, on2 = pre[1][0] > 0, pre[2][0] > 0
    ph = [np.zeros(6, np.int8), np.where(on1, rng.choice([0, 1], size=6), -1).astype(np.int8),
          np.where(rng.random(5) < 0.3, np.where(on2, 1, -1), 0).astype(np.int8)]
    return net, ph


@pytest.mark.parametrize("seed", range(40))
def test_tail_never_refutes_a_disjunct_a_follower_violates(seed):
    net, ph = _narrow_case(seed)
    box = domain_box(2, -1.0, 1.0)
    b = propagate(net, box, ph)
    if b.vacuous:
        pytest.skip("region empty by bounds")
    g = np.linspace(-1, 1, 161)
    xs = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    y, pre = net.forward(xs)
    follow = follows_phases(pre, ph)
    cut = narrowest_layer(ph, 3, 8)
    tail = Tail(net, b, ph, *cut)
    # the tail reproduces the logits of every follower from its units' post-activations
    t = np.maximum(pre[cut[0]][follow][:, cut[1]], 0.0)
    assert tail.box.contains(t).all()
    y_tail, pre_tail = tail.net.forward(t)
    assert np.allclose(y_tail, y[follow]) and follows_phases(pre_tail, tail.phases).all()
    spec = robustness_spec(int(seed % 3), 3)
    refuted, _ = refute_by_tail(tail, list(spec.disjuncts), np.inf)
    for i, (c, d) in enumerate(spec.disjuncts):
        hit = follow & ((y @ c.T) <= d).all(axis=1)
        if hit.any():
            assert not refuted[i], f"disjunct {i} refuted but violated at {xs[hit][0]}"


def test_random_cases_refute_some_and_keep_some():
    """The randomised check above is not vacuous: over its seeds the tail refutes some
    disjuncts and some are violated by followers."""
    refuted_any = violated_any = 0
    box = domain_box(2, -1.0, 1.0)
    g = np.linspace(-1, 1, 81)
    xs = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    for seed in range(40):
        net, ph = _narrow_case(seed)
        b = propagate(net, box, ph)
        if b.vacuous:
            continue
        spec = robustness_spec(int(seed % 3), 3)
        tail = Tail(net, b, ph, *narrowest_layer(ph, 3, 8))
        refuted, _ = refute_by_tail(tail, list(spec.disjuncts), np.inf)
        refuted_any += sum(refuted)
        y, pre = net.forward(xs)
        follow = follows_phases(pre, ph)
        violated_any += sum(bool((follow & ((y @ c.T) <= d).all(axis=1)).any()) for c, d in spec.disjuncts)
    assert refuted_any >= 5 and violated_any >= 5


def _gated_tail_net() -> ReluNetwork:
    """1 input in [-1, 1]; a = x, b = -x; u = relu(a) - 0.9 (phase active: x >= 0.9),
    v = relu(b) - 0.05; w = relu(v) - 0.2; y0 = 0.1, y1 = relu(w). On the region v < 0, so
    y1 = 0: class 0 holds. Behind layer 1 the symbolic box of relu(v) is [0, 0.95], where
    y1 reaches 0.75; the region's LP (relu(a) <= (a + 1) / 2, so u >= 0 forces a >= 0.8)
    bounds v by 0.05, and the tail on that box is refuted."""
    w0, b0 = np.array([[1.0], [-1.0]]), np.zeros(2)
    w1, b1 = np.eye(2), np.array([-0.9, -0.05])
    w2, b2 = np.array([[0.0, 1.0]]), np.array([-0.2])
    w3, b3 = np.array([[0.0], [1.0]]), np.array([0.1, 0.0])
    return ReluNetwork((w0, w1, w2, w3), (b0, b1, b2, b3))


def test_tail_after_the_region_lp_uses_its_tightened_box():
    from napkit.verify.napfalsify import nap_tail, nap_tail_lp
    from napkit.verify.naplp import RegionLp
    from napkit.verify.options import VerifyOptions
    from napkit.verify.query import Query
    from napkit.verify.stages import symbolic_bounds

    ph = [np.zeros(2, np.int8), np.array([1, 0], np.int8), np.zeros(1, np.int8)]
    prop = Property(_BOX, robustness_spec(0, 2), ph)
    q = Query(_gated_tail_net(), prop, VerifyOptions(timeout=10, nap_tail_min_unstable=0), None)
    symbolic_bounds(q)
    assert q.open_ids == [0]
    nap_tail(q)  # the symbolic box: the tail reaches the violation, the disjunct stays open
    assert q.open_ids == [0] and q.stats["nap_tail_box"][1] > 0.9
    assert q.stats["nap_tail_needs"][0][1] >= 0.3 - 1e-6
    q.region_lp = RegionLp(q.encoding())
    nap_tail_lp(q)
    assert q.stats["nap_tail_lp_box"][1] < 0.06
    assert q.open_ids == [] and "exact tail" in q.how


@pytest.mark.parametrize("seed", range(20))
def test_nap_tail_stage_never_proves_a_violated_property(seed):
    net, ph = _narrow_case(seed)
    box = domain_box(2, -1.0, 1.0)
    label = int(seed % 3)
    g = np.linspace(-1, 1, 161)
    xs = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    y, pre = net.forward(xs)
    follow = follows_phases(pre, ph)
    violated = bool((follow & (np.delete(y, label, axis=1).max(axis=1) >= y[:, label])).any())
    r = verify_property(net, Property(box, robustness_spec(label, 3), ph), timeout=10, **_ONLY_NAP_TAIL)
    if violated:
        assert r.verdict != "verified", r.reason
    if r.verdict == "falsified":
        assert check_point(net, box, robustness_spec(label, 3), ph, r.counterexample) is not None


def test_an_open_tail_says_what_a_violation_needs_and_what_the_data_reach():
    net = _narrow_twin(bump=4.0)  # violated for x >= 0.925: the tail cannot refute it
    prop = Property(_BOX, robustness_spec(0, 2), _TWIN_PHASES)
    data = np.array([[-0.5], [0.0], [0.5], [0.8]])  # all follow (v < 0), none violates
    r = verify_property(net, prop, timeout=5, witness=data, **_ONLY_NAP_TAIL)
    assert r.verdict == "falsified", r.reason  # the complete MILP after the tail finds it
    line = r.stats["nap_tail_open"]
    # units u = relu(x) and w = relu(2x + 3) of hidden layer 0; the data reach 0.8 and 4.6
    assert line.startswith("behind hidden layer 0, units [0, 2] at [")
    assert line.endswith("the 4 given points that follow the phases reach at most [0.8, 4.6]")
    needs_u = float(line.split(" at [")[1].split(",")[0])
    assert needs_u >= 0.925 - 1e-6  # what the tail's violating input needs in u = x
    assert r.to_dict()["nap_tail_open"] == line
    # post-activations: points with x < 0 leave u at 0 (its pre-activation stays negative)
    neg = verify_property(net, prop, timeout=5, witness=np.array([[-0.6], [-0.3]]), **_ONLY_NAP_TAIL)
    assert neg.stats["nap_tail_open"].endswith("the 2 given points that follow the phases reach at most "
                                               "[0.0, 2.4]")
    # without given points the line stops at what the tail needs; with a refuted tail, no line
    alone = verify_property(net, prop, timeout=5, **_ONLY_NAP_TAIL).stats["nap_tail_open"]
    assert alone == line.split(";")[0]
    safe = verify_property(_narrow_twin(bump=0.0), prop, timeout=5, witness=data, **_ONLY_NAP_TAIL)
    assert safe.verdict == "verified" and "nap_tail_open" not in safe.stats

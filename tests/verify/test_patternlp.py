"""Pattern-fixed LPs: every point they report is re-checked; known answers and brute force."""

import time

import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.network import ReluNetwork
from napkit.verify import InputBox, check_point, follows_phases, propagate, robustness_spec, verify_property
from napkit.verify.patternlp import PatternSearch, agreement_starts
from napkit.verify.properties import Property

BOX2 = InputBox(np.zeros(2), np.ones(2))


def _flip_net() -> ReluNetwork:
    """z1 = x1 - 0.5, z2 = x2 - 0.5, z3 = x2; y0 = 0.9, y1 = relu(z2) + 0.5 relu(z3).

    y1 - y0 = relu(x2 - 0.5) + 0.5 x2 - 0.9: a violation exactly when x2 >= 0.9333.
    """
    w1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    b1 = np.array([-0.5, -0.5, 0.0])
    w2 = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
    b2 = np.array([0.9, 0.0])
    return ReluNetwork((w1, w2), (b1, b2))


def _unit_grid(n: int) -> np.ndarray:
    """``n`` × ``n`` evenly spaced points of [0, 1]^2, one per row."""
    g = np.linspace(0, 1, n)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


def _is_ce(net, box, spec, phases, x) -> bool:
    """Independent check: in the box, follows the phases (closed), violates (closed)."""
    x = np.asarray(x, dtype=np.float64)[None]
    y, pre = net.forward(x)
    return bool(box.contains(x)[0] and follows_phases(pre, phases)[0] and spec.violated(y)[0])


def _phases_of_a_point(rng, net, share: float) -> list[np.ndarray]:
    """The NAP of a random point of BOX2 (so its region is non-empty) on about ``share`` of the
    neurons."""
    _, pre = net.forward(rng.random(2)[None])
    return [np.where(rng.random(z.shape[1]) < share, np.where(z[0] > 0, 1, -1), 0).astype(np.int8)
            for z in pre]


def test_known_answer_needs_a_flip():
    net = _flip_net()
    phases = [np.array([1, 0, 0], np.int8)]  # x1 >= 0.5
    spec = robustness_spec(0, 2)
    b = propagate(net, BOX2, phases)
    ps = PatternSearch(net, BOX2, phases, b)
    # start where z2 is inactive: the LP of that region peaks at x2 = 0.5 (t = 0.65 > 0);
    # the binding row of z2 has a non-zero dual, so the walk flips z2 and finds x2 = 1
    ce = ps.search(np.array([[0.7, 0.1]]), spec, time.monotonic() + 20,
                   lambda x: check_point(net, BOX2, spec, phases, x))
    assert ce is not None and ps.stats.flips >= 1
    assert _is_ce(net, BOX2, spec, phases, ce.x)
    assert ce.x[0] >= 0.5 and ce.x[1] >= 0.93
    # no walk without flips
    ps0 = PatternSearch(net, BOX2, phases, b)
    assert ps0.search(np.array([[0.7, 0.1]]), spec, time.monotonic() + 20,
                      lambda x: check_point(net, BOX2, spec, phases, x), rounds=1) is None


def test_no_counterexample_where_none_exists():
    net = _flip_net()
    box = InputBox(np.zeros(2), np.array([1.0, 0.9]))  # x2 <= 0.9: y1 - y0 <= -0.05
    spec = robustness_spec(0, 2)
    ps = PatternSearch(net, box, None)
    got = ps.search(np.array([[0.5, 0.8], [0.1, 0.1]]), spec, time.monotonic() + 20,
                    lambda x: check_point(net, box, spec, None, x))
    assert got is None and ps.stats.best > 0


def test_affine_map_matches_forward_on_its_region():
    rng = np.random.default_rng(3)
    net = random_net(rng, 3, [7, 6], 2)
    box = InputBox(np.zeros(3), np.ones(3))
    ps = PatternSearch(net, box, None)
    x = rng.random((200, 3))
    _, pre = net.forward(x)
    for i in range(0, 200, 17):
        pat = ps.pattern_of(x[i])
        zs, (ao, co) = ps._affine(pat)
        same = np.ones(200, bool)
        for z, s in zip(pre, pat, strict=True):
            same &= ((z > 0) == s[None]).all(1)
        y, _ = net.forward(x[same])
        assert np.allclose(x[same] @ ao.T + co, y, atol=1e-9)
        for (a_mat, c_vec), z in zip(zs, pre, strict=True):
            assert np.allclose(x[same] @ a_mat.T + c_vec, z[same], atol=1e-9)


def test_random_nets_every_reported_point_is_a_counterexample():
    """Brute force on 2-D inputs: whatever the walk reports is a real counterexample, and it
    finds one on most queries where dense sampling finds one."""
    rng = np.random.default_rng(20)
    grid = _unit_grid(151)
    hits = found = 0
    for _ in range(40):
        net = random_net(rng, 2, [8, 8], 3)
        phases = random_phases(rng, net.layer_sizes, 0.25)
        label = int(rng.integers(3))
        spec = robustness_spec(label, 3)
        b = propagate(net, BOX2, phases)
        if b.vacuous:
            continue
        y, pre = net.forward(grid)
        bad = follows_phases(pre, phases) & spec.violated(y)
        ps = PatternSearch(net, BOX2, phases, b)
        ce = ps.search(rng.random((6, 2)), spec, time.monotonic() + 10,
                       lambda x, p=phases, n=net, s=spec: check_point(n, BOX2, s, p, x))
        if ce is not None:
            assert _is_ce(net, BOX2, spec, phases, ce.x)
            found += 1
        hits += bool(bad.any())
    assert hits >= 5 and found >= hits // 2, (hits, found)


def test_witness_follows_the_phases():
    rng = np.random.default_rng(5)
    n_ok = 0
    for _ in range(25):
        net = random_net(rng, 2, [8, 8], 2)
        phases = _phases_of_a_point(rng, net, 0.5)
        b = propagate(net, BOX2, phases)
        assert not b.vacuous
        ps = PatternSearch(net, BOX2, phases, b)
        w = ps.witness(rng.random((4, 2)), time.monotonic() + 10,
                       lambda x, n=net, p=phases: check_point(n, BOX2, None, p, x))
        if w is not None:
            _, pz = net.forward(w.x[None])
            assert follows_phases(pz, phases)[0] and BOX2.contains(w.x[None])[0]
            n_ok += 1
    assert n_ok >= 15


def test_engine_pattern_path_never_contradicts_brute_force():
    """Engine with the pattern LPs (attack and MILP as usual): a falsified verdict carries a
    real counterexample, and no query that dense sampling falsifies is 'verified'."""
    rng = np.random.default_rng(9)
    grid = _unit_grid(121)
    walked = 0
    for _ in range(12):
        net = random_net(rng, 2, [8, 8], 3)
        phases = random_phases(rng, net.layer_sizes, 0.2)
        label = int(rng.integers(3))
        spec = robustness_spec(label, 3)
        res = verify_property(net, Property(BOX2, spec, phases), timeout=10, bab=False)
        walked += res.stats.get("pattern_lps", 0) > 0
        y, pre = net.forward(grid)
        bad = follows_phases(pre, phases) & spec.violated(y)
        if res.verdict == "falsified":
            assert _is_ce(net, BOX2, spec, phases, res.counterexample)
        if res.verdict in ("verified", "vacuous"):
            assert not bad.any()
    assert walked, "no query reached the pattern LPs: the test checked the other stages only"


def test_repair_and_agreement_starts_give_points_that_follow():
    rng = np.random.default_rng(12)
    n_ok = 0
    for _ in range(20):
        net = random_net(rng, 2, [8, 8], 2)
        phases = _phases_of_a_point(rng, net, 0.6)
        b = propagate(net, BOX2, phases)
        ps = PatternSearch(net, BOX2, phases, b)
        starts = np.vstack([agreement_starts(net, b), rng.random((3, 2))])
        assert starts.shape[1] == 2 and BOX2.contains(starts).all()
        w = ps.repair(starts, time.monotonic() + 10,
                      lambda x, n=net, p=phases: check_point(n, BOX2, None, p, x))
        if w is not None:
            _, pz = net.forward(w.x[None])
            assert follows_phases(pz, phases)[0]
            n_ok += 1
    assert n_ok >= 12


def test_engine_witness_by_pattern_lp_before_verified():
    """Proved by bounds; the non-emptiness witness comes from a pattern-fixed LP, and it is real."""
    net = _flip_net()
    box = InputBox(np.zeros(2), np.array([0.8, 0.9]))  # the centre (0.4, 0.45) does not follow
    phases = [np.array([1, 0, 0], np.int8)]
    res = verify_property(net, Property(box, robustness_spec(0, 2), phases), timeout=10)
    assert res.verdict == "verified" and res.stats.get("witness") == "pattern LP", (res.verdict, res.stats)


def test_engine_vacuous_region_is_never_verified():
    net = _flip_net()
    # z2 = x2 - 0.5 active and z3 = x2 inactive: x2 >= 0.5 and x2 <= 0 (empty)
    phases = [np.array([0, 1, -1], np.int8)]
    res = verify_property(net, Property(BOX2, robustness_spec(0, 2), phases), timeout=10)
    assert res.verdict == "vacuous"


def _climb_net() -> ReluNetwork:
    """z0 = (x1, x2, x1 + x2 - 1); unit 0 of layer 1: z = a0 - a1 + 2 a2 on [0, 1]^2.

    Where x1 + x2 <= 1, z = x1 - x2 (at most 1, at (1, 0)); beyond, z = 3 x1 + x2 - 2 (at
    most 2, at (1, 1)). The maximum is 2; with the third neuron fixed inactive it is 1.
    """
    w1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b1 = np.array([0.0, 0.0, -1.0])
    w2 = np.array([[1.0, -1.0, 2.0]])
    w3 = np.array([[1.0]])
    return ReluNetwork((w1, w2, w3), (b1, np.zeros(1), np.zeros(1)))


def test_climb_crosses_a_boundary_to_the_maximum():
    net = _climb_net()
    ps = PatternSearch(net, BOX2, None)
    # from (0.6, 0.1) the first region's LP peaks at (1, 0) with value 1, where the third
    # neuron's row binds; the flip opens the region x1 + x2 >= 1 and its LP reaches 2
    value, x = ps.climb(np.array([0.6, 0.1]), 1, np.array([1.0]), time.monotonic() + 20)
    assert value == pytest.approx(2.0, abs=1e-5) and np.allclose(x, [1.0, 1.0], atol=1e-5)
    assert ps.stats.flips >= 1 and ps.stats.climb_end == "no move"
    # one round stays in the start's region
    ps1 = PatternSearch(net, BOX2, None)
    one, _ = ps1.climb(np.array([0.6, 0.1]), 1, np.array([1.0]), time.monotonic() + 20, rounds=1)
    assert one == pytest.approx(1.0, abs=1e-5) and ps1.stats.climb_end == "rounds" and ps1.stats.lps == 1
    # a negative weight climbs towards the minimum, -1 at (0, 1)
    low, _ = PatternSearch(net, BOX2, None).climb(np.array([0.6, 0.1]), 1, np.array([-1.0]),
                                                  time.monotonic() + 20)
    assert low == pytest.approx(1.0, abs=1e-5)


def test_climb_keeps_to_the_phases():
    net = _climb_net()
    phases = [np.array([0, 0, -1], np.int8), np.zeros(1, np.int8)]
    b = propagate(net, BOX2, phases)
    value, x = PatternSearch(net, BOX2, phases, b).climb(
        np.array([0.6, 0.1]), 1, np.array([1.0]), time.monotonic() + 20)
    assert value == pytest.approx(1.0, abs=1e-5)
    _, pre = net.forward(x[None])
    assert follows_phases(pre, phases)[0] and pre[1][0, 0] == pytest.approx(value)


def test_climb_on_random_nets_reports_what_the_forward_pass_gives():
    """Random NAP regions: the value is the exact pass's at a point that follows the phases,
    never below the start's (when the start follows) nor below the best of the start
    region's points on a dense grid (the first LP maximises over that whole region)."""
    rng = np.random.default_rng(7)
    grid = _unit_grid(201)
    climbed = 0
    for _ in range(25):
        net = random_net(rng, 2, [8, 8], 2)
        phases = _phases_of_a_point(rng, net, 0.3)
        w = rng.normal(size=8)
        x0 = rng.random(2)
        value, x = PatternSearch(net, BOX2, phases, propagate(net, BOX2, phases)).climb(
            x0, 1, w, time.monotonic() + 20)
        _, pre0 = net.forward(x0[None])
        _, pre_g = net.forward(grid)
        on = follows_phases(pre_g, phases)
        if x is None:
            assert not follows_phases(pre0, phases)[0]
            continue
        _, pre = net.forward(x[None])
        assert follows_phases(pre, phases)[0] and float(w @ pre[1][0]) == pytest.approx(value, abs=1e-9)
        if follows_phases(pre0, phases)[0]:
            assert value >= float(w @ pre0[1][0]) - 1e-9
        climbed += 1
        same = on.copy()  # grid points in the start's activation region
        for z, z0 in zip(pre_g, pre0, strict=True):
            same &= ((z > 0) == (z0 > 0)).all(1)
        if same.any():
            assert value >= (pre_g[1][same] @ w).max() - 1e-4
    assert climbed >= 15

import time

import numpy as np
from verify_helpers import random_net, random_phases

from napkit.verify import (
    InputBox,
    MilpEncoding,
    check_point,
    follows_phases,
    pgd_attack,
    propagate,
    robustness_spec,
    tighten_bounds,
)


def test_milp_feasible_point_is_real_and_infeasible_is_exact():
    rng = np.random.default_rng(7)
    net = random_net(rng, 2, [6, 6], 3)
    box = InputBox(np.zeros(2), np.ones(2))
    b = propagate(net, box)
    enc = MilpEncoding(net, b)
    assert enc.n_binary == b.n_unstable
    g = np.linspace(0, 1, 201)
    x = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    y, _ = net.forward(x)
    for c, d in robustness_spec(0, 3).disjuncts:
        r = enc.solve(c, d, time_limit=10)
        hit = ((y @ c.T - d) <= 0).all(axis=1)
        if r.status == "infeasible":
            assert not hit.any()
        else:
            assert r.status == "feasible"
            yx, _ = net.forward(r.x)
            assert (yx @ c.T - d <= 1e-6).all()


def test_tightening_stays_sound():
    rng = np.random.default_rng(11)
    net = random_net(rng, 3, [10, 10, 10], 2)
    box = InputBox(np.zeros(3), np.ones(3))
    phases = random_phases(rng, net.layer_sizes, 0.2)
    b = propagate(net, box, phases)
    if b.vacuous:
        return
    tighten_bounds(net, b, time.monotonic() + 20)
    x = rng.random((20000, 3))
    _, pre = net.forward(x)
    ok = follows_phases(pre, phases)
    for z, lo, up in zip(pre, b.lower, b.upper, strict=True):
        assert (z[ok] >= lo).all() and (z[ok] <= up).all()


def test_check_point_rejects_outside_and_non_violating():
    """y = relu(x) on [0, 1]^2, class 0 must win: (0.2, 0.8) violates, (0.8, 0.2) does not,
    (1.5, 0.5) lies outside the box."""
    from napkit.network import ReluNetwork

    eye = np.eye(2)
    net = ReluNetwork((eye, eye), (np.zeros(2), np.zeros(2)))
    box = InputBox(np.zeros(2), np.ones(2))
    spec = robustness_spec(0, 2)
    assert check_point(net, box, spec, None, np.array([1.5, 0.5])) is None
    assert check_point(net, box, spec, None, np.array([0.8, 0.2])) is None
    assert check_point(net, box, spec, None, np.array([0.2, 0.8])) is not None
    rng = np.random.default_rng(1)
    rand = random_net(rng, 2, [4], 2)
    ce = pgd_attack(rand, box, spec, None, restarts=8, steps=30)
    if ce is not None:  # whatever the attack returns has been checked
        assert check_point(rand, box, spec, None, ce.x) is not None
        assert spec.violated(rand.forward(ce.x)[0])[0]


def _identity_net():
    """y = relu(x) on one input: the MILP's answer is known exactly."""
    from napkit.network import ReluNetwork

    return ReluNetwork((np.array([[1.0]]), np.array([[1.0]])), (np.zeros(1), np.zeros(1)))


def test_negative_margin_relaxes_the_violation_rows_only():
    net = _identity_net()
    box = InputBox(np.array([0.2]), np.array([1.0]))
    b = propagate(net, box)
    c, d = np.array([[1.0]]), np.array([0.2 - 5e-7])  # y <= 0.2 - 5e-7: no point of the box
    assert MilpEncoding(net, b).solve(c, d).status == "infeasible"
    # relaxed by 1e-6 (the proving MILP's slack): the boundary point x = 0.2 is admitted
    r = MilpEncoding(net, b, slack=1e-6).solve(c, d)
    assert r.status == "feasible" and abs(r.x[0] - 0.2) < 1e-5
    # a strict margin still tightens: y <= 0.2 + 5e-7 - 1e-6 has no point either
    assert MilpEncoding(net, b, strict=1e-6).solve(c, d + 1e-6).status == "infeasible"


def test_hard_deadline_interrupts_a_mip():
    import highspy

    from napkit.verify.milp import hard_deadline

    rng = np.random.default_rng(3)
    net = random_net(rng, 6, [40, 40], 3)
    b = propagate(net, InputBox(np.zeros(6), np.ones(6)))
    enc = MilpEncoding(net, b)
    assert enc.n_binary > 10
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(enc._lp())
    cost = np.zeros(enc.n_col)
    cost[enc.out_cols] = 1.0
    h.changeColsCost(enc.n_col, np.arange(enc.n_col, dtype=np.int32), cost)
    hard_deadline(h, time.monotonic() - 1.0)  # already past: the first check stops it
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kInterrupt


def test_milp_on_the_interior_point_method_agrees_with_simplex_and_the_grid():
    """``ipm=True`` (HiGHS's MIP LPs by the interior point method, the ``milp`` stage's
    default with phases) gives the same answers as the simplex MILP; an "infeasible" is
    checked against a dense grid of points that follow the phases, a feasible point by the
    exact forward pass. Both answers occur, so the comparison is not about one of them."""
    g = np.linspace(0, 1, 161)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    seen = set()
    for seed in range(12):
        rng = np.random.default_rng(900 + seed)
        net = random_net(rng, 2, [8, 8, 6], 3)
        phases = random_phases(rng, net.layer_sizes, 0.2)
        box = InputBox(np.zeros(2), np.ones(2))
        b = propagate(net, box, phases)
        if b.vacuous:
            continue
        enc = MilpEncoding(net, b)
        y, pre = net.forward(grid)
        follows = follows_phases(pre, phases)
        for c, d in robustness_spec(seed % 3, 3).disjuncts:
            simplex = enc.solve(c, d, time_limit=20)
            ipm = enc.solve(c, d, time_limit=20, ipm=True)
            assert {simplex.status, ipm.status} <= {"infeasible", "feasible"}
            assert ipm.status == simplex.status, (seed, simplex.status, ipm.status)
            seen.add(ipm.status)
            if ipm.status == "infeasible":
                assert not (follows & ((y @ c.T - d) < -1e-6).all(axis=1)).any()
            else:
                yx, _ = net.forward(ipm.x)
                assert (yx @ c.T - d <= 1e-5).all()
    assert seen == {"infeasible", "feasible"}

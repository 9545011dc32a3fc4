"""The LP relaxation of a NAP region (``naplp.py``): the weak-duality bound holds for any
multipliers, the LP refutes a disjunct that only a later layer's phase decides, tightened
bounds keep every follower, and the ``nap_lp`` stage never proves a violated property."""

import numpy as np
import pytest
from scipy.optimize import linprog
from verify_helpers import random_net, random_phases, unit_square_grid

from napkit.network import ReluNetwork
from napkit.verify import InputBox, Property, domain_box, follows_phases, robustness_spec, verify_property
from napkit.verify.attack import check_point
from napkit.verify.bounds import propagate, spec_lower
from napkit.verify.milp import MilpEncoding
from napkit.verify.naplp import RegionLp, dual_bound, tighten_layer

_ONLY_NAP_LP = dict(attack=False, patterns=False, optimize=False, bab=False, workers=1,
                    nap_lp_min_unstable=0, nap_milp=False)


def _gate_net(y0: float) -> ReluNetwork:
    """1 input in [-1, 1]; a = x, b = -x (both free); u = relu(a) - 0.9 (its phase: active),
    v = relu(b); y0 = const, y1 = relu(v). Following the phase means x >= 0.9, so y1 = 0.

    Symbolic bounds keep v in [0, 1] (the phase of u is not propagated back to b); the
    region's LP has relu(a) <= (a + 1) / 2, so u >= 0 forces a >= 0.8 and relu(b) <= 0.1."""
    w0 = np.array([[1.0], [-1.0]])
    b0 = np.zeros(2)
    w1 = np.array([[1.0, 0.0], [0.0, 1.0]])
    b1 = np.array([-0.9, 0.0])
    w2 = np.array([[0.0, 0.0], [0.0, 1.0]])
    b2 = np.array([y0, 0.0])
    return ReluNetwork((w0, w1, w2), (b0, b1, b2))


_GATE_PHASES = [np.zeros(2, np.int8), np.array([1, 0], np.int8)]
_BOX = InputBox(np.array([-1.0]), np.array([1.0]))


@pytest.mark.parametrize("seed", range(8))
def test_dual_bound_holds_for_any_multipliers(seed):
    rng = np.random.default_rng(seed)
    n, m = 6, 4
    a = rng.normal(size=(m, n))
    x0 = rng.random(n)  # a feasible point: the rows' ranges are around it
    ax = a @ x0
    rlo = np.where(rng.random(m) < 0.3, -np.inf, ax - rng.random(m))
    rhi = np.where(np.isfinite(rlo) & (rng.random(m) < 0.3), np.inf, ax + rng.random(m))
    clo, chi = np.zeros(n), np.ones(n)
    cost = rng.normal(size=n)
    a_ub = np.vstack([a[np.isfinite(rhi)], -a[np.isfinite(rlo)]])
    b_ub = np.concatenate([rhi[np.isfinite(rhi)], -rlo[np.isfinite(rlo)]])
    best = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=list(zip(clo, chi, strict=True)), method="highs")
    assert best.status == 0
    for _ in range(20):
        lam = rng.normal(size=m) * rng.choice([0.0, 1.0, 10.0])
        assert dual_bound(a.T, cost, 0.5, lam, clo, chi, rlo, rhi) <= best.fun + 0.5 + 1e-9
    # the LP's own duals make it tight (linprog: marginals of the <= rows)
    marg = best.ineqlin.marginals
    lam = np.zeros(m)
    fin_hi, fin_lo = np.flatnonzero(np.isfinite(rhi)), np.flatnonzero(np.isfinite(rlo))
    lam[fin_hi] += marg[: fin_hi.size]
    lam[fin_lo] -= marg[fin_hi.size:]
    assert dual_bound(a.T, cost, 0.0, lam, clo, chi, rlo, rhi) == pytest.approx(best.fun, abs=1e-6)


def test_region_lp_refutes_what_only_a_later_phase_decides():
    net = _gate_net(0.2)
    prop = Property(_BOX, robustness_spec(0, 2), _GATE_PHASES)
    b = propagate(net, _BOX, _GATE_PHASES)
    c, d = prop.output.disjuncts[0]
    assert spec_lower(net, b, prop.output)[0].max() < 0  # symbolic bounds leave it open
    low = RegionLp(MilpEncoding(net, b)).disjunct_lows(c, d, deadline=np.inf)
    assert low[0] == pytest.approx(0.1, abs=1e-6)  # 0.2 - 0.1: refuted
    r = verify_property(net, prop, timeout=10, witness=np.array([[1.0], [0.95], [-0.5]]), **_ONLY_NAP_LP)
    assert r.verdict == "verified", r.reason
    assert "LP relaxation of the NAP region" in r.reason and r.stats["nap_lp_refuted"] == 1


def test_region_lp_refutes_nothing_its_relaxation_cannot_show():
    net = _gate_net(0.05)  # y0 - y1 >= 0.05 still holds, but the LP's relu(b) <= 0.1 does not show it
    prop = Property(_BOX, robustness_spec(0, 2), _GATE_PHASES)
    r = verify_property(net, prop, timeout=10, witness=np.array([[1.0]]),
                        **{**_ONLY_NAP_LP, "nap_lp_tighten_layers": 0})
    assert r.stats["nap_lp_refuted"] == 0
    assert r.verdict in ("verified", "unknown")  # the final MILP may prove it; never falsified


def test_tightened_bounds_keep_every_follower():
    rng = np.random.default_rng(3)
    for _ in range(6):
        net = random_net(rng, 2, [8, 8, 8], 3)
        phases = random_phases(rng, net.layer_sizes, p=0.4)
        box = domain_box(2)
        b = propagate(net, box, phases)
        if b.vacuous:
            continue
        lo_before = [v.copy() for v in b.lower]
        up_before = [v.copy() for v in b.upper]
        lp = RegionLp(MilpEncoding(net, b))
        for k in (2, 1):
            tighten_layer(lp, b, k, deadline=np.inf)
        g = np.linspace(0.0, 1.0, 121)
        grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        _, pre = net.forward(grid)
        follow = follows_phases(pre, phases)
        for k in range(3):
            assert (b.lower[k] >= lo_before[k]).all() and (b.upper[k] <= up_before[k]).all()
            z = pre[k][follow]
            assert (z >= b.lower[k] - 1e-9).all() and (z <= b.upper[k] + 1e-9).all()


@pytest.mark.parametrize("seed", range(24))
def test_nap_lp_never_proves_a_violated_property(seed):
    """Random 2-input nets and phases on [0, 1]^2, the LP stage alone (then the final MILP),
    given only points that do not violate (so the data cannot decide first): never
    ``verified`` when a grid point follows the phases and violates."""
    rng = np.random.default_rng(100 + seed)
    net = random_net(rng, 2, [8, 8], 3)
    phases = random_phases(rng, net.layer_sizes, p=0.15)
    grid, y, follow, label = unit_square_grid(net, phases)  # followers keep a margin
    spec = robustness_spec(label, 3)
    prop = Property(domain_box(2), spec, phases)
    violate = follow & (spec.slack(y).min(1) < -1e-6)
    calm = grid[follow & (spec.slack(y).min(1) > 1e-6)]
    given = calm[:: max(1, len(calm) // 20)] if len(calm) else rng.random((20, 2))
    r = verify_property(net, prop, timeout=10, witness=given, **{**_ONLY_NAP_LP, "nap_lp_tighten_layers": 2})
    if r.verdict == "verified":
        assert not violate.any(), r.reason
    if r.verdict == "falsified":  # the reported point is a counterexample by an exact re-check
        assert check_point(net, prop.box, spec, phases, r.counterexample) is not None, r.reason

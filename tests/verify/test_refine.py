"""MILP-refined root bounds: refined intervals still hold every sampled point of the region,
and the refine stage keeps the engine's verdicts."""

from __future__ import annotations

import time

import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.verify import (
    InputBox,
    Property,
    VerifyOptions,
    follows_phases,
    linf_ball,
    propagate,
    robustness_spec,
    verify_property,
)
from napkit.verify.refine import refine_with_milp


@pytest.mark.parametrize("cut_rounds", [0, 2])
@pytest.mark.parametrize("seed", range(10))
def test_refined_bounds_hold_on_samples(seed, cut_rounds):
    """By MILP dual bounds or (``cut_rounds``) by the LP with ideal cuts: never looser, and
    every sampled point of the region inside."""
    rng = np.random.default_rng(900 + seed)
    net = random_net(rng, 3, [8, 8, 8], 3)
    phases = random_phases(rng, net.layer_sizes, 0.25) if seed % 2 else None
    box = InputBox(np.zeros(3), np.ones(3))
    b = propagate(net, box, phases)
    if b.vacuous:
        return
    before = [lo.copy() for lo in b.lower], [up.copy() for up in b.upper]
    st = refine_with_milp(net, b, time.monotonic() + 20, per_side=2.0, cut_rounds=cut_rounds)
    assert st.asked >= st.stabilised
    x = rng.random((20000, 3))
    _, pre = net.forward(x)
    ok = follows_phases(pre, phases)
    for k, z in enumerate(pre):
        assert (b.lower[k] >= before[0][k]).all() and (b.upper[k] <= before[1][k]).all()  # never looser
        if b.vacuous:
            assert not ok.any()
            return
        zk = z[ok]
        assert (zk >= b.lower[k] - 1e-9).all() and (zk <= b.upper[k] + 1e-9).all()


@pytest.mark.parametrize(("seed", "eps"), [(18, 0.05), (21, 0.1), (32, 0.2), (37, 0.2)])
def test_refine_stage_keeps_verdicts(seed, eps):
    """Balls around a random point of seeded random networks that stay open after the bounds
    and the attack, so the refine stage runs; its verdict agrees with the engine's without it."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, 3, [10, 10, 10], 3)
    x0 = rng.random(3)
    label = int(net.forward(x0[None])[0].argmax())
    prop = Property(linf_ball(x0, eps), robustness_spec(label, 3))
    plain = verify_property(net, prop, options=VerifyOptions(timeout=10, workers=1))
    for cut_rounds in (0, 2):
        refined = verify_property(net, prop, options=VerifyOptions(
            timeout=10, workers=1, refine_share=0.5, many_unstable=0, bab_first_share=0,
            refine_cut_rounds=cut_rounds))
        assert refined.stats.get("refine_asked", 0) > 0, refined.stats
        assert {plain.verdict, refined.verdict} - {"unknown"} in ({plain.verdict}, {refined.verdict}, set())


@pytest.mark.parametrize("forks", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_two_processes_refine_as_one(seed, forks, monkeypatch):
    """The neurons dealt to a forked process come back: with ample time per side (every MILP
    solved), two workers give the same intervals as one; where this process cannot fork, it
    refines every neuron itself (it once refined only its own share)."""
    if not forks:
        monkeypatch.setattr("napkit.verify.refine.can_fork", lambda: False)
    rng = np.random.default_rng(950 + seed)
    net = random_net(rng, 3, [8, 8, 8], 3)
    box = InputBox(np.zeros(3), np.ones(3))
    one, two = propagate(net, box), propagate(net, box)
    s1 = refine_with_milp(net, one, time.monotonic() + 60, per_side=10.0, workers=1)
    s2 = refine_with_milp(net, two, time.monotonic() + 60, per_side=10.0, workers=2)
    assert s1.asked == s2.asked > 0
    for k in range(len(net.layer_sizes)):
        np.testing.assert_allclose(one.lower[k], two.lower[k], atol=1e-6)
        np.testing.assert_allclose(one.upper[k], two.upper[k], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_another_pass_follows_while_time_is_left(seed):
    """A pass that ends early is followed by one with more time per side while the last
    narrowed something; on a small network every MILP is solved, so the second pass starts
    from the same models, narrows nothing and the intervals are those of one pass."""
    rng = np.random.default_rng(970 + seed)
    net = random_net(rng, 3, [8, 8, 8], 3)
    box = InputBox(np.zeros(3), np.ones(3))
    one, many = propagate(net, box), propagate(net, box)
    s1 = refine_with_milp(net, one, time.monotonic() + 60, per_side=10.0)
    s2 = refine_with_milp(net, many, time.monotonic() + 60, per_side=10.0, side_growth=2.0)
    assert s1.passes == 1
    assert s2.passes == (2 if s1.narrowed else 1)
    assert s2.narrowed == s1.narrowed
    for k in range(len(net.layer_sizes)):
        np.testing.assert_allclose(one.lower[k], many.lower[k], atol=1e-6)
        np.testing.assert_allclose(one.upper[k], many.upper[k], atol=1e-6)


def test_refined_bounds_that_empty_the_box_give_no_verdict(monkeypatch):
    """Without phases the region is the input box, never empty: refined bounds that claim it is
    (round-off) end the query unknown, not verified."""
    import napkit.verify.refine as refine

    def claims_empty(net, bounds, deadline, **kw):
        bounds.vacuous, bounds.reason = True, "an interval emptied"
        return refine.RefineStats(asked=1)

    monkeypatch.setattr(refine, "refine_with_milp", claims_empty)
    rng = np.random.default_rng(18)
    net = random_net(rng, 3, [10, 10, 10], 3)
    x0 = rng.random(3)
    prop = Property(linf_ball(x0, 0.05), robustness_spec(int(net.forward(x0[None])[0].argmax()), 3))
    res = verify_property(net, prop, options=VerifyOptions(timeout=10, workers=1, refine_share=0.5,
                                                           many_unstable=0, bab_first_share=0))
    assert res.stats.get("refine_asked") == 1, res.stats  # the stage ran
    assert res.verdict == "unknown" and "numerical" in res.reason, res

"""Optimised (alpha-beta) bounds with phases as constraints, and branch and bound: soundness."""

import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from verify_helpers import random_net, random_phases

from napkit.verify import (
    InputBox,
    OutputSpec,
    check_point,
    domain_box,
    follows_phases,
    propagate,
    robustness_spec,
)
from napkit.verify.bab import branch_and_bound
from napkit.verify.optimized import optimize_rows, tighten_optimized
from napkit.verify.options import VerifyOptions
from napkit.verify.verdict import FOUND, REFUTED, UNKNOWN


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    widths=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    n_in=st.integers(1, 3),
    p=st.sampled_from([0.0, 0.2, 0.5]),
)
def test_optimised_bounds_are_sound_against_sampling(seed, widths, n_in, p):
    rng = np.random.default_rng(seed)
    net = random_net(rng, n_in, widths, 3)
    c = rng.random(n_in)
    r = rng.random(n_in) * 0.8
    box = InputBox(c - r, c + r)
    phases = random_phases(rng, net.layer_sizes, p) if p else None
    b = propagate(net, box, phases)
    x = box.lower + (box.upper - box.lower) * rng.random((4000, n_in))
    x = np.vstack([x, box.lower, box.upper])
    y, pre = net.forward(x)
    ok = follows_phases(pre, phases)
    if b.vacuous:
        assert not ok.any()
        return
    tighten_optimized(net, b, iters=15)
    if b.vacuous:
        assert not ok.any(), "optimised bounds called a region with samples vacuous"
        return
    for z, lo, up in zip(pre, b.lower, b.upper, strict=True):
        assert (z[ok] >= lo).all() and (z[ok] <= up).all()
    g = rng.normal(size=(4, 3))
    g0 = rng.normal(size=4)
    low, _ = optimize_rows(net, b, len(widths), g, g0, iters=25)
    assert ((y[ok] @ g.T + g0) >= low[None]).all()
    # intermediate layer objectives too (phases of that layer enter as constraints)
    k = len(widths) - 1
    a = rng.normal(size=(3, widths[k]))
    low, _ = optimize_rows(net, b, k, a, np.zeros(3), iters=25)
    assert ((pre[k][ok] @ a.T) >= low[None]).all()


def test_phases_of_other_neurons_tighten_a_bound():
    # z0 = x0 - x1, z1 = x0 + x1 - 1 on [0,1]^2; with z1 inactive (x0 + x1 <= 1),
    # y = z0 + 0 has lower bound -1 either way, but y = x0 + x1 (through relu z2) gets <= 1.
    from napkit.network import ReluNetwork

    w0 = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    b0 = np.array([0.0, -1.0, 2.0])  # z2 = 2 - x0 - x1 >= 0: always active
    w1 = np.array([[0.0, 0.0, 1.0]])  # y = z2
    net = ReluNetwork((w0, w1), (b0, np.zeros(1)))
    ph = [np.array([0, -1, 0], np.int8)]
    b = propagate(net, domain_box(2), ph)
    plain = float(optimize_rows(net, b, 1, np.array([[1.0]]), np.zeros(1), iters=0)[0][0])
    opt = float(optimize_rows(net, b, 1, np.array([[1.0]]), np.zeros(1), iters=200, lr=0.05)[0][0])
    assert plain == pytest.approx(0.0, abs=1e-6)  # over the box: min 2 - 2 = 0
    assert opt > 0.9 and opt <= 1.0 + 1e-6  # with x0 + x1 <= 1: min is exactly 1


def _grid(n=161):
    g = np.linspace(0.0, 1.0, n)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


def _tiny_2d_case(seed: int, n_out: int):
    """A random 2-7-6-n_out network on [0,1]^2 (phases on odd seeds), its bounds, and the
    outputs and phase-following mask of a fine grid: the brute-force reference."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, [7, 6], n_out)
    phases = random_phases(rng, net.layer_sizes, 0.2) if seed % 2 else None
    box = InputBox(np.zeros(2), np.ones(2))
    y, pre = net.forward(_grid())
    return net, phases, box, propagate(net, box, phases), y, follows_phases(pre, phases)


@pytest.mark.parametrize("seed", range(16))
def test_branch_and_bound_brute_force_2d(seed):
    net, phases, box, b, y, follow = _tiny_2d_case(300 + seed, 3)
    spec = robustness_spec(seed % 3, 3)
    if b.vacuous:
        assert not follow.any()
        return
    for c, d in spec.disjuncts:
        res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() + 20,
                               check=lambda z, c=c, d=d: check_point(net, box, OutputSpec(((c, d),), 3),
                                                                     phases, z),
                               options=VerifyOptions(bab_batch=4))
        bad = follow & ((y @ c.T - d) <= 0).all(1)
        if res.status == REFUTED:
            assert not bad.any(), "branch and bound proved a disjunct that a grid point violates"
        elif res.status == FOUND:
            ce = res.counterexample
            yc, pc = net.forward(ce.x)
            assert follows_phases(pc, phases)[0] and ((yc @ c.T - d) <= 0).all()
        else:
            pytest.fail(f"tiny network left undecided: {res.reason}")


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_tree_over_all_disjuncts_brute_force_2d(seed, dtype):
    """One tree with a per-domain mask of open disjuncts: ``refuted`` means no grid point
    violates any disjunct; ``found`` is a real violation; open_groups are the undecided ones."""
    net, phases, box, b, y, follow = _tiny_2d_case(500 + seed, 4)
    spec = robustness_spec(seed % 4, 4)
    if b.vacuous:
        assert not follow.any()
        return
    c = np.vstack([cc for cc, _ in spec.disjuncts])
    d = np.concatenate([dd for _, dd in spec.disjuncts])
    res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() + 30,
                           check=lambda z: check_point(net, box, spec, phases, z),
                           groups=np.arange(c.shape[0]), options=VerifyOptions(bab_batch=8, bab_dtype=dtype))
    bad = follow & spec.violated(y)
    if res.status == REFUTED:
        assert not bad.any(), "branch and bound proved a property that a grid point violates"
        assert res.open_groups == []
    elif res.status == FOUND:
        yc, pc = net.forward(res.counterexample.x[None])
        assert follows_phases(pc, phases)[0] and spec.violated(yc)[0]
    else:
        pytest.fail(f"tiny network left undecided: {res.reason}")
    assert res.rows >= res.domains >= 1


def test_float32_ascent_gives_float64_sound_bounds():
    """The ascent may run in float32; the returned bound is the float64 evaluation of the
    (clamped) parameters, so it is below the true minimum found by sampling."""
    rng = np.random.default_rng(7)
    net = random_net(rng, 3, [12, 12, 12], 3)
    box = InputBox(np.zeros(3), np.ones(3))
    b = propagate(net, box)
    g = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    v32, _ = optimize_rows(net, b, 3, g, np.zeros(2), iters=30, dtype=torch.float32)
    v64, _ = optimize_rows(net, b, 3, g, np.zeros(2), iters=30)
    assert v32.dtype == np.float64
    x = rng.random((20000, 3))
    y, _ = net.forward(x)
    true_min = (y @ g.T).min(0)
    assert (v32 <= true_min).all() and (v64 <= true_min).all()
    np.testing.assert_allclose(v32, v64, atol=1e-2 * (1 + np.abs(v64).max()))


def test_unknown_leaf_keeps_its_disjuncts_open():
    """Regression: a leaf LP that finds a point the check rejects ends the tree ``unknown``;
    the disjuncts open on that (popped) domain must be reported open, or the engine would
    take them as refuted and answer ``verified``."""
    rng = np.random.default_rng(11)
    net = random_net(rng, 2, [4], 3)
    x0 = np.array([0.3, 0.6])
    box = InputBox(x0 - 1e-4, x0 + 1e-4)
    b = propagate(net, box)
    assert b.n_unstable == 0  # the root is a leaf: decided by LPs
    wrong = (int(net.predict(x0[None])[0]) + 1) % 3  # a label that is violated around x0
    spec = robustness_spec(wrong, 3)
    c = np.vstack([cc for cc, _ in spec.disjuncts])
    d = np.concatenate([dd for _, dd in spec.disjuncts])
    res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() + 10, check=lambda x: None,
                           groups=np.arange(c.shape[0]))
    assert res.status == UNKNOWN and "leaf LP" in res.reason
    assert res.open_groups, "an unknown tree reported every disjunct refuted"


@pytest.mark.parametrize("seed", range(8))
def test_handoff_to_the_milp_keeps_verdicts_right_2d(seed):
    """With phases, branch and bound hands a growing tree to the MILP (``handoff_open``);
    with a cap of 0 subdomains every query goes straight on to the MILP, and the verdict
    still agrees with the brute-force grid."""
    from napkit.verify import Property, verify_property

    net, phases, box, b, y, follow = _tiny_2d_case(700 + 2 * seed + 1, 3)  # odd seeds: phases
    spec = robustness_spec(seed % 3, 3)
    r = verify_property(net, Property(box, spec, phases), timeout=20, workers=1, handoff_open=0,
                        attack=False, patterns=False)
    bad = follow & spec.violated(y)
    if r.verdict == "verified":
        assert not bad.any()
    elif r.verdict == "falsified":
        yc, pc = net.forward(r.counterexample[None])
        assert follows_phases(pc, phases)[0] and spec.violated(yc)[0]
    elif r.verdict == "vacuous":
        assert not follow.any()
    else:
        pytest.fail(f"tiny network left undecided: {r.reason}")


def test_branch_and_bound_stops_at_max_open():
    """``max_open``: once more subdomains than that are open the tree stops ``unknown`` with
    its disjuncts open (the engine then runs the MILP on them)."""
    rng = np.random.default_rng(3)
    net = random_net(rng, 2, [16, 16], 3)
    box = InputBox(np.zeros(2), np.ones(2))
    b = propagate(net, box)
    y, _ = net.forward(_grid())
    label = int(np.bincount(y.argmax(1)).argmax())  # violated somewhere unless constant
    spec = robustness_spec(label, 3)
    c = np.vstack([cc for cc, _ in spec.disjuncts])
    d = np.concatenate([dd for _, dd in spec.disjuncts])
    res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() + 10, check=lambda x: None,
                           groups=np.arange(c.shape[0]), options=VerifyOptions(bab_batch=1), max_open=0)
    assert res.status == UNKNOWN and "handed to the MILP" in res.reason
    assert res.open_groups


@pytest.mark.parametrize("seed", range(8))
def test_tree_started_from_the_root_parameters_brute_force_2d(seed):
    """``root_warm``: the root starts from the optimised bounds' alphas and betas (any such
    parameters give sound bounds); verdicts still agree with the brute-force grid."""
    net, phases, box, b, y, follow = _tiny_2d_case(900 + seed, 4)
    spec = robustness_spec(seed % 4, 4)
    if b.vacuous:
        assert not follow.any()
        return
    c = np.vstack([cc for cc, _ in spec.disjuncts])
    d = np.concatenate([dd for _, dd in spec.disjuncts])
    _, info = optimize_rows(net, b, len(net.layer_sizes), c, -d, iters=30)
    res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() + 30,
                           check=lambda z: check_point(net, box, spec, phases, z),
                           options=VerifyOptions(bab_batch=8), groups=np.arange(c.shape[0]),
                           root_warm=(info["alphas"], info["betas"]))
    bad = follow & spec.violated(y)
    if res.status == REFUTED:
        assert not bad.any(), "branch and bound proved a property that a grid point violates"
    elif res.status == FOUND:
        yc, pc = net.forward(res.counterexample.x[None])
        assert follows_phases(pc, phases)[0] and spec.violated(yc)[0]
    else:
        pytest.fail(f"tiny network left undecided: {res.reason}")


def test_best_bound_raises_the_last_iterates_bound_soundly_and_keeps_its_parameters():
    """``best_bound``: the bound is the best iterate's when higher (never below the last
    iterate's, never above the true minimum, and higher on some row here), while the
    parameters handed to the children stay the last iterate's, exactly as without it."""
    from napkit.verify.bab import _Domain, _Tree

    raised = 0
    for seed in range(6):
        rng = np.random.default_rng(900 + seed)
        net = random_net(rng, 3, [10, 10, 10], 3)
        b = propagate(net, InputBox(np.zeros(3), np.ones(3)))
        c = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]])
        root = _Domain([np.zeros(lo.size, np.int8) for lo in b.lower], np.ones(3, dtype=bool), None)
        out = {}
        for flag in (False, True):  # a large step, so that the last iterate often falls back
            tree = _Tree(net, b, c, np.zeros(3), np.arange(3), 12, 0.5, torch.float64, False, flag)
            out[flag] = tree.bound([root])
        v_last, v_best = out[False].v, out[True].v
        assert (v_best >= v_last - 1e-12).all()
        raised += int((v_best > v_last + 1e-6).sum())
        for part_last, part_best in zip(out[False].params, out[True].params, strict=True):
            for j in part_last:
                assert torch.equal(part_last[j], part_best[j])
        y, _ = net.forward(rng.random((20000, 3)))
        assert (v_best <= (y @ c.T).min(0) + 1e-9).all()
    assert raised > 0, "the best iterate never raised a bound: the option did nothing"


@pytest.mark.parametrize("seed", range(12))
def test_re_optimised_intermediate_bounds_keep_the_tree_sound(seed):
    """With every subdomain's intermediate bounds re-optimised after each split
    (``bab_interm_every`` 1; a subdomain they show empty is closed), the tree agrees with the
    grid: ``refuted`` only when no grid point violates, ``found`` a real violation."""
    net, phases, box, b, y, follow = _tiny_2d_case(600 + seed, 4)
    spec = robustness_spec(seed % 4, 4)
    if b.vacuous:
        return
    c = np.vstack([cc for cc, _ in spec.disjuncts])
    d = np.concatenate([dd for _, dd in spec.disjuncts])
    res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() + 30,
                           check=lambda z: check_point(net, box, spec, phases, z),
                           groups=np.arange(c.shape[0]),
                           options=VerifyOptions(bab_batch=4, bab_interm_every=1, bab_interm_iters=10))
    bad = follow & spec.violated(y)
    if res.domains > 1:
        assert res.refreshed > 0
    assert res.emptied <= res.refreshed
    if res.status == REFUTED:
        assert not bad.any(), "a tree with re-optimised intermediate bounds proved a violated property"
    elif res.status == FOUND:
        yc, pc = net.forward(res.counterexample.x)
        assert follows_phases(pc, phases)[0] and spec.violated(yc)[0]
    else:
        pytest.fail(f"tiny network left undecided: {res.reason}")

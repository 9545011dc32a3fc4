"""Soundness edge cases of napkit.verify on hand-weighted networks whose answer is known:
non-finite coefficients and bounds, regions that only a boundary point follows, vacuous
balls, ties, strict comparisons in VNN-LIB, single-output networks.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from verify_helpers import random_net

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify import (
    InputBox,
    MilpEncoding,
    Property,
    follows_phases,
    linf_ball,
    margin_lower,
    minimize_nap,
    propagate,
    read_vnnlib_text,
    robustness_spec,
    tighten_bounds,
    verified_radius,
    verify_disjoint,
    verify_property,
    verify_robustness,
    verify_vnnlib,
    vnnlib_text,
)
from napkit.verify.bab import branch_and_bound
from napkit.verify.optimized import optimize_rows, tighten_optimized
from napkit.verify.verdict import UNKNOWN


def _net(ws, bs) -> ReluNetwork:
    return ReluNetwork(tuple(np.asarray(w, float) for w in ws), tuple(np.asarray(b, float) for b in bs))


_HEAD = """(declare-const X_0 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (<= X_0 1.0))
(assert (>= X_0 0.0))
"""
# y0 = x, y1 = 0 on x in [0, 1]
_ID_NET = _net([[[1.0]], [[1.0], [0.0]]], [[0.0], [0.0, 0.0]])


# ------------------------------------------------ inputs that once gave wrong answers ----


def test_vnnlib_nan_coefficient_is_not_unsat():
    """A NaN coefficient was once read as a number and the query answered 'unsat'."""
    text = _HEAD + "(assert (<= (* nan Y_0) 0.0))\n"
    try:
        spec = read_vnnlib_text(text)
    except NapkitError:
        return  # refusing the file is the right answer
    res = verify_vnnlib(_ID_NET, spec, timeout=10)
    assert res.verdict != "unsat", res.reason


def test_nonfinite_bounds_never_verify():
    """NaN bounds (float64 overflow) once classified a neuron as inactive -> 'verified'."""
    # z = 1e300 (x0 - x1): in real arithmetic finite and up to 1e310 on the box, so
    # y0 = 1 - relu(z) < y1 = 0 for x0 - x1 >= 1e-300 (e.g. x = (1.5e10, 1e10)).
    net = _net([[[1e300, -1e300]], [[-1.0], [0.0]]], [[0.0], [1.0, 0.0]])
    box = InputBox(np.array([1e10, 1e10]), np.array([2e10, 2e10]))
    with np.errstate(all="ignore"), pytest.raises(NapkitError, match="overflowed float64"):
        verify_robustness(net, box, 0, None, timeout=10)


def test_boundary_only_region_is_not_verified():
    """A NAP that only the boundary point x = 0 follows (closed), and no point strictly: the
    region is reported vacuous (or unknown), never verified."""
    # z = x on x in [-1, 0]; the NAP wants z active: only x = 0 follows closed, nothing strictly.
    net = _net([[[1.0]], [[0.0], [0.0]]], [[0.0], [1.0, 0.0]])
    box = InputBox(np.array([-1.0]), np.array([0.0]))
    xs = np.linspace(-1, 0, 1001)[:, None]
    _, pre = net.forward(xs)
    assert not follows_phases(pre, [np.array([1], np.int8)], strict=True).any()
    res = verify_robustness(net, box, 0, [np.array([1], np.int8)], timeout=10)
    assert res.verdict in ("vacuous", "unknown"), res.reason


def test_radius_does_not_hide_vacuity():
    """Vacuous balls once counted as verified radii."""
    # z = x - 5 can never be active on [0, 1]: every ball is vacuous under the NAP.
    net = _net([[[1.0]], [[1.0], [0.0]]], [[-5.0], [0.0, 1.0]])
    rr = verified_radius(net, np.array([0.5]), 0, [np.array([1], np.int8)], timeout=5)
    assert all(s.verdict == "vacuous" for s in rr.steps)
    assert rr.upper_verdict != "verified"


def test_vnnlib_strict_comparisons_are_read_closed_as_in_vnncomp():
    """VNN-COMP reads ``<`` as ``<=`` (floating-point benchmarks; DESIGN.md: a counterexample
    has y_j >= y_c). Here the violation y0 < y1 means x < 0, empty on [0, 1] strictly, but the
    closed reading holds at x = 0: both spellings give 'sat' with that boundary point."""
    strict = verify_vnnlib(_ID_NET, read_vnnlib_text(_HEAD + "(assert (< Y_0 Y_1))\n"), timeout=10)
    closed = verify_vnnlib(_ID_NET, read_vnnlib_text(_HEAD + "(assert (<= Y_0 Y_1))\n"), timeout=10)
    assert strict.verdict == closed.verdict == "sat"
    assert float(np.ravel(strict.counterexample)[0]) == 0.0 and strict.strict is False


def test_disjoint_closed_only_witness():
    """Two NAPs that only x = 0 follows together (one wants x active, the other x inactive):
    a witness is reported only if it follows both strictly, or flagged as not strict."""
    # two copies of z = x; NAP_i: first active (x > 0); NAP_j: second inactive (x <= 0)
    net = _net([[[1.0], [1.0]], [[1.0, 0.0], [0.0, 1.0]]], [[0.0, 0.0], [0.0, 0.0]])
    box = InputBox(np.array([-1.0]), np.array([1.0]))
    res = verify_disjoint(net, box, [np.array([1, 0], np.int8)], [np.array([0, -1], np.int8)],
                          timeout=10)
    assert res.verdict != "falsified" or res.strict, (res.verdict, res.strict)


def test_disjoint_single_output_network():
    """Non-ambiguity on a network with one output: x = 1 follows both (identical) NAPs."""
    net = _net([[[1.0]], [[1.0]]], [[0.0], [0.0]])
    box = InputBox(np.array([-1.0]), np.array([1.0]))
    res = verify_disjoint(net, box, [np.array([1], np.int8)], [np.array([1], np.int8)])
    assert res.verdict == "falsified"  # x = 1 follows both


# ---------------------------------------------------------- checked and sound -----------


def test_tie_is_a_counterexample_not_a_proof():
    """y_c > y_j strictly is needed: a tie y0 = y1 at x = 0 must never give 'verified'."""
    for kw in ({}, {"attack": False}, {"attack": False, "bab": False},
               {"attack": False, "bab": False, "optimize": False}):
        res = verify_robustness(_ID_NET, InputBox(np.array([0.0]), np.array([1.0])), 0, None,
                                timeout=10, **kw)
        assert res.verdict == "falsified", (kw, res.verdict, res.reason)
        assert res.strict is False  # tie: violates only closed


def test_milp_infeasible_query_is_closed_violation():
    """The MILP asks C y <= d (y_c - y_j <= 0): the tie point is feasible."""
    b = propagate(_ID_NET, InputBox(np.array([0.0]), np.array([1.0])))
    c, d = robustness_spec(0, 2).disjuncts[0]
    assert MilpEncoding(_ID_NET, b).solve(c, d).status == "feasible"
    # a strictly positive margin everywhere (y0 = x + 1e-3) is infeasible
    net = _net([[[1.0]], [[1.0], [0.0]]], [[0.0], [1e-3, 0.0]])
    b = propagate(net, InputBox(np.array([0.0]), np.array([1.0])))
    assert MilpEncoding(net, b).solve(c, d).status == "infeasible"


def test_optimize_rows_clamps_params_in_final_pass():
    """Out-of-range warm starts (alpha = 5, beta = -3) are clamped before the final bound."""
    rng = np.random.default_rng(3)
    net = random_net(rng, 2, [6, 6], 3)
    box = InputBox(np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    ph = [np.array([1, -1, 0, 0, 0, 0], np.int8), np.zeros(6, np.int8)]
    b = propagate(net, box, ph)
    assert not b.vacuous
    g = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    _, info = optimize_rows(net, b, 2, g, np.zeros(2), iters=5)
    bad = ({j: torch.full_like(v, 5.0) for j, v in info["alphas"].items()},
           {j: torch.full_like(v, -3.0) for j, v in info["betas"].items()})
    v, info2 = optimize_rows(net, b, 2, g, np.zeros(2), iters=0, init=bad)
    assert all(float(a.max()) <= 1.0 and float(a.min()) >= 0.0 for a in info2["alphas"].values())
    assert all(float(x.min()) >= 0.0 for x in info2["betas"].values())
    xs = np.stack(np.meshgrid(np.linspace(-1, 1, 301), np.linspace(-1, 1, 301)), -1).reshape(-1, 2)
    y, pre = net.forward(xs)
    ok = follows_phases(pre, ph)
    assert (v[None] <= (y[ok] @ g.T) + 1e-12).all()


@pytest.mark.parametrize("seed", range(6))
def test_tightened_bounds_contain_all_samples(seed):
    """Optimised (Lagrangian) and LP-tightened bounds stay valid on the phase region."""
    rng = np.random.default_rng(100 + seed)
    net = random_net(rng, 2, [6, 6, 5], 3)
    box = InputBox(np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    xs = np.stack(np.meshgrid(np.linspace(-1, 1, 201), np.linspace(-1, 1, 201)), -1).reshape(-1, 2)
    y, pre = net.forward(xs)
    x0 = xs[rng.integers(len(xs))]
    ph = [np.where(rng.random(z.shape[1]) < 0.4, np.where(z[0] > 0, 1, -1), 0).astype(np.int8)
          for z in net.forward(x0[None])[1]]
    ok = follows_phases(pre, ph)
    assert ok.any()
    b = propagate(net, box, ph)
    tighten_optimized(net, b, iters=30)
    assert not b.vacuous
    tighten_bounds(net, b, time.monotonic() + 20)
    for k, z in enumerate(pre):
        assert (z[ok] >= b.lower[k] - 1e-12).all() and (z[ok] <= b.upper[k] + 1e-12).all()
    lo = margin_lower(net, b, 0)
    marg = y[ok][:, [0]] - y[ok]
    assert (lo[1:][None] <= marg[:, 1:] + 1e-12).all()


def test_branch_and_bound_timeout_is_unknown():
    rng = np.random.default_rng(7)
    net = random_net(rng, 2, [8, 8], 3)
    b = propagate(net, InputBox(np.array([-1.0, -1.0]), np.array([1.0, 1.0])))
    c, d = robustness_spec(0, 3).disjuncts[0]
    res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() - 1.0, check=lambda x: None)
    assert res.status == UNKNOWN


def test_engine_timeout_is_unknown_not_verified():
    rng = np.random.default_rng(11)
    net = random_net(rng, 3, [20, 20], 3)
    box = InputBox(-np.ones(3), np.ones(3))
    res = verify_robustness(net, box, 0, None, timeout=1e-9, attack=False)
    assert res.verdict in ("unknown", "falsified"), res.reason


def test_vacuous_only_when_no_input_follows():
    """Exact 1-d check: z1 = x - 0.5 active and z2 = x - 0.5 inactive: only x = 0.5 follows."""
    net = _net([[[1.0], [1.0]], [[1.0, 0.0], [0.0, 1.0]]], [[-0.5, -0.5], [1.0, 0.0]])
    box = InputBox(np.array([0.0]), np.array([1.0]))
    res = verify_robustness(net, box, 0, [np.array([1, -1], np.int8)], timeout=10)
    assert res.verdict != "vacuous"
    # one step further (z2 = x - 0.5 + 1e-6 inactive): x <= 0.5 - 1e-6 and x >= 0.5: empty
    net = _net([[[1.0], [1.0]], [[1.0, 0.0], [0.0, 1.0]]], [[-0.5, -0.5 + 1e-6], [1.0, 0.0]])
    res = verify_robustness(net, box, 0, [np.array([1, -1], np.int8)], timeout=10)
    assert res.verdict == "vacuous"


def test_vnnlib_robustness_recognition_keeps_the_region():
    """A spec that only looks like robustness (scaled rows, non-zero d) keeps its own rows."""
    text = ("(declare-const X_0 Real)\n" + "".join(f"(declare-const Y_{i} Real)\n" for i in range(3))
            + "(assert (<= X_0 1.0))\n(assert (>= X_0 0.0))\n"
            "(assert (or (and (<= (* 2.0 Y_0) (* 2.0 Y_1))) (and (<= Y_0 (+ Y_2 0.5)))))\n")
    prop = read_vnnlib_text(text).to_property(1, 3)
    assert prop.output.label is None
    ys = np.random.default_rng(0).normal(size=(2000, 3))
    want = (2 * ys[:, 0] <= 2 * ys[:, 1]) | (ys[:, 0] <= ys[:, 2] + 0.5)
    assert (prop.output.violated(ys) == want).all()


def test_vnnlib_phase_roundtrip_and_signs():
    rng = np.random.default_rng(1)
    net = random_net(rng, 2, [3, 4], 3)
    ph = [np.array([1, 0, -1], np.int8), np.array([0, -1, 1, 0], np.int8)]
    box = InputBox(np.array([-1.0, 0.0]), np.array([0.5, 1.0]))
    text = vnnlib_text(box, robustness_spec(2, 3), ph)
    prop = read_vnnlib_text(text).to_property(2, 3, net.layer_sizes)
    assert all((a == b).all() for a, b in zip(prop.phases, ph, strict=True))
    assert prop.output.label == 2
    assert (prop.box.lower == box.lower).all() and (prop.box.upper == box.upper).all()


@pytest.mark.parametrize("seed", range(4))
def test_radius_lower_is_verified_and_minimised_nap_reverifies(seed):
    rng = np.random.default_rng(200 + seed)
    net = random_net(rng, 2, [6, 6], 3)
    x0 = rng.uniform(0.2, 0.8, 2)
    label = int(net.predict(x0[None])[0])
    rr = verified_radius(net, x0, label, None, timeout=10, tol=1e-3, eps_max=0.5)
    if rr.lower > 0:
        res = verify_robustness(net, linf_ball(x0, rr.lower), label, timeout=20)
        assert res.verdict == "verified"
    # sampled counterexample never inside the verified ball
    xs = np.clip(x0 + rng.uniform(-rr.lower, rr.lower, (20000, 2)), 0, 1)
    assert (net.predict(xs) == label).all() or rr.lower == 0
    pre = net.forward(x0[None])[1]
    ph = [np.where(z[0] > 0, 1, -1).astype(np.int8) for z in pre]
    box = linf_ball(x0, 0.05)
    if verify_robustness(net, box, label, ph, timeout=10).verdict == "verified":
        m = minimize_nap(net, box, label, ph, timeout=5, budget=30)
        assert m.final.verdict == "verified"
        again = verify_property(net, Property(box, robustness_spec(label, 3), m.phases), 20)
        assert again.verdict == "verified"

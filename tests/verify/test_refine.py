"""MILP-refined root bounds: the compact model has the full encoding's optima, and refined
intervals still hold every sampled point of the region."""

from __future__ import annotations

import time

import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.network import ReluNetwork
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
from napkit.verify.bounds import Bounds
from napkit.verify.milp import MilpEncoding
from napkit.verify.refine import _highs, _minimum, layer_model, refine_with_milp


def _full_minimum(net, b, k: int, cost_of_layer: np.ndarray) -> float:
    """min of ``cost_of_layer @ W_k a_{k-1}`` over the full MILP encoding (every neuron a column)."""
    cut = ReluNetwork(tuple(net.weights[: k + 1]), tuple(net.biases[: k + 1]))
    phases = None if b.phases is None else b.phases[:k]
    enc = MilpEncoding(cut, Bounds(b.lower[:k], b.upper[:k], b.box, phases))
    cost = np.zeros(enc.n_col)
    cost[enc.out_cols] = cost_of_layer @ net.weights[k][:, enc.out_keep]
    return _minimum(_exact(enc._lp()), cost, 60.0) + cost_of_layer @ net.biases[k]


def _exact(lp):
    """The refinement's HiGHS, solving to optimality (no relative gap) so optima compare."""
    h = _highs(lp)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    return h


@pytest.mark.parametrize("seed", range(8))
def test_compact_model_has_the_full_encodings_optima(seed):
    """Stable neurons substituted out, fixed phases kept as rows: every neuron's exact minimum and
    maximum over the region equal the full encoding's, and no sampled point goes beyond them."""
    rng = np.random.default_rng(700 + seed)
    box = InputBox(np.zeros(4), np.ones(4))
    b = None
    while b is None or b.vacuous:  # a region some input follows (seeded: the same every run)
        net = random_net(rng, 4, [7, 7, 7], 2)
        phases = random_phases(rng, net.layer_sizes, 0.3) if seed % 2 else None
        b = propagate(net, box, phases)
    x = rng.random((20000, 4))
    _, pre = net.forward(x)
    ok = follows_phases(pre, phases)
    for k in (1, 2):
        model = layer_model(net, b, k)
        h = _exact(model.lp)
        for i in range(net.layer_sizes[k]):
            e = np.eye(net.layer_sizes[k])[i]
            for sense in (1.0, -1.0):
                compact = sense * _minimum(h, sense * model.target[i], 60.0) + model.offset[i]
                full = sense * _full_minimum(net, b, k, sense * e)
                assert compact == pytest.approx(full, abs=1e-6)
            if ok.any():
                lo = _minimum(h, model.target[i], 60.0) + model.offset[i]
                up = -_minimum(h, -model.target[i], 60.0) + model.offset[i]
                assert lo - 1e-6 <= pre[k][ok, i].min() and pre[k][ok, i].max() <= up + 1e-6


@pytest.mark.parametrize("seed", range(10))
def test_refined_bounds_hold_on_samples(seed):
    rng = np.random.default_rng(900 + seed)
    net = random_net(rng, 3, [8, 8, 8], 3)
    phases = random_phases(rng, net.layer_sizes, 0.25) if seed % 2 else None
    box = InputBox(np.zeros(3), np.ones(3))
    b = propagate(net, box, phases)
    if b.vacuous:
        return
    before = [lo.copy() for lo in b.lower], [up.copy() for up in b.upper]
    st = refine_with_milp(net, b, time.monotonic() + 20, per_side=2.0)
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
    refined = verify_property(net, prop, options=VerifyOptions(timeout=10, workers=1, refine_share=0.5,
                                                               few_unstable=0))
    assert refined.stats.get("refine_asked", 0) > 0, refined.stats
    assert {plain.verdict, refined.verdict} - {"unknown"} in ({plain.verdict}, {refined.verdict}, set())

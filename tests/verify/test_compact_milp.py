"""CompactEncoding (stable neurons substituted out) against MilpEncoding (a column per neuron):
the same optima per neuron, the same answers to ``solve(c, d)``, and its points are real."""

from __future__ import annotations

import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.network import ReluNetwork
from napkit.verify import InputBox, follows_phases, propagate, robustness_spec
from napkit.verify.bounds import Bounds
from napkit.verify.compact_milp import CompactEncoding
from napkit.verify.milp import MilpEncoding
from napkit.verify.refine import _highs, _minimum


def _region(seed: int, with_phases: bool):
    """A seeded random network and region some input follows (the same every run)."""
    rng = np.random.default_rng(700 + seed)
    box = InputBox(np.zeros(4), np.ones(4))
    b = None
    while b is None or b.vacuous:
        net = random_net(rng, 4, [7, 7, 7], 3)
        phases = random_phases(rng, net.layer_sizes, 0.3) if with_phases else None
        b = propagate(net, box, phases)
    return rng, net, phases, b


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
    rng, net, phases, b = _region(seed, seed % 2 == 1)
    x = rng.random((20000, 4))
    _, pre = net.forward(x)
    ok = follows_phases(pre, phases)
    for k in (1, 2):
        model = CompactEncoding(net, b, upto=k)
        h = _exact(model._lp())
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




@pytest.mark.parametrize("seed", range(12))
def test_compact_and_full_encodings_answer_alike(seed):
    """Each robustness disjunct, with and without phases and strict margins: both infeasible or
    both feasible, and a compact point satisfies the disjunct and the phases when re-run."""
    rng, net, phases, b = _region(seed, seed % 2 == 1)
    label = int(rng.integers(3))
    for strict, slack in ((0.0, 0.0), (1e-6, 0.0), (0.0, 1e-6)):
        full = MilpEncoding(net, b, strict=strict, slack=slack)
        compact = CompactEncoding(net, b, strict=strict, slack=slack)
        assert compact.n_binary == full.n_binary == b.n_unstable
        for c, d in robustness_spec(label, 3).disjuncts:
            rf, rc = full.solve(c, d, time_limit=30), compact.solve(c, d, time_limit=30)
            assert {rf.status, rc.status} <= {"feasible", "infeasible"}
            assert rf.status == rc.status
            if rc.status == "feasible":
                y, pre = net.forward(rc.x[None])
                assert (y @ c.T - d <= slack - strict + 1e-6).all()
                assert b.box.contains(rc.x[None]).all()
                if phases is not None and strict > 0:
                    assert follows_phases(pre, phases).all()


@pytest.mark.parametrize("seed", range(8))
def test_layout_places_an_exact_forward_pass_on_every_row(seed):
    """``layout`` names exactly the unstable neurons of each layer; an input of the region, with
    each unstable neuron's pre-activation, ReLU and phase written into the columns the layout
    gives, satisfies every row, each ``z_rows`` row holds +1 on its own ``z`` column, and the
    logits are ``target @ columns + offset``."""
    rng, net, phases, b = _region(seed, seed % 2 == 1)
    enc = CompactEncoding(net, b)
    x = rng.random((20000, 4))
    y, pre = net.forward(x)
    ok = np.flatnonzero(follows_phases(pre, phases)) if phases is not None else np.arange(len(x))
    a_mat = np.zeros((enc.rlo.size, enc.n_col))
    for r in range(enc.rlo.size):
        span = slice(enc.starts[r], enc.starts[r + 1] if r + 1 < enc.rlo.size else enc.idx.size)
        a_mat[r, enc.idx[span]] = enc.val[span]
    assert len(enc.layout) == len(net.layer_sizes)
    for j, lay in enumerate(enc.layout):
        assert lay.neurons.tolist() == np.flatnonzero((b.lower[j] < 0) & (b.upper[j] > 0)).tolist()
        assert (a_mat[lay.z_rows, lay.z] == 1.0).all()
    for i in ok[:50]:
        col = np.zeros(enc.n_col)
        col[: net.n_inputs] = x[i]
        for j, lay in enumerate(enc.layout):
            z = pre[j][i, lay.neurons]
            col[lay.z], col[lay.a], col[lay.d] = z, np.maximum(z, 0.0), (z > 0).astype(float)
        v = a_mat @ col
        assert (v >= enc.rlo - 1e-9).all() and (v <= enc.rhi + 1e-9).all()
        assert enc.target @ col + enc.offset == pytest.approx(y[i], abs=1e-9)

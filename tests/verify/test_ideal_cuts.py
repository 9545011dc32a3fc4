"""Ideal-formulation ReLU cuts: every point of the region satisfies every cut separated
anywhere, each cut removes the point it was separated at, and the LP bounds with cuts hold on
samples and are tighter than the LP without them."""

from __future__ import annotations

import time

import highspy
import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.verify import InputBox, follows_phases, propagate
from napkit.verify.compact_milp import CompactEncoding
from napkit.verify.ideal_cuts import IdealCuts, cut_lp_bounds


def _region(seed: int):
    """A seeded random network and region (with phases for every third seed) that sampled
    inputs follow."""
    rng = np.random.default_rng(4100 + seed)
    box = InputBox(np.zeros(4), np.ones(4))
    while True:
        net = random_net(rng, 4, [8, 8, 8], 3)
        phases = random_phases(rng, net.layer_sizes, 0.2) if seed % 3 == 2 else None
        b = propagate(net, box, phases)
        if b.vacuous:
            continue
        if phases is None or follows_phases(net.forward(rng.random((20000, 4)))[1], phases).any():
            return rng, net, phases, b


def _columns(enc, net, x):
    """Exact points written into the encoding's columns (inputs, then z, a, d per unstable neuron)."""
    _, pre = net.forward(x)
    cols = np.zeros((len(x), enc.n_col))
    cols[:, : net.n_inputs] = x
    for j, lay in enumerate(enc.layout):
        z = pre[j][:, lay.neurons]
        cols[:, lay.z], cols[:, lay.a], cols[:, lay.d] = z, np.maximum(z, 0.0), z > 0
    return cols, pre


def _lp_points(enc, rng, n):
    """Vertices of the LP relaxation for random objectives (the points cuts are made for)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(enc._lp(relax=True))
    out = []
    for _ in range(n):
        h.changeColsCost(enc.n_col, np.arange(enc.n_col, dtype=np.int32), rng.normal(size=enc.n_col))
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            out.append(np.asarray(h.getSolution().col_value))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_cuts_hold_on_the_region_and_cut_their_point(seed):
    rng, net, phases, b = _region(seed)
    enc = CompactEncoding(net, b)
    cutter = IdealCuts(enc)
    x = rng.random((5000, 4))
    cols, pre = _columns(enc, net, x)
    if phases is not None:
        cols = cols[follows_phases(pre, phases)]
    made = 0
    for point in _lp_points(enc, rng, 30):
        for idx, vals, rhs in cutter.separate(point):
            made += 1
            assert vals @ point[idx] > rhs  # the cut removes the point it was made at
            assert (cols[:, idx] @ vals <= rhs + 1e-9 * (1 + abs(rhs))).all()
    assert made > 0  # the LP relaxation of these networks has points the cuts remove


def test_cut_lp_bounds_hold_and_beat_the_plain_lp():
    widths = {0: 0.0, 3: 0.0}
    for seed in range(6):
        rng, net, phases, b = _region(seed)
        x = rng.random((20000, 4))
        _, pre = net.forward(x)
        ok = follows_phases(pre, phases) if phases is not None else np.ones(len(x), dtype=bool)
        k = 2
        enc = CompactEncoding(net, b, upto=k)
        unst = np.flatnonzero((b.lower[k] < 0) & (b.upper[k] > 0))
        for rounds in widths:
            lo, up, solved, empty = cut_lp_bounds(enc, unst, rounds, time.monotonic() + 30)
            assert not empty and solved >= 2 * unst.size
            zk = pre[k][ok][:, unst]
            assert (zk >= lo - 1e-9).all() and (zk <= up + 1e-9).all()
            tight_lo, tight_up = np.maximum(lo, b.lower[k][unst]), np.minimum(up, b.upper[k][unst])
            widths[rounds] += float((tight_up - tight_lo).sum())
    assert widths[3] < 0.99 * widths[0], widths

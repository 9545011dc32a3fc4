"""Branch and bound shared out over two processes (``bab_split.py``): the same verdicts as
a fine grid on tiny 2-d networks, counterexamples re-checked, a failed part never proves."""

import os
import time

import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.verify import InputBox, check_point, follows_phases, propagate, robustness_spec
from napkit.verify.bab import branch_and_bound
from napkit.verify.options import VerifyOptions
from napkit.verify.verdict import FOUND, REFUTED, UNKNOWN

_SPLIT_EARLY = VerifyOptions(bab_batch=2, bab_split_domains=2)


def _case(seed: int):
    """A random 2-12-10-4 network on [0,1]^2 (phases on odd seeds), its bounds, the robustness
    rows of one class, and the grid's outputs and phase-following mask (the reference)."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, [12, 10], 4)
    phases = random_phases(rng, net.layer_sizes, 0.2) if seed % 2 else None
    box = InputBox(np.zeros(2), np.ones(2))
    g = np.linspace(0.0, 1.0, 161)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    y, pre = net.forward(grid)
    spec = robustness_spec(seed % 4, 4)
    return net, phases, box, propagate(net, box, phases), spec, spec.violated(y) & follows_phases(pre, phases)


def _tree(net, b, spec, check, workers, options=_SPLIT_EARLY, seconds=30.0):
    c = np.vstack([cc for cc, _ in spec.disjuncts])
    d = np.concatenate([dd for _, dd in spec.disjuncts])
    return branch_and_bound(net, b, c, -d, deadline=time.monotonic() + seconds, check=check,
                            groups=np.arange(c.shape[0]), options=options, workers=workers)


@pytest.mark.parametrize("seed", range(12))
def test_split_tree_agrees_with_the_grid(seed):
    net, phases, box, b, spec, bad = _case(700 + seed)
    if b.vacuous:
        assert not bad.any()
        return
    res = _tree(net, b, spec, lambda z: check_point(net, box, spec, phases, z), workers=2)
    if res.domains > 1 and res.status != FOUND:  # the root branched: its children were shared out
        assert res.processes == 2
    if res.status == REFUTED:
        assert not bad.any(), "the split tree proved a property that a grid point violates"
        assert res.open_groups == []
    elif res.status == FOUND:
        yc, pc = net.forward(res.counterexample.x)
        assert follows_phases(pc, phases)[0] and spec.violated(yc)[0]
    else:
        pytest.fail(f"tiny network left undecided: {res.reason}")


@pytest.mark.parametrize("seed", range(6))
def test_split_and_single_tree_give_the_same_verdict(seed):
    net, phases, box, b, spec, bad = _case(800 + seed)
    if b.vacuous:
        return
    check = lambda z: check_point(net, box, spec, phases, z)  # noqa: E731
    one = _tree(net, b, spec, check, workers=None, seconds=10)
    two = _tree(net, b, spec, check, workers=lambda: 2, seconds=10)
    assert one.processes == 1
    decided = [r.status for r in (one, two) if r.status != UNKNOWN]
    assert all(s == (FOUND if bad.any() else REFUTED) for s in decided)


@pytest.mark.parametrize("how", ["raises", "exits"])
def test_a_part_whose_process_fails_leaves_the_tree_undecided(how):
    """A child whose ``check`` raises, or whose process exits, sends nothing back: its share
    of the subdomains is not refuted, so the tree is not either, and the disjuncts open at
    the split stay open."""
    parent = os.getpid()

    def check(z):
        if os.getpid() != parent:
            if how == "exits":
                os._exit(3)
            raise RuntimeError("a child's failure")
        return None

    for seed in range(900, 940):
        net, phases, box, b, spec, bad = _case(seed)
        if b.vacuous or bad.any():
            continue
        single = _tree(net, b, spec, lambda z: None, workers=None)
        if single.status != REFUTED or single.domains < 4:
            continue  # a property that needs a tree
        res = _tree(net, b, spec, check, workers=2)
        assert res.status == UNKNOWN
        assert res.open_groups
        assert res.bound is None
        return
    pytest.skip("no seed gave a true property that needs a tree")

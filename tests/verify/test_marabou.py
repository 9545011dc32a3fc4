"""Marabou backend: encoding, verdicts, and differential testing against napkit's engine.

The differential test draws 400 random small networks and NAP-constrained properties
(robustness over the domain or an L-inf ball, non-ambiguity of two patterns; phases
mined at several δ or drawn at random) and checks that napkit and Marabou never
contradict each other where both decide: ``falsified`` (a point re-checked in float64)
against ``verified``/``vacuous``, or ``verified`` (the region holds a re-checked point)
against ``vacuous``. ``unknown`` is allowed on either side.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from verify_helpers import contradicts, differential_case

from napkit.errors import NapkitError
from napkit.verify import (
    Property,
    domain_box,
    linf_ball,
    robustness_spec,
    verify_disjoint,
    verify_property,
)
from napkit.verify.marabou import (
    build_query,
    layout,
    marabou_available,
    marabou_core,
    verify_disjoint_marabou,
    verify_property_marabou,
)

needs_marabou = pytest.mark.skipif(
    not marabou_available(),
    reason="maraboupy is not importable: pip install 'maraboupy==2.0.0' (napkit[marabou]) to run these",
)

HOLDS = {"verified", "vacuous"}


def test_missing_maraboupy_is_a_clear_error(monkeypatch, tiny_net):
    monkeypatch.setitem(sys.modules, "maraboupy", None)
    prop = Property(domain_box(2), robustness_spec(0, 2))
    with pytest.raises(NapkitError, match="pip install 'maraboupy==2.0.0'"):
        verify_property_marabou(tiny_net, prop, 1.0)


def test_layout_numbers_every_variable_once(tiny_net):
    lay = layout(tiny_net)
    allv = np.concatenate([lay.inputs, *lay.pre, *lay.post, lay.outputs])
    assert sorted(allv.tolist()) == list(range(lay.n_vars)) == list(range(2 + 2 * 3 + 2 * 2 + 2))


@needs_marabou
def test_query_solution_is_the_forward_pass(tiny_net):
    """Pin the input to one point: Marabou's values of every variable equal the float64 pass."""
    x0 = np.array([0.3, 0.8])
    prop = Property(linf_ball(x0, 0.0), robustness_spec(0, 2))
    core = marabou_core()
    ipq, lay = build_query(tiny_net, prop, None)
    opts = core.Options()
    opts._verbosity = 0
    code, vals, _ = core.solve(ipq, opts, "")
    assert code == "sat"
    y, pre = tiny_net.forward(x0[None])
    for k, z in enumerate(pre):
        assert np.allclose([vals[int(v)] for v in lay.pre[k]], z[0], atol=1e-7)
        assert np.allclose([vals[int(v)] for v in lay.post[k]], np.maximum(z[0], 0), atol=1e-7)
    assert np.allclose([vals[int(v)] for v in lay.outputs], y[0], atol=1e-7)


@needs_marabou
def test_verdicts_on_the_tiny_net(tiny_net):
    # y0 = relu(relu(x0) + relu(x1 - .5) - 1), y1 = relu(-relu(x1 - .5) + 2 relu(x0 - x1) + .5)
    box = domain_box(2)
    falsified = verify_property_marabou(tiny_net, Property(box, robustness_spec(0, 2)), 10)
    assert falsified.verdict == "falsified"
    assert falsified.counterexample is not None
    y, _ = tiny_net.forward(falsified.counterexample[None])
    assert y[0, 1] >= y[0, 0]
    # near (0.1, 0.1) class 1 wins: y0 = 0, y1 = 0.5
    near = verify_property_marabou(tiny_net, Property(linf_ball([0.1, 0.1], 0.05), robustness_spec(1, 2)), 10)
    assert near.verdict == "verified"
    assert verify_property(tiny_net, Property(linf_ball([0.1, 0.1], 0.05), robustness_spec(1, 2)),
                           10).verdict == "verified"
    # unit 1 of layer 0 active needs x1 >= 0.5: impossible in the ball around (0.1, 0.1)
    phases = [np.array([0, 1, 0], np.int8), np.zeros(2, np.int8)]
    vac = verify_property_marabou(tiny_net, Property(linf_ball([0.1, 0.1], 0.05), robustness_spec(1, 2),
                                                     phases), 10)
    assert vac.verdict == "vacuous"


@needs_marabou
def test_disjoint_with_marabou(tiny_net):
    box = domain_box(2)
    a = [np.array([0, 1, 0], np.int8), np.zeros(2, np.int8)]  # x1 >= 0.5
    c = [np.array([-1, 0, 0], np.int8), np.zeros(2, np.int8)]  # x0 <= 0
    assert verify_disjoint_marabou(tiny_net, box, a, c, 5).verdict == "falsified"  # e.g. (0, 0.7)
    assert verify_disjoint_marabou(tiny_net, box, a, [-p for p in a], 5).verdict == "verified"  # opposite
    d = [np.array([0, 0, 1], np.int8), np.array([1, 0], np.int8)]  # x0 >= x1 and x0 + relu(x1-.5) >= 1
    assert verify_disjoint_marabou(tiny_net, box, c, d, 5).verdict == "verified"
    assert verify_disjoint(tiny_net, box, c, d, 5).verdict == "verified"


# ---- differential testing ----------------------------------------------------------------------

N_CASES = 400


@needs_marabou
def test_differential_napkit_vs_marabou():
    bad, decided, kinds = [], 0, {}
    for seed in range(N_CASES):
        kind, net, box, a, b, attack = differential_case(seed)
        if kind == "disjoint":
            ours = verify_disjoint(net, box, a, b, timeout=2.0)
            theirs = verify_disjoint_marabou(net, box, a, b, timeout=2.0)
        else:
            prop = Property(box, robustness_spec(a, net.n_outputs), b)
            # every fourth query with the falsifier process beside the proof (workers=2)
            extra = {"workers": 2, "parallel_min_left": 0.0} if seed % 4 == 3 else {"workers": 1}
            ours = verify_property(net, prop, timeout=2.0, attack=attack, **extra)
            theirs = verify_property_marabou(net, prop, timeout=2.0)
        key = (kind, ours.verdict, theirs.verdict)
        kinds[key] = kinds.get(key, 0) + 1
        if "unknown" not in (ours.verdict, theirs.verdict):
            decided += 1
        if contradicts(ours.verdict, theirs.verdict):
            bad.append((seed, kind, ours.verdict, ours.reason, theirs.verdict, theirs.reason))
    summary = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
    assert not bad, f"napkit and Marabou contradict each other: {bad}\n{summary}"
    assert decided >= 0.8 * N_CASES, f"only {decided} of {N_CASES} decided by both: {summary}"
    # every verdict kind occurs, so the comparison is not trivially about one answer
    both = {(o, t) for (_, o, t) in kinds if o == t}
    assert {("verified", "verified"), ("falsified", "falsified"), ("vacuous", "vacuous")} <= both, summary

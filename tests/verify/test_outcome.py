"""One vocabulary for the outcome of a disjunct or subregion check (``verdict.Outcome``):
branch and bound, a disjunct's MILP and the exact tail answer ``refuted`` / ``found`` /
``unknown``, on a hand-weighted network whose answers are known."""

import time
import typing

import numpy as np
import pytest

from napkit.network import ReluNetwork
from napkit.verify import InputBox, Property, robustness_spec
from napkit.verify.attack import check_point
from napkit.verify.bab import branch_and_bound
from napkit.verify.bounds import propagate
from napkit.verify.naptail import Tail
from napkit.verify.options import VerifyOptions
from napkit.verify.query import Query
from napkit.verify.verdict import FOUND, OUTCOMES, REFUTED, UNKNOWN, Outcome


def _abs_net() -> ReluNetwork:
    """1 input x. Hidden 0: relu(x), relu(-x); hidden 1: a = relu(|x|) = |x|; y0 = a, y1 = 0.25.
    Class 0 holds exactly where |x| > 0.25."""
    w0, b0 = np.array([[1.0], [-1.0]]), np.zeros(2)
    w1, b1 = np.array([[1.0, 1.0]]), np.zeros(1)
    w2, b2 = np.array([[1.0], [0.0]]), np.array([0.0, 0.25])
    return ReluNetwork((w0, w1, w2), (b0, b1, b2))


_HOLDS = InputBox(np.array([0.5]), np.array([1.0]))  # |x| >= 0.5: no violation
_VIOLATED = InputBox(np.array([-1.0]), np.array([1.0]))  # x = 0: y1 - y0 = 0.25
_SPEC = robustness_spec(0, 2)


def test_outcome_constants_are_the_literal_type():
    assert OUTCOMES == (REFUTED, FOUND, UNKNOWN) == typing.get_args(Outcome)
    assert len(set(OUTCOMES)) == 3


@pytest.mark.parametrize(("box", "want"), [(_HOLDS, REFUTED), (_VIOLATED, FOUND)])
def test_branch_and_bound_answers_an_outcome(box, want):
    net = _abs_net()
    b = propagate(net, box)
    c, d = _SPEC.disjuncts[0]
    res = branch_and_bound(net, b, c, -d, deadline=time.monotonic() + 20,
                           check=lambda x: check_point(net, box, _SPEC, None, x))
    assert res.status in OUTCOMES
    assert res.status == want, res.reason
    if want == FOUND:
        y, _ = net.forward(res.counterexample.x[None])
        assert _SPEC.violated(y)[0]


@pytest.mark.parametrize(("box", "want"), [(_HOLDS, REFUTED), (_VIOLATED, FOUND)])
def test_milp_disjunct_answers_an_outcome(box, want):
    net = _abs_net()
    q = Query(net, Property(box, _SPEC).check(net.layer_sizes, 1, 2), VerifyOptions(timeout=10.0))
    q.bounds = propagate(net, box)
    status, ce, _ = q.milp_disjunct(0)
    assert status in OUTCOMES
    assert status == want
    assert (ce is not None) == (want == FOUND)


@pytest.mark.parametrize(("box", "want"), [(_HOLDS, REFUTED), (_VIOLATED, UNKNOWN)])
def test_tail_refutes_or_leaves_unknown_never_found(box, want):
    """The tail's box over-approximates the narrow layer: a violating tail input is no
    counterexample of the query, so the tail answers ``unknown`` with it, never ``found``."""
    net = _abs_net()
    phases = [np.zeros(2, np.int8), np.zeros(1, np.int8)]
    tail = Tail(net, propagate(net, box, phases), phases, 0, np.array([0, 1]))
    c, d = _SPEC.disjuncts[0]
    status, t = tail.disjunct(c, d, time_limit=10.0)
    assert status in OUTCOMES
    assert status == want
    assert (t is not None) == (want == UNKNOWN)


def test_branch_and_bound_default_iterate_is_the_options_default(monkeypatch):
    """``branch_and_bound`` without ``keep_best`` runs the tree as ``VerifyOptions`` does."""
    from napkit.verify import bab

    asked = []
    real = bab.optimise

    def spy(*a, **kw):
        asked.append(kw["keep_best"])
        return real(*a, **kw)

    monkeypatch.setattr(bab, "optimise", spy)
    net = _abs_net()
    c, d = _SPEC.disjuncts[0]
    branch_and_bound(net, propagate(net, _VIOLATED), c, -d, deadline=time.monotonic() + 20,
                     check=lambda x: None)
    assert asked and set(asked) == {VerifyOptions().bab_keep_best}


@pytest.mark.parametrize("cap", [0.0, 2.0])
def test_nonempty_attack_budget_is_the_named_option(monkeypatch, cap):
    """``nonempty_attack_cap`` bounds the deadline of ``Query.nonempty``'s attack (reached
    here by a centre on the boundary of the phases and no time for the first LPs)."""
    from types import SimpleNamespace

    from napkit.verify import query

    seen, now = [], 1000.0
    # the query's clock stands still, so the deadline it passes is exactly now + its budget
    monkeypatch.setattr(query, "time", SimpleNamespace(monotonic=lambda: now))

    def spy(*a, **kw):
        seen.append(kw["deadline"] - now)
        return None

    monkeypatch.setattr(query, "pgd_attack", spy)
    net = _abs_net()
    phases = [np.array([1, 0], np.int8), np.zeros(1, np.int8)]  # x > 0; the centre 0 is not
    prop = Property(_VIOLATED, _SPEC, phases).check(net.layer_sizes, 1, 2)
    opts = VerifyOptions(timeout=30.0, nonempty_first_cap=0.0, nonempty_attack_cap=cap)
    q = Query(net, prop, opts)
    q.bounds = propagate(net, _VIOLATED, phases)
    q.nonempty()
    assert seen and seen[0] == pytest.approx(cap)

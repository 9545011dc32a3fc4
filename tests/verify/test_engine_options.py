"""VerifyOptions, the stage list, and proof and falsification in two processes (workers)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from verify_helpers import random_net, random_phases

from napkit.errors import NapkitError
from napkit.verify import (
    InputBox,
    Property,
    VerificationResult,
    VerifyOptions,
    domain_box,
    follows_phases,
    linf_ball,
    robustness_spec,
    verify_property,
)
from napkit.verify.parallel import Falsifier
from napkit.verify.query import Query
from napkit.verify.stages import (
    FALSIFY_STAGES,
    PREFIX_STAGES,
    PROVE_STAGES,
    STAGES,
    milp,
    optimised_bounds,
    symbolic_bounds,
)


def test_bad_options_are_clear_errors(tiny_net):
    prop = Property(domain_box(2), robustness_spec(0, 2))
    with pytest.raises(NapkitError, match="unknown verification option"):
        verify_property(tiny_net, prop, 1.0, bogus=True)
    with pytest.raises(NapkitError, match="workers"):
        VerifyOptions(workers=0)
    with pytest.raises(NapkitError, match="bab_dtype"):
        VerifyOptions(bab_dtype="float16")
    with pytest.raises(NapkitError, match="timeout"):
        VerifyOptions(timeout=-1.0)


def test_stage_lists_cover_the_sequential_order():
    assert STAGES[: len(PREFIX_STAGES)] == PREFIX_STAGES
    assert set(STAGES) == set(PREFIX_STAGES) | set(FALSIFY_STAGES) | set(PROVE_STAGES)
    assert STAGES[-1] is PROVE_STAGES[-1]  # both orders end with the non-emptiness check


def test_options_object_and_keywords_agree(tiny_net):
    prop = Property(linf_ball([0.1, 0.1], 0.05), robustness_spec(1, 2))
    a = verify_property(tiny_net, prop, options=VerifyOptions(timeout=5.0, workers=1))
    b = verify_property(tiny_net, prop, 5.0, workers=1)
    assert a.verdict == b.verdict == "verified"


def _queries():
    for seed in range(14):
        rng = np.random.default_rng(4000 + seed)
        net = random_net(rng, 3, [10, 10, 8], 3)
        phases = random_phases(rng, net.layer_sizes, 0.15) if seed % 2 else None
        yield seed, net, Property(domain_box(3), robustness_spec(seed % 3, 3), phases)


@pytest.mark.parametrize("seed,net,prop", list(_queries()))
def test_two_workers_agree_with_one(seed, net, prop):
    one = verify_property(net, prop, 6.0, workers=1)
    two = verify_property(net, prop, options=VerifyOptions(timeout=6.0, workers=2, parallel_min_left=0.0))
    decided = {one.verdict, two.verdict} - {"unknown"}
    assert len(decided) <= 1, (one.verdict, one.reason, two.verdict, two.reason)
    if two.verdict == "falsified":
        y, pre = net.forward(two.counterexample[None])
        assert prop.output.violated(y)[0]


def _bogus_counterexample(q: Query) -> VerificationResult:
    return VerificationResult("falsified", "bogus", 0.0, counterexample=q.prop.box.center.copy())


def test_falsifier_points_are_rechecked_by_the_prover(tiny_net):
    # near (0.1, 0.1) class 1 wins everywhere: the centre is no counterexample
    prop = Property(linf_ball([0.1, 0.1], 0.05), robustness_spec(1, 2))
    q = Query(tiny_net, prop.check(tiny_net.layer_sizes, 2, 2), VerifyOptions(timeout=5.0))
    f = Falsifier(q, (_bogus_counterexample,))
    confirm, seen = q.confirm_point, []

    def spy(x, *args):
        seen.append((np.array(x), confirm(x, *args)))
        return seen[-1][1]

    q.confirm_point = spy
    try:
        f.proc.join(timeout=10.0)
        assert not f.poll()
        assert q.found is None
    finally:
        f.close()
    assert not f.proc.is_alive()
    # the falsifier's point reached the prover, which re-checked it and refused it
    assert len(seen) == 1 and np.array_equal(seen[0][0], prop.box.center) and seen[0][1] is None


def test_falsifier_counterexample_reaches_the_prover(tiny_net):
    # the whole domain: class 0 does not win everywhere (e.g. near (0, 0.7))
    prop = Property(domain_box(2), robustness_spec(0, 2)).check(tiny_net.layer_sizes, 2, 2)
    q = Query(tiny_net, prop, VerifyOptions(timeout=10.0))
    assert symbolic_bounds(q) is None and optimised_bounds(q) is None and q.open_ids
    f = Falsifier(q, FALSIFY_STAGES)
    try:
        f.proc.join(timeout=15.0)
        assert f.poll()
    finally:
        f.close()
    y, _ = tiny_net.forward(q.found.x[None])
    assert prop.output.violated(y)[0]


def test_falsifier_stops_quietly_when_bounds_refute_every_disjunct(tiny_net):
    """Regression: once its own optimised bounds refute every disjunct, the falsifier has
    nothing to attack (an empty specification); it ends without an error."""
    import multiprocessing as mp

    from napkit.verify.parallel import _falsify

    prop = Property(linf_ball([0.1, 0.1], 0.05), robustness_spec(1, 2)).check(tiny_net.layer_sizes, 2, 2)
    q = Query(tiny_net, prop, VerifyOptions(timeout=5.0))
    assert symbolic_bounds(q) is None and not q.open_ids  # bounds alone prove it
    recv, send = mp.Pipe(duplex=False)
    _falsify(q, (), send)  # in this process: an error would raise here
    with pytest.raises(EOFError):  # nothing was sent, and the falsifier closed its end
        recv.recv()


def test_falsifier_rounds_end_at_their_share_of_the_timeout(tiny_net):
    """With ``falsify_share`` 0 the falsifier runs no attack round after its stages, even
    with a disjunct open and time left, so it sends nothing; with the whole timeout its first
    round finds the counterexample of this falsifiable query."""
    import multiprocessing as mp

    from napkit.verify.parallel import _falsify

    prop = Property(domain_box(2), robustness_spec(0, 2)).check(tiny_net.layer_sizes, 2, 2)
    for share, sends in ((0.0, False), (1.0, True)):
        q = Query(tiny_net, prop, VerifyOptions(timeout=30.0, falsify_share=share))
        assert symbolic_bounds(q) is None and q.open_ids  # a disjunct is open
        recv, send = mp.Pipe(duplex=False)
        _falsify(q, (), send)
        got = []
        while recv.poll():
            try:
                got.append(recv.recv())
            except EOFError:
                break
        ces = [x for kind, x in got if kind == "ce"]
        assert bool(ces) == sends
        for x in ces:
            y, _ = tiny_net.forward(np.asarray(x)[None])
            assert prop.output.violated(y)[0]


def test_box_centre_that_follows_the_phases_is_the_witness(tiny_net):
    """A local query's centre that follows the phases strictly is taken as the witness of
    non-emptiness by the first stage (the prover then skips the LP relaxation); one that
    does not follow them is not."""
    x = np.array([0.2, 0.7])
    _, pre = tiny_net.forward(x[None])
    follow = [np.where(z[0] > 0, 1, -1).astype(np.int8) for z in pre]
    for phases, want in ((follow, True), ([-p for p in follow], False)):
        prop = Property(linf_ball(x, 0.01), robustness_spec(0, 2), phases).check(tiny_net.layer_sizes, 2, 2)
        q = Query(tiny_net, prop, VerifyOptions(timeout=5.0))
        symbolic_bounds(q)
        assert (q.witness is not None) == want


def _nap_query(opts: VerifyOptions) -> Query:
    rng = np.random.default_rng(77)
    net = random_net(rng, 3, [12, 12, 10], 3)
    prop = Property(domain_box(3), robustness_spec(0, 3), random_phases(rng, net.layer_sizes, 0.2))
    return Query(net, prop.check(net.layer_sizes, 3, 3), opts)


def test_root_learning_rates_reach_the_optimised_bounds_and_stay_sound():
    """``root_tighten_lr``/``root_rows_lr`` are the optimised bounds' Adam steps: at 0 the
    bounds stay CROWN's start, at the default they move; every bound stays below the
    sampled minimum over the points of the region."""
    lows = {}
    for lr in (0.0, VerifyOptions().root_rows_lr):
        q = _nap_query(VerifyOptions(timeout=30.0, workers=1, root_tighten_lr=lr, root_rows_lr=lr))
        assert symbolic_bounds(q) is None and q.open_ids
        ids = list(q.open_ids)
        assert optimised_bounds(q) is None
        lows[lr] = np.array([float(q.lows[k].max()) for k in ids])
        x = np.random.default_rng(1).random((20000, 3))
        y, pre = q.net.forward(x)
        ok = follows_phases(pre, q.prop.phases)
        for i, k in enumerate(ids):
            c, d = q.spec.disjuncts[k]
            if ok.any():
                assert lows[lr][i] <= ((y[ok] @ c.T - d).max(axis=1)).min() + 1e-9
    assert not np.allclose(*lows.values())


def _stage_passes_option(monkeypatch, owner, attr: str, key: str, default, option: str, stage) -> None:
    """Run ``stage`` with ``option`` True and False: every call of ``owner.attr`` it makes
    gets keyword ``key`` equal to the option (``default`` when the keyword is left out)."""
    asked = []
    real = getattr(owner, attr)

    def spy(*a, **kw):
        asked.append(kw.get(key, default))
        return real(*a, **kw)

    monkeypatch.setattr(owner, attr, spy)
    for flag in (True, False):
        asked.clear()
        q = _nap_query(VerifyOptions(timeout=30.0, workers=1, **{option: flag}))
        assert symbolic_bounds(q) is None and q.open_ids
        stage(q)
        assert asked and set(asked) == {flag}


def test_milp_stage_uses_the_interior_point_method_only_when_asked(monkeypatch):
    from napkit.verify import stages
    from napkit.verify.milp import MilpEncoding

    _stage_passes_option(monkeypatch, MilpEncoding, "solve", "ipm", False, "milp_ipm", stages.milp)


def test_falsifier_process_runs_at_a_lower_priority(tiny_net, tmp_path):
    """``falsifier_nice``: the forked falsifier lowers its own priority by that much (0: not),
    the prover's stays as it was."""
    import os

    prop = Property(domain_box(2), robustness_spec(0, 2)).check(tiny_net.layer_sizes, 2, 2)
    here = os.nice(0)
    for nice in (0, 3):
        out = tmp_path / f"nice{nice}.txt"

        def record(q, out=out):
            out.write_text(str(os.nice(0)))

        q = Query(tiny_net, prop, VerifyOptions(timeout=5.0, falsifier_nice=nice))
        f = Falsifier(q, (record,))
        try:
            f.proc.join(timeout=10.0)
        finally:
            f.close()
        assert int(out.read_text()) == min(here + nice, 19)
    assert os.nice(0) == here
    with pytest.raises(NapkitError, match="falsifier_nice"):
        VerifyOptions(falsifier_nice=-1)


def test_branch_and_bound_keeps_the_best_or_the_last_iterate_as_asked(monkeypatch):
    """``bab_keep_best`` reaches every Adam run of the tree (default: the last iterate)."""
    from napkit.verify import bab, stages

    assert VerifyOptions().bab_keep_best is False
    _stage_passes_option(monkeypatch, bab, "optimise", "keep_best", None, "bab_keep_best", stages.bab)


@pytest.mark.parametrize("seed", range(6))
def test_milp_stage_on_two_processes_answers_as_on_one(seed):
    """The last MILP stage on the bounds alone: dealing the open disjuncts to two processes
    (this one and a forked one) decides as one process does, and a counterexample is a real
    one (re-checked by an exact forward pass)."""
    rng = np.random.default_rng(400 + seed)
    net = random_net(rng, 3, [10, 10], 5)
    box = InputBox(np.zeros(3), np.ones(3))
    label = int(net.forward(box.center[None])[0].argmax())
    prop = Property(box, robustness_spec(label, 5)).check(net.layer_sizes, 3, 5)
    answers = []
    for workers in (1, 2):
        q = Query(net, prop, VerifyOptions(timeout=30.0, workers=workers))
        assert symbolic_bounds(q) is None
        opened = len(q.open_ids)
        res = milp(q)
        answers.append("refuted" if res is None else res.verdict)
        assert q.stats.get("milp_processes", 1) == min(workers, max(opened, 1))
        if answers[-1] == "falsified":
            y = net.forward(res.counterexample[None])[0][0]
            assert y[label] <= np.delete(y, label).max()
    assert answers[0] == answers[1] != "unknown"


def test_milp_seconds_count_every_process(monkeypatch):
    """``milp_s`` adds the HiGHS time of the forked process's disjuncts to this one's: each
    (stubbed) disjunct reports one second, so the total is the number of disjuncts."""
    from napkit.verify.verdict import REFUTED

    def one_second(q, k, time_limit=None, ipm=False):
        time.sleep(0.3)  # long enough for the forked process to take disjuncts too
        q.stats["milp_s"] = q.stats.get("milp_s", 0.0) + 1.0
        return REFUTED, None, ""

    monkeypatch.setattr(Query, "milp_disjunct", one_second)
    rng = np.random.default_rng(7)
    net = random_net(rng, 3, [10, 10], 5)
    prop = Property(InputBox(np.zeros(3), np.ones(3)), robustness_spec(0, 5)).check(net.layer_sizes, 3, 5)
    q = Query(net, prop, VerifyOptions(timeout=30.0, workers=2))
    symbolic_bounds(q)
    q.open_ids = [0, 1, 2, 3]  # the rival classes' disjuncts, whatever the bounds decided
    assert milp(q) is None
    assert q.stats["milp_processes"] == 2
    assert q.stats["milp_s"] == 4.0
    assert sum(int(r.split(":")[0]) >= 0 for r in q.stats["milp_disjuncts"].split()) == 4



@pytest.mark.parametrize("shares", [False, True])
def test_milp_runs_each_disjunct_to_the_end_unless_time_is_shared(monkeypatch, shares):
    """Without ``milp_time_shares`` each disjunct gets all the time left and is asked once (a
    proof needs all of them, and HiGHS restarts from scratch); with it, each gets its share of
    the time left. The order is the bounds': weakest first without shares, strongest with."""
    from napkit.verify.verdict import UNKNOWN

    asked: list[tuple[int, float, float]] = []  # disjunct, time limit, time left when asked

    def runs_out(q, k, time_limit=None, ipm=False):
        asked.append((k, time_limit, q.left()))
        return UNKNOWN, None, "MILP time limit"

    monkeypatch.setattr(Query, "milp_disjunct", runs_out)
    rng = np.random.default_rng(8)
    net = random_net(rng, 3, [10, 10], 5)
    prop = Property(InputBox(np.zeros(3), np.ones(3)), robustness_spec(0, 5)).check(net.layer_sizes, 3, 5)
    opts = VerifyOptions(timeout=30.0, workers=1, milp_time_shares=shares, milp_end_reserve_share=0.01)
    q = Query(net, prop, opts)
    symbolic_bounds(q)
    q.open_ids = [0, 1, 2, 3]
    res = milp(q)
    assert res.verdict == "unknown" and sorted(q.open_ids) == [0, 1, 2, 3]
    bounds = [float(q.lows[k].max()) for k, _, _ in asked[:4]]
    # weakest bound first when each runs to the end (the long ones start first), else strongest
    assert bounds == sorted(bounds, reverse=shares) and len(set(bounds)) > 1
    if not shares:
        assert sorted(k for k, _, _ in asked) == [0, 1, 2, 3]
        # all the time left but the reserve kept for HiGHS's late interrupt checks
        assert all(limit == pytest.approx(left - 0.01 * 30.0, abs=0.05) for _, limit, left in asked)
    else:
        first = asked[:4]
        assert sorted(k for k, _, _ in first) == [0, 1, 2, 3]
        # shares of what is left to the disjuncts not yet taken: 1/4, 1/3, 1/2, all
        ratios = [limit / (left - 0.3) for _, limit, left in first]
        assert ratios == pytest.approx([1 / 4, 1 / 3, 1 / 2, 1], abs=0.01)


def test_milp_without_a_timeout_gives_each_disjunct_unlimited_time(monkeypatch):
    """``timeout=inf``: no reserve is taken from an infinite timeout (inf * share minus inf
    was NaN, and every disjunct got no time)."""
    from napkit.verify.verdict import UNKNOWN

    asked: list[float] = []

    def runs_out(q, k, time_limit=None, ipm=False):
        asked.append(time_limit)
        return UNKNOWN, None, "MILP time limit"

    monkeypatch.setattr(Query, "milp_disjunct", runs_out)
    rng = np.random.default_rng(8)
    net = random_net(rng, 3, [10, 10], 5)
    prop = Property(InputBox(np.zeros(3), np.ones(3)), robustness_spec(0, 5)).check(net.layer_sizes, 3, 5)
    q = Query(net, prop, VerifyOptions(timeout=float("inf"), workers=1))
    symbolic_bounds(q)
    q.open_ids = [0, 1, 2, 3]
    milp(q)
    assert len(asked) == 4 and all(limit == float("inf") for limit in asked), asked


_NUMERIC = [f.name for f in dataclasses.fields(VerifyOptions)
            if f.type in ("float", "int") and f.name != "timeout"]


@pytest.mark.parametrize("name", _NUMERIC)
def test_every_budget_option_refuses_nan_and_negatives(name):
    """Every numeric option (the refinement's and the MILP stage's included) is checked."""
    for bad in (float("nan"), -1.0):
        with pytest.raises(NapkitError, match=name):
            VerifyOptions(**{name: bad})


@pytest.mark.parametrize("name", [n for n in _NUMERIC if n.endswith("_share")])
def test_every_share_option_refuses_more_than_the_budget(name):
    with pytest.raises(NapkitError, match="between 0 and 1"):
        VerifyOptions(**{name: 1.5})

"""NAP queries at depth (``napfalsify.py``): counterexamples from given data, and the MILP
with binaries for the free neurons, on tiny hand-weighted networks whose answer is known,
plus a seeded randomised check against a dense grid."""

import numpy as np
import pytest
from verify_helpers import random_net, random_phases, unit_square_grid

from napkit.network import ReluNetwork
from napkit.verify import (
    InputBox,
    Property,
    check_point,
    domain_box,
    follows_phases,
    robustness_spec,
    verify_property,
)

_ONLY_NAP_MILP = dict(attack=False, patterns=False, optimize=False, bab=False, workers=1,
                      nap_milp_min_unstable=0)


def _step_net() -> ReluNetwork:
    """1 input; z0 = x, z1 = x - 0.7, z2 = -x + 0.2; y0 = relu(z0), y1 = 0.5: class 0 iff x > 0.5."""
    w0 = np.array([[1.0], [1.0], [-1.0]])
    b0 = np.array([0.0, -0.7, 0.2])
    w1 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    b1 = np.array([0.0, 0.5])
    return ReluNetwork((w0, w1), (b0, b1))


def _twin_net(bump: float) -> ReluNetwork:
    """1 input in [-1, 1]; z_a = z_b = x, z_c = 2 - x (always active), z_d = x - 0.9;
    y0 = relu(z_a) + 0.1, y1 = relu(z_b) + bump * relu(z_d): y0 - y1 = 0.1 - bump * relu(x - 0.9).

    The two identical neurons defeat linear bounds (relu(z_a) - relu(z_b) is relaxed to
    at best -0.5 on the box), so only an exact method decides class 0."""
    w0 = np.array([[1.0], [1.0], [-1.0], [1.0]])
    b0 = np.array([0.0, 0.0, 2.0, -0.9])
    w1 = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, bump]])
    b1 = np.array([0.1, 0.0])
    return ReluNetwork((w0, w1), (b0, b1))


_TWIN_PHASES = [np.array([0, 0, 1, 0], np.int8)]
_BOX = InputBox(np.array([-1.0]), np.array([1.0]))


def test_data_follower_that_violates_is_the_counterexample():
    net = _step_net()
    prop = Property(domain_box(1), robustness_spec(0, 2), [np.array([0, 0, -1], np.int8)])  # x >= 0.2
    data = np.array([[0.1], [0.9], [0.3], [0.4]])  # 0.1 does not follow; 0.3 and 0.4 violate
    r = verify_property(net, prop, timeout=10, witness=data, workers=1)
    assert r.verdict == "falsified"
    assert "given data" in r.reason
    assert r.counterexample[0] in (0.3, 0.4) and r.stats["data_index"] in (2, 3)
    assert r.stats["data_followers"] == 3


def test_data_that_does_not_violate_claims_nothing():
    net = _twin_net(bump=0.0)  # y0 - y1 = 0.1 everywhere: class 0 holds
    prop = Property(_BOX, robustness_spec(0, 2), _TWIN_PHASES)
    data = np.array([[-0.5], [0.2], [0.95], [5.0]])  # the last is outside the box
    r = verify_property(net, prop, timeout=10, witness=data, **_ONLY_NAP_MILP)
    assert r.verdict == "verified", r.reason
    assert r.stats["data_followers"] == 3
    assert r.stats["nap_milp_refuted"] == 1 and "free neurons" in r.reason


def test_nap_milp_finds_a_counterexample_the_data_misses():
    net = _twin_net(bump=4.0)  # violated only for x >= 0.925
    prop = Property(_BOX, robustness_spec(0, 2), _TWIN_PHASES)
    data = np.array([[-0.5], [0.2], [0.9]])
    r = verify_property(net, prop, timeout=10, witness=data, **_ONLY_NAP_MILP)
    assert r.verdict == "falsified", r.reason
    assert r.reason == "counterexample found by the NAP MILP"
    assert r.counterexample[0] >= 0.925 - 1e-6
    assert check_point(net, _BOX, prop.output, prop.phases, r.counterexample) is not None


def test_witness_rows_of_the_wrong_size_are_one_clear_error():
    from napkit.errors import NapkitError

    prop = Property(domain_box(1), robustness_spec(0, 2), [np.array([0, 0, -1], np.int8)])
    with pytest.raises(NapkitError, match="witness has 0 values"):
        verify_property(_step_net(), prop, timeout=5, witness=np.zeros((0, 3)), workers=1)
    two_in = ReluNetwork((np.ones((4, 2)), np.ones((2, 4))), (np.zeros(4), np.zeros(2)))
    with pytest.raises(NapkitError, match="rows of the network's 2 inputs"):
        verify_property(two_in, Property(domain_box(2), robustness_spec(0, 2), None), timeout=5,
                        witness=np.zeros(3), workers=1)


def test_given_rows_reach_the_scan_uncopied_and_float32_rows_decide_as_float64(monkeypatch):
    """The rows are not copied before the scan (60000 MNIST rows to float64 took seconds
    outside the scan's budget); it converts a batch at a time, so float32 rows give the
    verdict, counterexample and followers of the same rows in float64."""
    from napkit.verify import engine

    net = _step_net()
    prop = Property(domain_box(1), robustness_spec(0, 2), [np.array([0, 0, -1], np.int8)])
    data = np.array([[0.1], [0.9], [0.3], [0.4]])
    made = []

    class Recorded(engine.Query):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(engine, "Query", Recorded)
    rows = data.astype(np.float32)
    verify_property(net, prop, timeout=10, witness=rows, workers=1)
    assert len(made) == 1 and np.shares_memory(made[0].data, rows)
    monkeypatch.undo()
    wide = verify_property(net, prop, timeout=10, witness=data, workers=1)
    narrow = verify_property(net, prop, timeout=10, witness=data.astype(np.float32), workers=1)
    assert (narrow.verdict, narrow.stats["data_followers"]) == (wide.verdict, wide.stats["data_followers"])
    assert narrow.counterexample.dtype == np.float64
    np.testing.assert_array_equal(narrow.counterexample, np.float32(wide.counterexample[0]))


def test_witness_rows_that_are_not_numbers_are_one_clear_error():
    from napkit.errors import NapkitError

    prop = Property(domain_box(1), robustness_spec(0, 2), [np.array([0, 0, -1], np.int8)])
    with pytest.raises(NapkitError, match="witness rows must be real numbers"):
        verify_property(_step_net(), prop, timeout=5, witness=np.array([["a"], ["b"]]), workers=1)


def test_nap_milp_off_below_its_unstable_threshold():
    net = _twin_net(bump=0.0)
    prop = Property(_BOX, robustness_spec(0, 2), _TWIN_PHASES)
    opts = {**_ONLY_NAP_MILP, "nap_milp_min_unstable": 10}  # the net has 3 unstable neurons
    r = verify_property(net, prop, timeout=10, witness=np.array([[0.2], [0.3]]), **opts)
    assert "nap_milp_refuted" not in r.stats
    assert r.verdict == "verified" and "free neurons" not in r.reason  # the final MILP decides


@pytest.mark.parametrize("seed", range(16))
def test_nap_milp_agrees_with_a_dense_grid(seed):
    """Random 2-input nets and phases on [0, 1]^2: never ``verified`` when a grid point
    follows the phases and violates by a margin; never ``vacuous`` when one follows;
    every counterexample passes the exact re-check."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, [6, 6], 3)
    phases = random_phases(rng, net.layer_sizes, p=0.3)
    grid, y, follow, label = unit_square_grid(net, phases)  # followers keep a margin
    spec = robustness_spec(label, 3)
    box = domain_box(2)
    prop = Property(box, spec, phases)
    r = verify_property(net, prop, timeout=10, witness=rng.random((20, 2)), **_ONLY_NAP_MILP)
    violate = follow & (spec.slack(y).min(1) < -1e-6)
    if r.verdict == "verified":
        assert not violate.any()
    if r.verdict == "vacuous":
        assert not follow.any()
    if r.verdict == "falsified":
        assert check_point(net, box, spec, phases, r.counterexample) is not None
        _, pc = net.forward(r.counterexample[None])
        assert follows_phases(pc, phases)[0]
    assert r.verdict != "unknown", r.reason


class _Clock:
    """A stand-in for ``time.monotonic`` that moves only when told (no wall-clock asserts)."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("seconds_per_batch", [0.0, 1.0])
def test_data_scan_stops_at_its_share_of_the_timeout(monkeypatch, seconds_per_batch):
    """The scan of the given points counts against the query's time: with every batch
    costing a second of a 10 s query, it stops after ``data_share`` of it (5 batches) and
    claims nothing about the rows it did not see; with time to spare it scans them all."""
    from napkit.verify import napfalsify, query
    from napkit.verify.engine import make_options
    from napkit.verify.stages import symbolic_bounds

    clock = _Clock()
    monkeypatch.setattr(napfalsify, "time", clock)
    monkeypatch.setattr(query, "time", clock)
    monkeypatch.setattr(napfalsify, "_BATCH", 4)

    class SlowNet(ReluNetwork):
        def forward(self, x):
            clock.now += seconds_per_batch
            return super().forward(x)

    net = _step_net()
    net = SlowNet(net.weights, net.biases)
    prop = Property(domain_box(1), robustness_spec(0, 2), [np.array([0, 0, -1], np.int8)])  # x >= 0.2
    data = np.vstack([np.full((40, 1), 0.9), [[0.3]]])  # only the last row violates
    q = query.Query(net, prop.check(net.layer_sizes, 1, 2), make_options(timeout=10, data_share=0.5))
    assert symbolic_bounds(q) is None and q.open_ids
    q.data = data
    res = napfalsify.data_points(q)
    if seconds_per_batch:
        assert res is None and q.stats["data_stopped"] == "time budget"
        assert q.stats["data_rows"] == 20 and q.stats["data_followers"] == 20
    else:
        assert res.verdict == "falsified" and q.stats["data_index"] == 40
        assert q.stats["data_rows"] == 41 and "data_stopped" not in q.stats


def test_data_scan_with_no_time_left_reads_no_rows(monkeypatch):
    from napkit.verify import napfalsify, query
    from napkit.verify.engine import make_options
    from napkit.verify.stages import symbolic_bounds

    clock = _Clock()
    monkeypatch.setattr(napfalsify, "time", clock)
    monkeypatch.setattr(query, "time", clock)
    net = _step_net()
    prop = Property(domain_box(1), robustness_spec(0, 2), [np.array([0, 0, -1], np.int8)])
    q = query.Query(net, prop.check(net.layer_sizes, 1, 2), make_options(timeout=3))
    symbolic_bounds(q)
    q.data = np.full((10_000, 1), 0.3)
    clock.now = 3.0  # the bounds took the whole timeout
    assert napfalsify.data_points(q) is None
    assert q.stats["data_stopped"] == "time budget" and "data_rows" not in q.stats
    assert q.stats["data_followers"] == 0

"""Bad input to the patterns room's public functions: one NapkitError naming the problem,
never a numpy error from inside or a silently wrong count."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import random_net
from napkit.errors import NapkitError
from napkit.patterns import (
    NAPMiner,
    NAPMonitor,
    NAPSet,
    delta_sweep,
    mine,
    mine_store,
    nap_stats,
    pack_signs,
    syntactic_disjoint,
    violations_for,
    violations_per_class,
)


@pytest.fixture(scope="module")
def mined():
    net = random_net(2)  # predicts all three classes on these inputs
    x = np.random.default_rng(0).normal(size=(300, 4))
    y = net.predict(x)
    return net, x, y, mine(net, x, y, 0.9, progress=False)


@pytest.mark.parametrize("tolerance", [0.5, float("nan"), -1, "1", True])
def test_monitor_refuses_a_tolerance_that_is_not_a_whole_number(mined, tolerance):
    """NaN compared as 'v <= nan' flagged every input; 0.5 was silently 0."""
    net, x, _, naps = mined
    with pytest.raises(NapkitError, match="tolerance"):
        NAPMonitor(net, tolerance=tolerance).set_naps(naps).predict(x)


@pytest.mark.parametrize("tolerance", [1.5, float("nan")])
def test_nap_stats_refuses_a_fractional_or_nan_tolerance(mined, tolerance):
    net, x, y, naps = mined
    with pytest.raises(NapkitError, match="tolerance"):
        nap_stats(net, naps, x, y, tolerance=tolerance, progress=False)


def test_whole_float_tolerance_is_accepted(mined):
    net, x, y, naps = mined
    assert nap_stats(net, naps, x, y, tolerance=2.0, progress=False).tolerance == 2


def test_a_napset_argument_that_is_not_a_napset_is_named(mined):
    net, x, y, _ = mined
    with pytest.raises(NapkitError, match="NAPSet"):
        nap_stats(net, "naps.json", x, y, progress=False)
    with pytest.raises(NapkitError, match="NAPSet"):
        syntactic_disjoint({"format": "napkit.naps/1"})
    with pytest.raises(NapkitError, match="NAPSet"):
        NAPMonitor(net).set_naps("naps.json")
    with pytest.raises(NapkitError, match="ActivationStore"):
        mine_store("acts.zarr", 0.9)


def test_delta_sweep_needs_both_eval_arrays(mined):
    net, x, y, _ = mined
    with pytest.raises(NapkitError, match="x_eval and y_eval"):
        delta_sweep(net, x, y, [0.9], x_eval=x[:5], progress=False)


def test_monitor_evaluate_refuses_string_labels(mined):
    net, x, y, naps = mined
    with pytest.raises(NapkitError, match="labels"):
        NAPMonitor(net).set_naps(naps).evaluate(x, y.astype(str))


@pytest.mark.parametrize(
    "signs", [np.full((2, 3), np.nan), np.full((2, 3), 0.5), np.array([["a", "b", "c"]])]
)
def test_pack_signs_refuses_values_that_are_not_on_off(signs):
    """NaN, 0.5 and strings all packed as 'on' before."""
    with pytest.raises(NapkitError, match="patterns"):
        pack_signs(signs)


def test_pack_signs_accepts_zero_one_numbers():
    ints = np.array([[1, 0, 1], [0, 0, 1]])
    assert (pack_signs(ints) == pack_signs(ints.astype(bool))).all()


def test_violations_refuse_patterns_of_other_neurons(mined):
    a, d = mined[3].packed()
    wide = pack_signs(np.ones((3, 100), bool))  # two words, the NAPs have one
    with pytest.raises(NapkitError, match="different neurons"):
        violations_per_class(wide, a, d)
    with pytest.raises(NapkitError, match="uint64"):
        violations_per_class(np.zeros(3, np.uint8), a, d)


def test_violations_for_refuses_rows_out_of_range_or_of_the_wrong_length(mined):
    a, d = mined[3].packed()
    packed = pack_signs(np.ones((3, 14), bool))
    with pytest.raises(NapkitError, match="0..2"):
        violations_for(packed, a, d, np.array([0, 1, 9]))
    with pytest.raises(NapkitError, match="one integer NAP row per pattern"):
        violations_for(packed, a, d, np.array([0]))


@pytest.mark.parametrize("value", [5.0, np.nan])
def test_with_phases_refuses_values_other_than_minus_one_zero_one(mined, value):
    naps = mined[3]
    with pytest.raises(NapkitError, match="-1 .* 0 .* \\+1"):
        naps.with_phases(0, [np.full(8, value), np.zeros(6)])
    with pytest.raises(NapkitError, match="-1 .* 0 .* \\+1"):
        naps.with_phases(0, [np.full(8, "a"), np.zeros(6)])


def test_miner_refuses_impossible_sizes():
    with pytest.raises(NapkitError, match="at least one class"):
        NAPMiner(-1, ("a",), (3,), "fp")
    with pytest.raises(NapkitError, match="do not match"):
        NAPMiner(2, ("a", "b"), (3,), "fp")
    with pytest.raises(NapkitError, match="do not match"):
        NAPMiner(2, ("a",), (-3,), "fp")


def test_miner_update_refuses_nan_patterns_and_short_predictions():
    miner = NAPMiner(2, ("a",), (3,), "fp")
    with pytest.raises(NapkitError, match="patterns"):
        miner.update(np.full((1, 3), np.nan), np.array([0]), np.array([0]))
    with pytest.raises(NapkitError, match="1 predictions for 2 labels"):
        miner.update(np.ones((2, 3), bool), np.array([0, 1]), np.array([0]))
    assert miner.totals.sum() == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"active": np.full((1, 3), np.nan)}, "active masks"),
        ({"delta": 5.0}, "δ"),
        ({"delta": "0.9"}, "δ"),
        ({"labels": np.array([-1])}, "class indices"),
        ({"labels": np.array([0.5])}, "class indices"),
    ],
)
def test_napset_refuses_masks_deltas_and_labels_out_of_their_domain(kw, match):
    """All of these made a NAPSet (NaN masks read as 'constrained everywhere')."""
    args = {
        "layer_names": ("a",),
        "layer_sizes": (3,),
        "fingerprint": "fp",
        "delta": 0.9,
        "labels": np.array([0]),
        "active": np.zeros((1, 3), bool),
        "inactive": np.zeros((1, 3), bool),
        "support": np.array([5]),
    }
    with pytest.raises(NapkitError, match=match):
        NAPSet(**{**args, **kw})

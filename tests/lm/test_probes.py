"""Probes: CV accuracy on known data, the control task, the regime and binding probes on the tiny model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napkit.errors import NapkitError
from napkit.lm.experiments import contrast_prompts, probe_binding
from napkit.lm.models import random_init_like
from napkit.lm.probes import (
    C_GRID,
    _control_accuracy,
    control_labels,
    cv_accuracy,
    one_standard_error_choice,
    probe,
    selected_cv_accuracy,
)


def test_cv_accuracy_separable_and_random_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(int)
    assert cv_accuracy(x, y) >= 0.97
    assert cv_accuracy(x, rng.integers(0, 2, 200)) < 0.65
    assert np.isnan(cv_accuracy(x, np.zeros(200, int)))


def test_control_labels_are_a_function_of_the_key_with_task_balance():
    keys = np.repeat(np.arange(50), 4)
    y = np.tile([0, 1], 100)
    c = control_labels(keys, y, seed=3)
    assert all(len(set(c[keys == k])) == 1 for k in range(50))
    assert 0.25 < c.mean() < 0.75
    assert np.array_equal(c, control_labels(keys, y, seed=3))


def test_control_accuracy_is_the_mean_over_label_draws():
    rng = np.random.default_rng(1)
    keys = np.repeat(np.arange(16), 12)
    y = (keys < 8).astype(int)
    x = rng.normal(size=(len(keys), 6)) + np.eye(16)[keys][:, :6]  # reads six keys' identity
    each = [cv_accuracy(x, control_labels(keys, y, 4 + d), seed=4) for d in range(3)]
    assert _control_accuracy(x, keys, y, 5, 4, 3) == pytest.approx(np.mean(each))
    assert _control_accuracy(x, keys, y, 5, 4, 1) == pytest.approx(each[0])
    assert len(set(np.round(each, 6))) > 1  # the draws differ, so averaging them changes the figure


def test_no_control_draws_fit_no_control_and_keep_the_accuracies(tiny):
    prompts, regimes, cues = contrast_prompts(40)
    args = (tiny, prompts, regimes, ["blocks.1.hook_resid_post"], [7, 9])
    full = probe(*args, control_keys=cues)
    bare = probe(*args, control_keys=cues, control_draws=0)
    assert np.isfinite(full.control).all() and np.isnan(bare.control).all()
    np.testing.assert_array_equal(full.accuracy, bare.accuracy)


def test_a_probe_with_one_class_is_refused(tiny):
    with pytest.raises(NapkitError, match="two classes"):
        probe(tiny, ["alice lives in paris ."] * 4, [1, 1, 1, 1], ["blocks.0.hook_resid_post"], [1])
    with pytest.raises(NapkitError, match="labels"):
        probe(tiny, ["alice lives in paris ."] * 4, [1, 0], ["blocks.0.hook_resid_post"], [1])
    with pytest.raises(NapkitError, match="control_draws"):
        texts = ["alice lives in paris ."] * 4
        probe(tiny, texts, [1, 0, 1, 0], ["blocks.0.hook_resid_post"], [1], control_draws=-1)


def test_regime_probe_is_accurate_selective_and_beats_random_init(tiny):
    prompts, regimes, cues = contrast_prompts(200)
    sites = [f"blocks.{i}.hook_resid_post" for i in range(4)]
    positions = [7, 9]  # "so" and the last token "was", after the cue word (position 2)
    trained = probe(tiny, prompts, regimes, sites, positions, control_keys=cues)
    fresh = probe(random_init_like(tiny), prompts, regimes, sites, positions, control_keys=cues)
    assert trained.best_acc >= 0.95
    # §5's 0.3: averaged over the control draws (16 cue words) the shipped model gives 0.346
    # (single draws 0.28-0.39; benchmarks/results/lm_probes.md)
    assert trained.max_selectivity >= 0.3, trained.to_dict()
    # the random-init model's control accuracy stays high (it reads the cue word's identity),
    # so the trained model's selectivity must exceed the random-init one's
    assert trained.max_selectivity - fresh.max_selectivity >= 0.2, (trained.to_dict(), fresh.to_dict())


@pytest.fixture(scope="module")
def binding_probe(tiny):
    return probe_binding(tiny)


def test_binding_probe_reads_the_bound_colour_which_random_init_cannot(binding_probe):
    """The colour bound to the queried variable is computed, not read off one token: the
    trained model holds it at the last position, the random-init model does not, and the
    probe beats the control task (colour pairs mapped to random colours) there."""
    res = binding_probe
    assert res["probe_best_acc"] >= 0.95, res
    assert res["probe_best_acc"] - res["probe_random_init_best_acc"] >= 0.2, res
    assert res["probe_selectivity"] > 0, res


def test_binding_probe_selectivity_reaches_the_issue_target(binding_probe):
    # §5's 0.3 at the best site; with C = 1 alone the shipped model gives 0.14 there
    # (benchmarks/results/lm_probes.md, lm_probe_capacity.py)
    assert binding_probe["probe_selectivity"] >= 0.3, binding_probe
    assert binding_probe["probe_best_c"] in C_GRID


def test_binding_probe_with_the_default_strength_alone_is_less_selective(tiny, binding_probe):
    """The capacity choice is what separates the task from the control: forcing C = 1 at the
    same site keeps the accuracy and lets the control task catch up."""
    plain = probe_binding(tiny, c_grid=(1.0,))
    assert plain["probe_best_site"] == binding_probe["probe_best_site"]
    assert plain["probe_best_acc"] >= 0.95
    assert plain["probe_selectivity"] < binding_probe["probe_selectivity"], (plain, binding_probe)


def test_one_standard_error_rule_picks_the_strongest_probe_near_the_best():
    grid = (1.0, 0.1, 0.01, 0.001)
    tied = np.ones((4, 5))
    assert one_standard_error_choice(grid, tied) == 3  # all equal: the strongest regularisation
    # best is C = 0.1 (mean 0.9, SE 0.0707/√5 ≈ 0.0316); C = 0.01 at 0.87 is within, 0.001 at 0.8 is not
    scores = np.array(
        [[0.8] * 5, [0.8, 0.9, 1.0, 0.9, 0.9], [0.87] * 5, [0.8] * 5]
    )
    assert scores[1].std(ddof=1) / np.sqrt(5) == pytest.approx(0.0316, abs=1e-3)
    assert one_standard_error_choice(grid, scores) == 2
    scores[2] = 0.82  # now outside one SE of the best: the best itself
    assert one_standard_error_choice(grid, scores) == 1
    # the grid's order does not matter: the smallest c near the best wins
    assert one_standard_error_choice(grid[::-1], tied) == 0


def test_the_choice_does_not_depend_on_the_grids_order():
    """Two strengths share the best mean (0.9) with different fold spreads: the bar is set by
    the larger standard error, whichever of them comes first."""
    grid = (1.0, 0.1, 0.01)
    scores = np.array([[0.9] * 5, [0.8, 0.9, 1.0, 0.9, 0.9], [0.87] * 5])
    for perm in itertools.permutations(range(3)):
        g = tuple(grid[i] for i in perm)
        assert g[one_standard_error_choice(g, scores[list(perm)])] == 0.01


def test_a_failed_fold_is_an_error_not_a_choice():
    with pytest.raises(NapkitError, match="fold failed"):
        one_standard_error_choice((1.0, 0.1), np.array([[0.9, np.nan], [0.8, 0.8]]))
    with pytest.raises(NapkitError, match="len\\(grid\\)"):
        one_standard_error_choice((1.0, 0.1), np.ones((3, 5)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=1, max_size=5))
def test_one_standard_error_choice_is_near_the_best_and_no_smaller_c_is(rows):
    scores = np.array(rows)
    grid = tuple(10.0**-i for i in range(len(rows)))
    k = one_standard_error_choice(grid, scores)
    mean = scores.mean(1)
    best = int(np.argmax(mean))
    se = scores[best].std(ddof=1) / np.sqrt(3)
    assert mean[k] >= mean[best] - se - 1e-9
    assert all(mean[i] < mean[best] - se + 1e-9 for i in range(len(rows)) if grid[i] < grid[k])


def test_selected_accuracy_with_a_one_entry_grid_is_the_plain_accuracy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 8))
    y = (x[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int)
    assert selected_cv_accuracy(x, y, c_grid=(0.01,)) == (pytest.approx(cv_accuracy(x, y, c=0.01)), 0.01)
    acc, c = selected_cv_accuracy(x, y)
    assert c in C_GRID and acc == pytest.approx(cv_accuracy(x, y, c=c))


def test_strong_regularisation_stops_a_probe_memorising_keys_but_keeps_a_shared_direction():
    """Hewitt & Liang's point on synthetic data: 80 keys with random identities in 64 dims and
    the label along one shared direction. Every strength reads the task; C = 1 also memorises
    the control task's per-key labels, and the one-SE choice (the strongest) loses most of it."""
    rng = np.random.default_rng(3)
    keys = np.repeat(np.arange(80), 4)
    y = (keys % 2).astype(int)
    x = rng.normal(size=(80, 64))[keys] + 0.3 * rng.normal(size=(len(keys), 64))
    u = rng.normal(size=64)
    x += 3.0 * np.outer(2 * y - 1, u / np.linalg.norm(u))
    acc, c = selected_cv_accuracy(x, y)
    assert acc >= 0.95 and c == min(C_GRID)
    ctl_plain = _control_accuracy(x, keys, y, 5, 0, 5, 1.0)
    ctl_chosen = _control_accuracy(x, keys, y, 5, 0, 5, c)
    assert ctl_plain - ctl_chosen >= 0.1, (ctl_plain, ctl_chosen)


def test_a_bad_strength_grid_is_refused(tiny):
    texts = ["alice lives in paris ."] * 4
    for grid in [(), (0.0,), (1.0, float("nan")), (-1.0,)]:
        with pytest.raises(NapkitError, match="c_grid"):
            probe(tiny, texts, [1, 0, 1, 0], ["blocks.0.hook_resid_post"], [1], c_grid=grid)

"""Probes: CV accuracy on known data, the control task, the regime and binding probes on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.lm.experiments import contrast_prompts, probe_binding
from napkit.lm.models import random_init_like
from napkit.lm.probes import _control_accuracy, control_labels, cv_accuracy, probe


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


@pytest.mark.xfail(
    reason="issue 11 §5 target not met by the shipped model: its last position also holds both "
    "colours of the prompt, so the control task scores 0.86 there and the selectivity is 0.14 "
    "(the earlier reference: 0.44); strict, so a model that meets it turns this red",
    strict=True,
)
def test_binding_probe_selectivity_reaches_the_issue_target(binding_probe):
    assert binding_probe["probe_selectivity"] >= 0.3, binding_probe

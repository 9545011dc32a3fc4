"""Steering: bitwise α = 0, KL bisection or an explicit failure, controls, cached generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napkit.errors import NapkitError
from napkit.lm.experiments import contrast_pair_prompts, contrast_prompts, steer_regime
from napkit.lm.regime_steering import SELECT_SEED
from napkit.lm.steering import (
    SteeringEffect,
    UnreachableKL,
    alpha_for_kl,
    generate,
    mean_difference,
    next_token_logprobs,
    position_deltas,
    random_controls,
    steering,
)

SITE = "blocks.2.hook_resid_post"


@pytest.fixture(scope="module")
def regime(tiny):
    prompts, regimes, _ = contrast_prompts(60)
    pos = [p for p, r in zip(prompts, regimes, strict=True) if r == 0]
    neg = [p for p, r in zip(prompts, regimes, strict=True) if r == 1]
    return pos, neg, mean_difference(tiny, pos, neg, SITE)


def test_alpha_zero_is_bitwise_identical_to_no_hook(tiny, regime):
    pos, _, v = regime
    assert torch.equal(
        next_token_logprobs(tiny, pos, [steering(SITE, v, 0.0)]), next_token_logprobs(tiny, pos)
    )


@pytest.mark.parametrize("target", [0.25, 0.5, 3.0])
def test_bisection_lands_within_five_percent_of_the_kl_target(tiny, regime, target):
    pos, _, v = regime
    found = alpha_for_kl(tiny, pos, SITE, v, target)
    assert abs(found.kl - target) <= 0.05 * target and found.alpha > 0


def test_an_unreachable_kl_is_reported_not_bounded(tiny, regime):
    pos, _, v = regime
    with pytest.raises(UnreachableKL, match="unreachable") as err:
        alpha_for_kl(tiny, pos, SITE, v * 1e-3, 3.0, alpha_max=8.0)
    assert err.value.reached < 3.0 and err.value.alpha == 8.0
    with pytest.raises(NapkitError, match="positive number"):
        alpha_for_kl(tiny, pos, SITE, v, float("nan"))


def test_random_controls_have_the_vectors_norm_and_differ():
    v = torch.tensor([3.0, 4.0, 0.0, 0.0])
    r = random_controls(v, 20, seed=1)
    torch.testing.assert_close(r.norm(dim=1), torch.full((20,), 5.0))
    assert torch.equal(r, random_controls(v, 20, seed=1)) and not torch.equal(
        r, random_controls(v, 20, seed=2)
    )
    assert (r @ v / 25).abs().max() < 0.99  # not the vector itself


@pytest.mark.parametrize("site", [SITE, "blocks.2.hook_resid_mid"])  # resid_mid: two hooks per write
def test_steering_in_cached_generation_matches_uncached(tiny, regime, site):
    pos, _, v = regime
    iv = [steering(site, v, alpha_for_kl(tiny, pos, site, v, 3.0).alpha)]
    cached = generate(tiny, pos[0], iv, max_new_tokens=4)
    plain = generate(tiny, pos[0], iv, max_new_tokens=4, use_cache=False)
    assert torch.equal(cached, plain)
    unsteered = generate(tiny, pos[0], max_new_tokens=4)
    assert tiny.tokenizer.decode(unsteered[:1]) == "good"  # regime 0 ends "so it was good"
    assert tiny.tokenizer.decode(cached[:1]) != "good"  # the steering changes the continuation


def test_per_position_deltas_need_one_length(tiny, regime):
    pos, neg, v = regime
    d = position_deltas(tiny, pos[:10], neg[:10], SITE)
    assert d.shape == (len(tiny.tokenizer(pos[0])["input_ids"]), tiny.model.config.n_embd)
    torch.testing.assert_close(d[-1], mean_difference(tiny, pos[:10], neg[:10], SITE))
    with pytest.raises(NapkitError, match="one token length"):
        position_deltas(tiny, ["alice lives in paris ."], ["the big cat sees a dog ."], SITE)


def test_site_selection_and_the_reported_ratio_use_disjoint_prompts():
    train = set(contrast_prompts(200)[0])
    select = set(contrast_pair_prompts(25, SELECT_SEED))
    held_out = set(contrast_pair_prompts(50))
    assert len(train) == 200 and len(select) == 50 and len(held_out) == 100
    assert not (train & held_out) and not (select & held_out)


def test_difference_of_means_beats_random_controls_at_equal_kl_and_reverses(tiny):
    """The issue's >= 5x at KL 3 (layer and position rule chosen on training prompts, the ratio
    on a balanced held-out contrast set); at KL 0.25 and 0.5 the shipped model gives 4.66x and
    4.90x, as the unembedding reference direction does there (4.70x, 4.94x;
    benchmarks/results/lm_steer_select.md); KL-aware gradient directions, which are no
    difference of means, reach 5.05-5.78x at 0.5 (benchmarks/results/lm_steer_gradient.md)."""
    res = steer_regime(tiny, kl=3.0, n_random=20)
    best = next(iter(res["steer_selection_train_ratio"]))
    assert best == f"L{res['steer_site'].split('.')[1]} {res['steer_take']}->{res['steer_add']}"
    assert abs(res["steer_kl_reached"] - 3.0) <= 0.15
    assert res["steer_effect"] > 0 > res["steer_reversed_effect"]  # towards "bad", and back
    assert res["steer_random_unreached"] == 0
    assert res["steer_effect_ratio"] >= 5, res
    lo, hi = res["steer_effect_ratio_interval"]
    assert lo < hi  # twenty distinct controls: another draw would give another median
    assert lo <= res["steer_effect_ratio"] <= hi


def _effect(effect: float, randoms) -> SteeringEffect:
    return SteeringEffect(1.0, 0.5, effect, -effect, list(randoms), 0)


def test_ratio_interval_collapses_when_every_control_agrees():
    e = _effect(6.0, [2.0] * 20)
    assert e.ratio == 3.0 and e.ratio_interval() == (3.0, 3.0)


@settings(max_examples=40, deadline=None)
@given(
    st.floats(0.1, 50.0),
    st.lists(st.floats(0.01, 10.0), min_size=3, max_size=30),
    st.floats(0.5, 0.95),
)
def test_ratio_interval_lies_within_the_controls_range_and_widens_with_its_level(effect, randoms, level):
    e = _effect(effect, randoms)
    lo, hi = e.ratio_interval(level)
    assert effect / max(randoms) - 1e-9 <= lo <= hi <= effect / min(randoms) + 1e-9
    wide = e.ratio_interval(min(0.99, level + 0.04))
    assert wide[0] <= lo + 1e-12 and wide[1] >= hi - 1e-12  # same resamples, wider percentiles
    assert e.ratio_interval(level) == (lo, hi)  # seeded


def test_ratio_interval_matches_a_loop_over_resamples():
    rng = np.random.default_rng(5)
    randoms = rng.gamma(2.0, 1.0, 20)
    e = _effect(8.0, randoms)
    idx = np.random.default_rng(0).integers(0, 20, size=(500, 20))
    ratios = [8.0 / np.median(randoms[row]) for row in idx]
    assert e.ratio_interval(0.8, draws=500) == pytest.approx(tuple(np.percentile(ratios, [10, 90])))


def test_ratio_interval_refuses_a_level_outside_zero_one():
    with pytest.raises(NapkitError, match="level"):
        _effect(1.0, [1.0, 2.0]).ratio_interval(1.0)


def test_steering_effect_needs_at_least_one_random_control(tiny):
    from napkit.lm.steering import steering_effect

    v = torch.zeros(tiny.model.config.n_embd)
    with pytest.raises(NapkitError, match="at least one random control"):
        steering_effect(tiny, ["the cat"], "blocks.0.hook_resid_post", v, "good", "bad", 0.5, n_random=0)

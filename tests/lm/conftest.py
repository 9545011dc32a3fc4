"""LM tests run with sockets forbidden: no code path may contact a model hub."""

from __future__ import annotations

import pytest

from helpers import forbid_network


@pytest.fixture(autouse=True)
def no_network():
    """Every test under tests/lm/ fails if anything opens a socket (per test, so the rest of
    the suite, dask clusters and Chromium among it, keeps its sockets)."""
    with forbid_network():
        yield


@pytest.fixture(scope="session")
def tiny():
    """The committed reference tiny model (loaded once per test session, without network)."""
    from napkit.lm.models import load_tiny

    with forbid_network():
        return load_tiny()


# --- analysis-method fixtures: tiny random GPT-2s, one torch thread ---
import torch  # noqa: E402

torch.set_num_threads(1)  # two cores shared by many jobs: torch threads collapse under load


def random_gpt2(seed: int = 0, n_layer: int = 2, vocab: int = 40, d_model: int = 32):
    """A tiny randomly initialised GPT-2 with ReLU MLPs, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=n_layer, n_embd=d_model, n_head=4, n_inner=4 * d_model, activation_function="relu",
        vocab_size=vocab, n_positions=32, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(cfg).eval()


def random_llama(seed: int = 0, n_layer: int = 2):
    """A tiny randomly initialised Llama (grouped-query attention, rotary, gated SiLU MLP,
    RMSNorm), in eval mode: the SmolLM2 family's layout at toy size."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=n_layer,
        num_attention_heads=4, num_key_value_heads=2, bos_token_id=0, eos_token_id=0,
        max_position_embeddings=64,
    )  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def make_llama():
    """The factory of tiny random Llamas (seed, n_layer)."""
    return random_llama


@pytest.fixture
def tiny_gpt2():
    return random_gpt2()


@pytest.fixture
def other_gpt2():
    return random_gpt2(seed=1)


@pytest.fixture
def make_gpt2():
    """The factory of tiny random GPT-2s (seed, n_layer, vocab, d_model)."""
    return random_gpt2

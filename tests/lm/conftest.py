"""LM tests: one torch thread (two cores shared by many jobs: threads collapse under load)."""

import pytest
import torch

torch.set_num_threads(1)


def random_gpt2(seed: int = 0, n_layer: int = 2, vocab: int = 40, d_model: int = 32):
    """A tiny randomly initialised GPT-2 with ReLU MLPs, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=n_layer, n_embd=d_model, n_head=4, n_inner=4 * d_model, activation_function="relu",
        vocab_size=vocab, n_positions=32, bos_token_id=0, eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg).eval()


@pytest.fixture
def tiny_gpt2():
    return random_gpt2()


@pytest.fixture
def other_gpt2():
    return random_gpt2(seed=1)

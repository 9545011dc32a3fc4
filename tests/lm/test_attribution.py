"""Direct logit attribution: the terms sum to the logit difference; output nodes; attention plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.attribution import (
    attention_patterns,
    direct_logit_attribution,
    output_node_recovery,
    output_nodes,
    plot_attention,
)
from napkit.lm.patching import Site

GEN = torch.Generator().manual_seed(3)
IDS = torch.randint(0, 40, (5, 8), generator=GEN)
MASK = torch.ones_like(IDS)
MASK[1, 6:] = 0  # right padding: prompt 1 ends at position 5
CORRECT = torch.randint(0, 40, (5,), generator=GEN)
WRONG = (CORRECT + 3) % 40


def test_dla_terms_sum_to_the_logit_difference(tiny_gpt2):
    with torch.no_grad():  # make the biases matter
        for p in tiny_gpt2.parameters():
            if p.ndim == 1:
                p.add_(0.3 * torch.randn(p.shape, generator=GEN))
    dla = direct_logit_attribution(tiny_gpt2, IDS, CORRECT, WRONG, MASK)
    assert dla.heads.shape == (5, 2, 4) and dla.mlps.shape == (5, 2) and dla.attn_bias.shape == (5, 2)
    assert dla.sum_error() <= 1e-4
    with torch.no_grad():
        logits = tiny_gpt2(IDS, attention_mask=MASK).logits
    ld1 = logits[1, 5, CORRECT[1]] - logits[1, 5, WRONG[1]]  # read at the last real token
    assert abs(dla.logit_diff[1] - float(ld1)) < 1e-5
    assert np.abs(dla.final_bias).max() > 0 and np.abs(dla.attn_bias).max() > 0


@torch.no_grad()
def test_dla_of_a_head_recomputed_by_hand(tiny_gpt2):
    """Head (1, 2): its z slice times its rows of W_O, through the frozen final norm, onto W_U."""
    dla = direct_logit_attribution(tiny_gpt2, IDS, CORRECT, WRONG)
    scale = {}
    norm = tiny_gpt2.transformer.ln_f
    h = norm.register_forward_pre_hook(lambda m, a: scale.__setitem__("x", a[0]))
    with torch.no_grad():
        tiny_gpt2(IDS)
    h.remove()
    x = scale["x"][:, -1].double()
    z_capture = {}
    h = tiny_gpt2.transformer.h[1].attn.c_proj.register_forward_pre_hook(
        lambda m, a: z_capture.__setitem__("z", a[0])
    )
    with torch.no_grad():
        tiny_gpt2(IDS)
    h.remove()
    w = tiny_gpt2.transformer.h[1].attn.c_proj.weight.double()[16:24]
    head_out = z_capture["z"][:, -1, 16:24].double() @ w
    sigma = torch.sqrt(x.var(-1, unbiased=False) + norm.eps)
    normed = (head_out - head_out.mean(-1, keepdim=True)) / sigma[:, None] * norm.weight.double()
    u = tiny_gpt2.lm_head.weight.double()[CORRECT] - tiny_gpt2.lm_head.weight.double()[WRONG]
    np.testing.assert_allclose(dla.heads[:, 1, 2], (normed * u).sum(-1).numpy(), atol=1e-9)


def test_dla_on_a_llama_style_model(make_llama):
    model = make_llama()
    with torch.no_grad():  # RMSNorm weights away from 1, as in a trained model
        for p in model.parameters():
            if p.ndim == 1:
                p.mul_(torch.empty(p.shape).uniform_(0.5, 2.0, generator=GEN))
    dla = direct_logit_attribution(model, IDS, CORRECT, WRONG, MASK)
    assert dla.sum_error() <= 1e-4 and np.all(dla.final_bias == 0)
    with torch.no_grad():
        logits = model(IDS, attention_mask=MASK).logits
    assert abs(dla.logit_diff[1] - float(logits[1, 5, CORRECT[1]] - logits[1, 5, WRONG[1]])) < 1e-5


def test_output_nodes_and_recovery(tiny_gpt2):
    dla = direct_logit_attribution(tiny_gpt2, IDS, CORRECT, WRONG)
    nodes = output_nodes(dla, 3)
    means = {**{("head", a, b): dla.heads[:, a, b].mean() for a in range(2) for b in range(4)},
             **{("mlp", a, None): dla.mlps[:, a].mean() for a in range(2)}}  # fmt: skip
    best = sorted(means, key=lambda key: -means[key])[:3]
    assert [(s.component, s.layer, s.index) for s in nodes] == best
    corrupted = IDS.clone()
    corrupted[:, 0] = (IDS[:, 0] + 1) % 40
    all_nodes = [Site("head", a, b) for a in range(2) for b in range(4)] + [Site("mlp", a) for a in range(2)]
    r_all = output_node_recovery(tiny_gpt2, IDS, corrupted, CORRECT, WRONG, all_nodes)
    r_last = output_node_recovery(tiny_gpt2, IDS, corrupted, CORRECT, WRONG, [Site("resid_pre", 2)])
    assert r_last == 1.0 and np.isfinite(r_all)
    with pytest.raises(NapkitError, match="k .--top. must lie in"):
        output_nodes(dla, 11)


def test_attention_patterns_and_plot(tiny_gpt2, tmp_path):
    pats = attention_patterns(tiny_gpt2, IDS, MASK)
    assert pats.shape == (2, 5, 4, 8, 8)
    torch.testing.assert_close(pats.sum(-1), torch.ones(2, 5, 4, 8))
    assert torch.all(pats.triu(1) == 0)  # causal
    assert tiny_gpt2.config._attn_implementation == "sdpa"  # restored
    out = plot_attention(pats[0, 0], [f"t{i}" for i in range(8)], tmp_path / "attn.png", title="layer 0")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(NapkitError, match="tokens"):
        plot_attention(pats[0, 0], ["a"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_bad_answers_refused(tiny_gpt2):
    with pytest.raises(NapkitError, match="one correct and one wrong"):
        direct_logit_attribution(tiny_gpt2, IDS, CORRECT[:2], WRONG[:2])


def test_rotary_models_take_prompts_past_their_nominal_context(make_llama, tiny_gpt2):
    """Only learned absolute positions (GPT-2's n_positions) end the context; a rotary model's
    max_position_embeddings (64 here) is nominal, so 70 tokens are attributed, not refused."""
    ids = torch.randint(1, 40, (1, 70), generator=GEN)
    one = torch.tensor([1])
    dla = direct_logit_attribution(make_llama(), ids, one, one + 1)
    assert dla.sum_error() <= 1e-4
    with pytest.raises(NapkitError, match="exceed the model's context of 32"):
        direct_logit_attribution(tiny_gpt2, ids, one, one + 1)

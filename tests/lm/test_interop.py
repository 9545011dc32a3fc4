"""Interop with TransformerLens (the bench-lm extra): capture by alias equals TL's cache.

Skipped, with the reason, when transformer-lens is not installed (it is not a dependency:
napkit's library code never imports it).
"""

from __future__ import annotations

import numpy as np
import pytest

from napkit.lm.capture import capture


def test_alias_capture_equals_transformer_lens_cache(tiny):
    tl = pytest.importorskip("transformer_lens", reason="transformer-lens is in the bench-lm extra only")
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    c = tiny.model.config
    cfg = tl.HookedTransformerConfig(
        n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head, d_mlp=c.n_inner,
        n_ctx=c.n_positions, d_vocab=c.vocab_size, act_fn="relu", normalization_type="LN",
    )  # fmt: skip
    model = tl.HookedTransformer(cfg)
    model.load_state_dict(convert_gpt2_weights(tiny.model, cfg), strict=False)
    model.eval()
    texts = ["alice lives in paris .", "A is red and B is blue so A is red ."]
    names = [
        "blocks.1.hook_resid_pre",
        "blocks.2.hook_resid_mid",
        "blocks.3.mlp.hook_post",
        "blocks.0.attn.hook_z",
    ]
    got = capture(tiny, texts, names)
    for s, text in enumerate(texts):
        ids = tiny.tokenizer(text, return_tensors="pt")["input_ids"]
        _, cache = model.run_with_cache(ids)
        for name in names:
            want = cache[name][0].reshape(ids.shape[1], -1).numpy()
            np.testing.assert_allclose(got.acts[name][got.sequence == s], want, atol=1e-4)

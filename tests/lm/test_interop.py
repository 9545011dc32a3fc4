"""Interop with the LM field's tools (the bench-lm extra): TransformerLens and SAELens.

- capture by TL-style alias on the HF tiny model equals TransformerLens's ``run_with_cache``
  on the same weights (≤1e-4), padded sequences included;
- a write by alias (add, replace, ablate, project_out, with positions) on the HF tiny model
  changes the logits as TL's hook of that name does;
- the same two checks on a tiny random Llama (GQA, rotary, gated MLP, RMSNorm) against TL's
  Llama conversion of its weights;
- direct logit attribution per head and MLP equals TL's stacked components through the final norm;
- a HookedTransformer loaded through ``napkit.lm.models.load`` is captured by its own hook
  names, and the rows equal ``run_with_cache``;
- SAEs written by ``napkit.lm.sae_files`` load in SAELens and encode/decode as napkit's.

Every test is skipped, with the reason, when the anchor is not installed (they are not
dependencies: napkit's library code never imports them). No test downloads: the TL model
is built from the committed tiny model's weights or a seeded random Llama.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napkit.lm.capture import capture
from napkit.lm.models import load

TEXTS = ["alice lives in paris .", "A is red and B is blue so A is red ."]  # lengths differ: padding
ATOL = 1e-4
RTOL = 1e-5  # the last residual stream reaches |x| ≈ 50: TL's einsums round there at ~50 float32 ulp


def hooked_tiny(tiny):
    """The tiny GPT-2 as a TransformerLens HookedTransformer with the same weights (no hub)."""
    tl = pytest.importorskip("transformer_lens", reason="transformer-lens is in the bench-lm extra only")
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    c = tiny.model.config
    cfg = tl.HookedTransformerConfig(
        n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head, d_mlp=c.n_inner,
        n_ctx=c.n_positions, d_vocab=c.vocab_size, act_fn="relu", normalization_type="LN",
        eps=c.layer_norm_epsilon,
    )  # fmt: skip
    with pytest.warns(DeprecationWarning):  # TL 3.x announces HookedTransformer's removal in 4.0
        model = tl.HookedTransformer(cfg)
    missing, unexpected = model.load_state_dict(convert_gpt2_weights(tiny.model, cfg), strict=False)
    # only TL's causal-mask buffers and the unembedding bias (GPT-2 has none: TL's stays zero)
    assert not unexpected
    assert all(k.endswith((".mask", ".IGNORE")) or k == "unembed.b_U" for k in missing), missing
    return model.eval()


def tl_cache(model, tiny, text: str):
    ids = tiny.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        _, cache = model.run_with_cache(ids)
    return ids.shape[1], cache


def tl_rows(cache, name: str, n: int) -> np.ndarray:
    """TL's activation as napkit rows: (positions, width); patterns as query × (heads · key)."""
    value = cache[name][0]
    if name.endswith("hook_pattern"):
        value = value.permute(1, 0, 2)  # (heads, q, k) -> (q, heads, k)
    return value.reshape(n, -1).numpy()


ALIASES = [
    "blocks.0.hook_resid_pre",
    "blocks.1.hook_resid_pre",
    "blocks.2.hook_resid_mid",
    "blocks.3.hook_resid_post",
    "blocks.1.mlp.hook_pre",
    "blocks.3.mlp.hook_post",
    "blocks.0.attn.hook_z",
    "blocks.2.attn.hook_pattern",
    "blocks.1.hook_attn_out",
    "blocks.2.hook_mlp_out",
    "ln_final.hook_normalized",
]


def test_alias_capture_on_hf_model_equals_transformer_lens_cache(tiny):
    model = hooked_tiny(tiny)
    got = capture(tiny, TEXTS, ALIASES)
    for s, text in enumerate(TEXTS):
        n, cache = tl_cache(model, tiny, text)
        assert (got.sequence == s).sum() == n
        for name in ALIASES:
            mine = got.acts[name][got.sequence == s]
            if name.endswith("hook_pattern"):  # napkit pads keys to the batch width
                mine = mine.reshape(n, 4, -1)[:, :, :n].reshape(n, -1)
            np.testing.assert_allclose(mine, tl_rows(cache, name, n), atol=ATOL, rtol=RTOL, err_msg=name)


WRITE_OPS = ["add", "replace", "ablate", "project_out"]
WRITE_ALIASES = [n for n in ALIASES if not n.endswith(("hook_pattern", "hook_normalized"))]


@pytest.mark.parametrize("op", WRITE_OPS)
@pytest.mark.parametrize("name", WRITE_ALIASES)
def test_writing_at_an_alias_on_hf_model_equals_transformer_lens_hook(tiny, name, op):
    """A write by alias changes what TL's hook of that name changes (resid_mid: the residual
    stream, not only the MLP's input)."""
    ids = tiny.tokenizer(TEXTS[1], return_tensors="pt")["input_ids"]
    assert_same_write(tiny, hooked_tiny(tiny), ids, name, op)


def _tl_write(op: str, v: torch.Tensor, positions):
    """TL's hook doing what napkit's ``op`` does: on rows flattened over heads, at positions."""

    def hook(value, hook):
        flat = value.reshape(*value.shape[:2], -1).clone()
        at = slice(None) if positions is None else [p % flat.shape[1] for p in positions]
        if op == "add":
            flat[:, at] += 0.5 * v
        elif op == "replace":
            flat[:, at] = v
        elif op == "ablate":
            flat[:, at] = 0
        else:
            u = v / v.norm()
            flat[:, at] -= (flat[:, at] @ u)[..., None] * u
        return flat.reshape(value.shape)

    return hook


def assert_same_write(lm, model, ids: torch.Tensor, name: str, op: str = "add") -> None:
    """napkit's ``op`` at alias ``name`` of the HF model gives the logits of TL's hook there
    (add: 0.5·v everywhere; replace: v at two positions; ablate: one position; project_out)."""
    from napkit.lm.interventions import Intervention, applied

    rows = capture(lm, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, [name]).acts[name]
    v = torch.randn(rows.shape[1], generator=torch.Generator().manual_seed(0))
    positions = {"add": None, "replace": [2, -1], "ablate": [1], "project_out": None}[op]
    iv = Intervention(name, op, None if op == "ablate" else v, 0.5, positions=positions)
    with torch.no_grad():
        want = model.run_with_hooks(ids, fwd_hooks=[(name, _tl_write(op, v, positions))])
        with applied(lm, [iv]):
            got = lm.model(input_ids=ids).logits
        assert not torch.allclose(want, model(ids), atol=1e-3), (name, op)
    torch.testing.assert_close(got, want, atol=ATOL * 10, rtol=RTOL * 10)


def test_direct_logit_attribution_per_head_equals_transformer_lens_stack(tiny):
    """napkit's per-head and per-MLP terms equal TL's ``stack_head_results`` and MLP outputs,
    each passed through the final LayerNorm at its cached scale, times the logit difference's
    unembedding direction (TL leaves the norm's weight to a folded unembedding: applied here)."""
    from napkit.lm.attribution import direct_logit_attribution

    model = hooked_tiny(tiny)
    ids = tiny.tokenizer(TEXTS, return_tensors="pt", padding=True)["input_ids"][:, :6]  # no padding
    correct, wrong = torch.tensor([5, 9]), torch.tensor([7, 3])
    dla = direct_logit_attribution(tiny.model, ids, correct, wrong)
    with torch.no_grad():
        _, cache = model.run_with_cache(ids)
        heads = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)  # [layers·heads, b, d]
        mlps = torch.stack([cache[f"blocks.{i}.hook_mlp_out"][:, -1] for i in range(model.cfg.n_layers)])
        mlps = cache.apply_ln_to_stack(mlps, layer=-1, pos_slice=-1)
        direction = (model.W_U[:, correct] - model.W_U[:, wrong]).T * model.ln_final.w  # [b, d]
        tl_heads = (heads * direction).sum(-1).T.reshape(len(ids), model.cfg.n_layers, model.cfg.n_heads)
    np.testing.assert_allclose(dla.heads, tl_heads.double().numpy(), atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(dla.mlps, (mlps * direction).sum(-1).T.double().numpy(), atol=ATOL, rtol=1e-4)


def test_capture_on_loaded_hooked_transformer_equals_run_with_cache(tiny):
    model = hooked_tiny(tiny)
    lm = load(model, tokenizer=tiny.tokenizer)
    assert (lm.kind, lm.architecture) == ("tl", "hooked_transformer")
    names = [
        "blocks.1.hook_resid_pre",
        "blocks.0.attn.hook_z",
        "blocks.2.attn.hook_pattern",
        "blocks.3.mlp.hook_post",
    ]
    # one sequence per call: HookedTransformer's own padding rules are not what is compared here
    for text in TEXTS:
        got = capture(lm, [text], names)
        n, cache = tl_cache(model, tiny, text)
        for name in names:
            np.testing.assert_allclose(
                got.acts[name], tl_rows(cache, name, n), atol=ATOL, rtol=RTOL, err_msg=name
            )
        # and the TL model's rows equal the HF model's rows by alias
        hf = capture(tiny, [text], ["blocks.1.hook_resid_pre"])
        np.testing.assert_allclose(
            got.acts["blocks.1.hook_resid_pre"], hf.acts["blocks.1.hook_resid_pre"], atol=ATOL, rtol=RTOL
        )


def test_unknown_hook_point_of_hooked_transformer_names_the_nearest(tiny):
    from napkit.errors import NapkitError

    lm = load(hooked_tiny(tiny), tokenizer=tiny.tokenizer)
    with pytest.raises(NapkitError, match="nearest: blocks.1.hook_resid_pre"):
        capture(lm, TEXTS, ["blocks.1.hook_resid_pree"])


@pytest.mark.parametrize("kind", ["topk", "l1"])
def test_napkit_sae_folder_loads_in_saelens(tmp_path, kind):
    sae_lens = pytest.importorskip("sae_lens", reason="sae-lens is in the bench-lm extra only")
    from napkit.lm.sae import train_sae
    from napkit.lm.sae_files import load_sae, save_sae

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 24, generator=gen) @ torch.randn(24, 24, generator=gen)
    ours, _ = train_sae(
        x,
        64,
        kind=kind,
        k=6 if kind == "topk" else None,
        steps=60,
        seed=1,
        hook_name="blocks.1.hook_resid_post",
    )
    folder = save_sae(ours, tmp_path / "sae")
    theirs = sae_lens.SAE.load_from_disk(folder)
    assert theirs.cfg.architecture() == {"topk": "topk", "l1": "standard"}[kind]
    assert (theirs.cfg.d_in, theirs.cfg.d_sae) == (24, 64)
    assert theirs.cfg.metadata.hook_name == "blocks.1.hook_resid_post"
    with torch.no_grad():
        for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
            assert torch.equal(getattr(theirs, name), getattr(ours, name)), name
        probe = x[:256]
        f_ours, f_theirs = ours.encode(probe), theirs.encode(probe)
        assert (f_ours > 0).sum(1).float().mean() > 0  # the comparison is not between two zero codes
        torch.testing.assert_close(f_theirs, f_ours, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(theirs.decode(f_theirs), ours.decode(f_ours), atol=1e-5, rtol=1e-5)
    # and back: the folder still reads in napkit, equal to what was written
    again = load_sae(folder)
    assert torch.equal(again.W_enc, ours.W_enc) and again.kind == kind


LLAMA_ALIASES = [
    "blocks.0.hook_resid_pre",
    "blocks.1.hook_resid_mid",
    "blocks.1.hook_resid_post",
    "blocks.0.mlp.hook_pre",
    "blocks.1.mlp.hook_post",
    "blocks.1.attn.hook_z",
    "blocks.0.hook_attn_out",
    "blocks.1.hook_mlp_out",
    "ln_final.hook_normalized",
]


@pytest.fixture(scope="module")
def llama_pair(make_llama):
    """A tiny random Llama (conftest's) in HF and as a TransformerLens HookedTransformer with the
    same weights; their logits agree to ~1e-7."""
    tl = pytest.importorskip("transformer_lens", reason="transformer-lens is in the bench-lm extra only")
    from transformer_lens.pretrained.weight_conversions import convert_llama_weights

    from napkit.lm.models import LanguageModel

    hf = make_llama()
    c = hf.config
    cfg = tl.HookedTransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, n_ctx=64, d_vocab=40, act_fn="silu",
        normalization_type="RMS", positional_embedding_type="rotary", rotary_dim=8, gated_mlp=True,
        n_key_value_heads=2, final_rms=True, eps=c.rms_norm_eps, original_architecture="LlamaForCausalLM",
    )  # fmt: skip
    with pytest.warns(DeprecationWarning):
        model = tl.HookedTransformer(cfg)
    missing, unexpected = model.load_state_dict(convert_llama_weights(hf, cfg), strict=False)
    buffers = (".mask", ".IGNORE", "rotary_sin", "rotary_cos")  # TL's own, not weights
    assert not unexpected and all(k.endswith(buffers) for k in missing)
    return LanguageModel(hf, None), model.eval()


LLAMA_IDS = torch.randint(1, 40, (1, 9), generator=torch.Generator().manual_seed(1))


def test_alias_capture_on_hf_llama_equals_transformer_lens_cache(llama_pair):
    lm, model = llama_pair
    got = capture(lm, {"input_ids": LLAMA_IDS, "attention_mask": torch.ones_like(LLAMA_IDS)}, LLAMA_ALIASES)
    with torch.no_grad():
        _, cache = model.run_with_cache(LLAMA_IDS)
    for name in LLAMA_ALIASES:
        want = tl_rows(cache, name, LLAMA_IDS.shape[1])
        np.testing.assert_allclose(got.acts[name], want, atol=ATOL, rtol=RTOL, err_msg=name)


@pytest.mark.parametrize("name", [n for n in LLAMA_ALIASES if not n.endswith("hook_normalized")])
@pytest.mark.parametrize("op", WRITE_OPS)
def test_writing_at_an_alias_on_hf_llama_equals_transformer_lens_hook(llama_pair, name, op):
    lm, model = llama_pair
    assert_same_write(lm, model, LLAMA_IDS, name, op)

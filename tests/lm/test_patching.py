"""Patching and ablation on tiny random GPT-2s: exact identities, batching, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.ablation import ablate
from napkit.lm.patching import (
    Site,
    answer_token,
    capture,
    check_pair,
    encode_pair,
    patch,
    patch_sweep,
    run_variants,
)

GEN = torch.Generator().manual_seed(0)
CLEAN = torch.randint(0, 40, (6, 9), generator=GEN)
CORRUPTED = CLEAN.clone()
CORRUPTED[:, 2] = (CLEAN[:, 2] + 7) % 40  # one token differs, as in a subject swap
CORRECT = torch.randint(0, 40, (6,), generator=GEN)
WRONG = (CORRECT + 1) % 40


def test_patching_nothing_gives_0_and_everything_exactly_1(tiny_gpt2):
    variants = [[], [Site("resid_pre", 0)], [Site("resid_pre", 2)], [Site("resid_pre", 0, position=2)]]
    res = patch(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, variants)
    assert res.scores[0] == 0.0 and res.scores[1] == 1.0 and res.scores[2] == 1.0
    assert res.scores[3] == 1.0  # only position 2 of the embeddings differs


def test_clean_into_clean_is_bitwise_no_op(tiny_gpt2):
    sites = [Site("head", 0, 1), Site("mlp", 1), Site("neuron", 1, 5), Site("resid_pre", 1, position=3)]
    sources = capture(tiny_gpt2, CLEAN, None, sites)
    with torch.no_grad():
        plain = tiny_gpt2(CLEAN).logits[:, -1]
    patched = run_variants(tiny_gpt2, CLEAN, None, [sites, sites[:1]], sources)
    assert torch.equal(patched[0], plain) and torch.equal(patched[1], plain)


def test_batched_sweep_equals_one_variant_at_a_time(tiny_gpt2):
    batched = patch_sweep(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, "head")
    assert batched.scores.shape == (2, 4)
    one = [
        patch(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, [[Site("head", lay, h)]]).scores[0]
        for lay in range(2)
        for h in range(4)
    ]
    np.testing.assert_allclose(batched.scores.ravel(), one, atol=1e-6)
    small_chunks = patch(
        tiny_gpt2,
        CLEAN,
        CORRUPTED,
        CORRECT,
        WRONG,
        [[Site("head", lay, h)] for lay in range(2) for h in range(4)],
        max_rows=12,
    )
    np.testing.assert_allclose(small_chunks.scores, one, atol=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_shared_prefix_fan_out_equals_one_variant_per_pass(tiny_gpt2, make_llama, arch):
    """Variants grouped by first layer (earlier layers once, then repeated per variant, masks and
    rotary tables too) give bitwise the logits of one variant per forward pass, with padding."""
    from napkit.lm.patching import sweep_variants

    model = tiny_gpt2 if arch == "gpt2" else make_llama(n_layer=3)
    mask = torch.ones_like(CLEAN)
    mask[1, 6:], mask[4, 8:] = 0, 0
    for component in ("resid_pre", "head", "mlp", "neuron"):
        variants, _ = sweep_variants(model, component, CLEAN.shape[1])
        n = len(model_layers(model))
        variants = [*variants[:60], [], [Site("resid_pre", n)], [Site("mlp", 1), Site("head", 0, 2)]]
        sources = capture(model, CORRUPTED, mask, [s for v in variants for s in v])
        fanned = run_variants(model, CLEAN, mask, variants, sources)
        alone = run_variants(model, CLEAN, mask, variants, sources, max_rows=len(CLEAN))
        assert fanned.shape == (len(variants), len(CLEAN), 40)
        assert torch.equal(fanned, alone), component


def model_layers(model):
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def test_resid_sweep_only_the_changed_position_matters_at_layer_0(tiny_gpt2):
    res = patch_sweep(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, "resid_pre")
    assert res.scores.shape == (2, 9)
    assert res.scores[0, 2] == 1.0
    assert np.all(res.scores[0, [0, 1, 3, 4, 5, 6, 7, 8]] == 0.0)  # the positions that already agree


def test_neuron_sweep_mlp_sweep_and_components_that_cannot_matter(tiny_gpt2):
    res = patch_sweep(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, "neuron")
    assert res.scores.shape == (2, 128)
    mlp = patch_sweep(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, "mlp").scores
    neurons_all = patch(
        tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, [[Site("neuron", 1, j) for j in range(128)]]
    )
    assert neurons_all.scores[0] == pytest.approx(mlp[1], abs=1e-9)  # all neurons of a layer = its MLP
    # a neuron switched off (ReLU input always negative) in both runs cannot change anything
    with torch.no_grad():
        tiny_gpt2.transformer.h[1].mlp.c_fc.bias[[3, 70]] = -1e4
    res = patch_sweep(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, "neuron")
    assert res.scores[1, 3] == 0.0 and res.scores[1, 70] == 0.0
    assert np.count_nonzero(res.scores[1]) >= 100


def test_ablations(tiny_gpt2):
    sites = [Site("mlp", 0), Site("head", 1, 2)]
    with torch.no_grad():
        plain = tiny_gpt2(CLEAN).logits[:, -1]
    zero = ablate(tiny_gpt2, CLEAN, sites, "zero")
    assert not torch.equal(zero, plain)

    # zero ablation by hand: a hook that zeroes the MLP output and head 2's slice of z
    def zero_mlp(m, i, o):
        return torch.zeros_like(o)

    def zero_head(m, args):
        z = args[0].clone()
        z[..., 16:24] = 0
        return (z,)

    h1 = tiny_gpt2.transformer.h[0].mlp.register_forward_hook(zero_mlp)
    h2 = tiny_gpt2.transformer.h[1].attn.c_proj.register_forward_pre_hook(zero_head)
    with torch.no_grad():
        by_hand = tiny_gpt2(CLEAN).logits[:, -1]
    h1.remove()
    h2.remove()
    torch.testing.assert_close(zero, by_hand, rtol=0, atol=1e-6)
    one_prompt = CLEAN[:1].repeat(4, 1)  # mean and resample over identical prompts change nothing
    torch.testing.assert_close(
        ablate(tiny_gpt2, one_prompt, sites, "mean"), tiny_gpt2(one_prompt).logits[:, -1], rtol=0, atol=1e-5
    )
    assert torch.equal(
        ablate(tiny_gpt2, one_prompt, sites, "resample"),
        run_variants(tiny_gpt2, one_prompt, None, [[]], {})[0],
    )
    assert not torch.equal(ablate(tiny_gpt2, CLEAN, sites, "resample", seed=1), plain)
    with pytest.raises(NapkitError, match="ablation"):
        ablate(tiny_gpt2, CLEAN, sites, "noise")


def test_bad_input(tiny_gpt2):
    with pytest.raises(NapkitError, match=r"clean \(6, 9\), corrupted \(6, 8\)"):
        patch(tiny_gpt2, CLEAN, CORRUPTED[:, :8], CORRECT, WRONG, [[]])
    mask_c = torch.ones(2, 5, dtype=torch.long)
    mask_x = mask_c.clone()
    mask_x[1, 4] = 0
    with pytest.raises(NapkitError, match="clean is 5 tokens, corrupted 4"):
        check_pair(CLEAN[:2, :5], CLEAN[:2, :5], mask_c, mask_x)
    with pytest.raises(NapkitError, match="layer 5"):
        patch(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, [[Site("mlp", 5)]])
    with pytest.raises(NapkitError, match="index 4"):
        patch(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, [[Site("head", 0, 4)]])
    with pytest.raises(NapkitError, match="position 9"):
        patch(tiny_gpt2, CLEAN, CORRUPTED, CORRECT, WRONG, [[Site("resid_pre", 0, position=9)]])
    with pytest.raises(NapkitError, match="same logit difference"):
        patch(tiny_gpt2, CLEAN, CLEAN, CORRECT, WRONG, [[]])


def test_tokenizer_checks():
    from napkit.lm.tokenizer import build_tokenizer

    tok = build_tokenizer()
    clean, corrupted, mask = encode_pair(tok, ["alice lives in"], ["bob lives in"])
    assert clean.shape == corrupted.shape == mask.shape == (1, 4)
    with pytest.raises(NapkitError, match=r"'alice lives in' is 4 tokens, 'bob lives in the' is 5"):
        encode_pair(tok, ["alice lives in"], ["bob lives in the"])
    assert answer_token(tok, "paris") == tok.convert_tokens_to_ids("paris")
    with pytest.raises(NapkitError, match="not one"):
        answer_token(tok, "paris rome")


def naive_patch_scores(model, clean, corrupted, correct, wrong, variants, mask):
    """The reference: one plain forward pass per variant, a hook per site, no batching."""
    from napkit.lm._parts import hooked, last_positions, model_parts
    from napkit.lm.patching import _hook_point, logit_diff

    parts = model_parts(model)
    last = last_positions(mask, clean)
    rows = torch.arange(len(clean))

    def run(ids, hooks=()):
        with torch.no_grad(), hooked(list(hooks)):
            return model(input_ids=ids, attention_mask=mask).logits[rows, last]

    sources = capture(model, clean, mask, [s for v in variants for s in v])
    ld_clean = logit_diff(run(clean), correct, wrong).mean()
    ld_corr = logit_diff(run(corrupted), correct, wrong).mean()
    scores = []
    for sites in variants:
        hooks = []
        for site in sites:
            key, mod, kind, feats = _hook_point(parts, site)
            pos = slice(None) if site.position is None else site.position

            def put(x, src=sources[key], pos=pos, feats=feats):
                x = x.clone()
                x[:, pos, feats] = src[:, pos, feats]
                return x

            hooks.append((mod, kind, put))
        scores.append(
            float((logit_diff(run(corrupted, hooks), correct, wrong).mean() - ld_corr) / (ld_clean - ld_corr))
        )
    return np.array(scores)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_patch_equals_one_hooked_pass_per_variant(tiny_gpt2, make_llama, arch):
    """The growing batch, the skipped sites (unread positions of the last layer, positions of the
    common prefix, equal embeddings) and the chunks give the scores of the plain reference."""
    model = tiny_gpt2 if arch == "gpt2" else make_llama(n_layer=3)
    n = len(model_layers(model))
    mask = torch.ones_like(CLEAN)
    mask[1, 6:], mask[4, 8:] = 0, 0
    corrupted = CORRUPTED.clone()
    corrupted[:, 5] = (CLEAN[:, 5] + 3) % 40  # differs at positions 2 and 5
    corrupted[mask == 0] = CLEAN[mask == 0]
    variants = [
        [],
        *[[Site("resid_pre", lay, position=p)] for lay in range(n + 1) for p in range(9)],
        *[
            [Site(c, lay, position=p)]
            for c in ("mlp", "attn", "resid_post")
            for lay in range(n)
            for p in range(9)
        ],
        *[[Site("head", lay, h)] for lay in range(n) for h in range(2)],
        [Site("neuron", n - 1, 3, position=5), Site("mlp", 0, position=1)],  # both skipped
        [Site("head", 1, 2, position=7), Site("resid_pre", 0, position=0), Site("mlp", 0)],
        [Site("resid_pre", n)],
    ]
    want = naive_patch_scores(model, CLEAN, corrupted, CORRECT, WRONG, variants, mask)
    for max_rows in (4096, 3 * len(CLEAN)):
        got = patch(model, CLEAN, corrupted, CORRECT, WRONG, variants, mask, max_rows=max_rows).scores
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert got[0] == 0.0 and got[-1] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_sites_taken_as_equal_have_equal_clean_and_corrupted_values(tiny_gpt2, make_llama, arch):
    from napkit.lm.patching import COMPONENTS, _equal_values, _hook_point, model_parts

    model = tiny_gpt2 if arch == "gpt2" else make_llama(n_layer=3)
    parts = model_parts(model)
    same = _equal_values(CLEAN, CORRUPTED)
    sites = [
        Site(c, lay, 0 if c in ("head", "neuron") else None, p)
        for c in COMPONENTS
        for lay in range(parts.n_layers)
        for p in (*range(9), None)
    ]
    taken = [s for s in sites if same(s)]
    assert {s.position for s in taken} == {0, 1, 3, 4, 5, 6, 7, 8}  # position 2 differs
    clean, corrupted = capture(model, CLEAN, None, sites), capture(model, CORRUPTED, None, sites)
    for site in taken:
        key, _, _, feats = _hook_point(parts, site)
        assert torch.equal(clean[key][:, site.position, feats], corrupted[key][:, site.position, feats]), site
    assert not all(same(s) for s in sites if s.position is not None and s.position >= 2 and s.layer > 0)

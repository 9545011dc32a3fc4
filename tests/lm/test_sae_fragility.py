"""SAE sibling features, the fragility map and its plot, on the shipped tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.sae import SparseAutoencoder
from napkit.lm.sae_fragility import (
    CONTEXT_KINDS,
    fragility_map,
    grammar_contexts,
    plot_fragility,
    residual_norms,
    sibling_features,
    word_ids,
)
from napkit.lm.steering import next_token_logprobs, steering

WORDS = ("cat", "dog", "bird")


def planted_sae() -> SparseAutoencoder:
    """Identity encoder/decoder on 4 dims (plain ReLU): feature j reads and writes dim j."""
    sae = SparseAutoencoder(4, 4, kind="l1")
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(4))
        sae.W_dec.copy_(torch.eye(4))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_input_selection_prefers_the_word_feature_over_a_shared_sibling_feature(tiny):
    ids = word_ids(tiny.tokenizer, WORDS)
    # every animal row fires the shared feature 3 strongly; feature i fires only on word i
    tokens = np.repeat(ids, 5)
    acts = torch.zeros(len(tokens), 4)
    for i in range(3):
        acts[5 * i : 5 * i + 5, i] = 2.0
    acts[:, 3] = 9.0
    feats = sibling_features(planted_sae(), acts, tokens, tiny.tokenizer, WORDS)
    assert [feats[w].feature for w in WORDS] == [0, 1, 2]
    assert all(feats[w].precision == pytest.approx(1.0) for w in WORDS)
    assert feats["cat"].score == pytest.approx(2.0)


def test_output_selection_takes_the_feature_that_writes_the_word(tiny):
    ids = word_ids(tiny.tokenizer, WORDS)
    tokens = np.repeat(ids, 2)
    acts = torch.ones(len(tokens), 4)
    w_u = torch.zeros(len(tiny.tokenizer), 4)
    for i, j in zip(ids, (2, 0, 1), strict=True):  # cat is written by feature 2, dog 0, bird 1
        w_u[i, j] = 1.0
    feats = sibling_features(planted_sae(), acts, tokens, tiny.tokenizer, WORDS, w_u, select="output")
    assert [feats[w].feature for w in WORDS] == [2, 0, 1]
    assert feats["cat"].logit_margin == pytest.approx(1.0)
    with pytest.raises(NapkitError, match="unembedding"):
        sibling_features(planted_sae(), acts, tokens, tiny.tokenizer, WORDS, select="output")


def test_a_word_that_is_not_a_token_is_refused(tiny):
    with pytest.raises(NapkitError, match="'zebra' is not in the model's vocabulary"):
        word_ids(tiny.tokenizer, ["cat", "zebra"])
    with pytest.raises(NapkitError, match="is 2 tokens"):
        word_ids(tiny.tokenizer, ["cat dog"])


def test_contexts_stop_where_the_grammar_expects_each_class(tiny):
    ctx = grammar_contexts(5, seed=1)
    assert list(ctx) == list(CONTEXT_KINDS) and all(len(v) == 5 for v in ctx.values())
    assert all(p.endswith(" in") for p in ctx["city"])
    assert all(p.split()[-1] == "is" for p in ctx["color"])
    # the tiny model's own top predictions: a noun (or an adjective after a determiner) at noun
    # slots; a verb (or "is", as in "the cat is near the dog") at verb slots
    from napkit.lm.corpus import GRAMMAR

    for kind, allowed in (("noun", {"NOUN", "ADJ"}), ("verb", {"VERB", "is"})):
        top = next_token_logprobs(tiny, ctx[kind]).argmax(-1)
        words = tiny.tokenizer.convert_ids_to_tokens(top.tolist())
        assert all(w in allowed or GRAMMAR.word_class.get(w) in allowed for w in words), (kind, words)


def test_map_cells_equal_a_steered_forward_pass_recomputed(tiny):
    ctx = {k: v for k, v in grammar_contexts(3, seed=2).items() if k in ("noun", "city")}
    texts = ctx["noun"] + ctx["city"]
    gen = torch.Generator().manual_seed(0)
    dirs = {w: torch.randn(128, generator=gen) for w in WORDS}
    scales = [1.0, 4.0]
    m = fragility_map(tiny, dirs, [3], scales, ctx, WORDS)
    assert m.success.shape == (3, 1, 2, 2) and m.confusion.shape == (3, 1, 2, 2)
    norm = residual_norms(tiny, texts, [3])[0]
    ids = word_ids(tiny.tokenizer, WORDS)
    for wi, w in enumerate(WORDS):
        d = dirs[w] / dirs[w].norm()
        for si, s in enumerate(scales):
            top = next_token_logprobs(
                tiny, texts, [steering("blocks.3.hook_resid_post", d, s * norm)]
            ).argmax(-1)
            assert list(m.top_words[wi, 0, si]) == tiny.tokenizer.convert_ids_to_tokens(top.tolist())
            for ki in range(2):
                part = top[3 * ki : 3 * ki + 3].numpy()
                assert m.success[wi, 0, si, ki] == pytest.approx(np.mean(part == ids[wi]))
                others = [i for i in ids if i != ids[wi]]
                assert m.confusion[wi, 0, si, ki] == pytest.approx(np.mean(np.isin(part, others)))


def test_plot_writes_a_png(tiny, tmp_path):
    ctx = {"noun": grammar_contexts(2)["noun"]}
    gen = torch.Generator().manual_seed(1)
    m = fragility_map(tiny, {w: torch.randn(128, generator=gen) for w in WORDS[:2]}, [0, 1], [1.0], ctx)
    path = plot_fragility({"random": m}, tmp_path / "map.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp.png"))


def test_non_finite_scales_are_refused(tiny):
    with pytest.raises(NapkitError, match="finite"):
        fragility_map(tiny, {"cat": torch.ones(128)}, [0], [float("nan")], {"noun": ["the"]})


@pytest.mark.slow
def test_sibling_study_reports_every_method(tiny, tmp_path):
    from napkit.lm.sae_siblings import sibling_study

    fig, maps = sibling_study(
        tiny, layer=2, n_sentences=300, steps=300, n_contexts=3, plot=tmp_path / "s.png"
    )
    assert set(maps) == {"sae_in", "sae_out", "dom", "unembed", "random"}
    assert fig["distinct_input_features"] >= 1 and (tmp_path / "s.png").is_file()

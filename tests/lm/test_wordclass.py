"""Word classes: purity by hand, the window sampler, and the margin of the trained tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.corpus import GRAMMAR
from napkit.lm.tokenizer import build_tokenizer
from napkit.lm.wordclass import cluster_scores, purity, random_init_like, windows, wordclass_scores


def test_purity_by_hand():
    clusters = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array(["a", "a", "b", "b", "b", "a"])
    assert purity(clusters, labels) == pytest.approx(5 / 6)
    assert purity(np.zeros(6, dtype=int), labels) == 0.5


def test_separated_classes_are_found_and_shuffled_labels_are_not():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["DET", "NOUN", "VERB"]), 100)
    centres = rng.normal(size=(3, 8)) * 10
    states = centres[np.repeat(np.arange(3), 100)] + rng.normal(size=(300, 8))
    p, nmi, shuffled = cluster_scores(states, labels)
    assert p == 1.0 and nmi == pytest.approx(1.0)
    assert shuffled < 0.5
    with pytest.raises(NapkitError, match="two classes"):
        cluster_scores(states, np.repeat("DET", 300))


def test_windows_from_the_grammar():
    tok = build_tokenizer()
    sentences = GRAMMAR.sample("plain", 50, seed=1)
    ids, labels = windows(sentences, tok, 40, seed=2)
    assert ids.shape == (40, 10) and (ids[:, 0] == tok.bos_token_id).all()
    words = [w for s in sentences for w in s.words]
    last = tok.convert_ids_to_tokens(ids[:, -1].tolist())
    assert all(GRAMMAR.word_class[w] == c for w, c in zip(last, labels, strict=True))
    assert set(last) <= set(words)


def test_scores_per_layer_on_a_random_model(make_gpt2):
    tok = build_tokenizer()
    model = make_gpt2(vocab=len(tok))
    ids, labels = windows(GRAMMAR.sample("plain", 200, seed=0), tok, 300)
    scores = wordclass_scores(model, ids, labels)
    assert scores.purity.shape == (3,) and scores.nmi.shape == (3,)
    assert np.all(scores.purity >= scores.majority - 1e-12)
    # each layer's figures are k-means on that layer's last-position states (by hand here)
    with torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
    for layer, h in enumerate(hidden):
        want = cluster_scores(h[:, -1].float().numpy(), np.asarray(labels))
        np.testing.assert_allclose([scores.purity[layer], scores.nmi[layer]], want[:2], atol=1e-9)
    fresh = random_init_like(model, seed=5)
    assert type(fresh) is type(model)
    assert not torch.equal(fresh.transformer.h[0].mlp.c_fc.weight, model.transformer.h[0].mlp.c_fc.weight)
    with pytest.raises(NapkitError, match="labels"):
        wordclass_scores(model, ids, labels[:-1])

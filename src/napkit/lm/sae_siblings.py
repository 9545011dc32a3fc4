"""The sibling study on a grammar-trained model: train an SAE, find the animal features, map them.

:func:`sibling_study` trains a TopK SAE on the residual stream after one layer (grammar
corpus tokens), reports its FVU on held-out tokens, picks two features per animal noun
(:func:`napkit.lm.sae_fragility.sibling_features`: the one that reads the word, the one
that writes it) and runs the fragility map for them, for the difference-of-means
directions, for the words' unembedding rows (what the output layer reads) and for random
directions, all in one run. It returns flat figures (``sae_in_*``, ``sae_out_*``,
``dom_*``, ``unembed_*``, ``random_*``) and writes the heat map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.corpus import GRAMMAR
from napkit.lm.method_figures import token_rows
from napkit.lm.models import load
from napkit.lm.patching import Site
from napkit.lm.sae import sae_metrics, train_sae
from napkit.lm.sae_fragility import (
    ANIMALS,
    SCALES,
    FragilityMap,
    fragility_map,
    grammar_contexts,
    plot_fragility,
    sibling_features,
    word_ids,
)


def _rows_and_tokens(lm, n_sentences: int, seed: int, layer: int):
    sents = GRAMMAR.corpus(n_sentences, seed=seed)
    rows = token_rows(lm.model, lm.tokenizer, sents, Site("resid_post", layer))
    enc = lm.tokenizer([s.text for s in sents], return_tensors="pt", padding=True)
    return rows, enc["input_ids"][enc["attention_mask"].bool()].numpy()


def difference_of_means(
    rows: torch.Tensor, tokens: np.ndarray, ids: dict[str, int]
) -> dict[str, torch.Tensor]:
    """Per word: mean of its rows minus the mean of its siblings' rows."""
    means = {w: rows[torch.from_numpy(tokens == i)].mean(0) for w, i in ids.items()}
    return {w: means[w] - torch.stack([means[s] for s in ids if s != w]).mean(0) for w in ids}


def sibling_study(
    lm,
    layer: int = 2,
    words: Sequence[str] = ANIMALS,
    scales: Sequence[float] = SCALES,
    n_contexts: int = 12,
    n_sentences: int = 1500,
    d_sae: int = 512,
    k: int = 32,
    steps: int = 2000,
    seed: int = 0,
    plot: str | Path | None = None,
) -> tuple[dict, dict[str, FragilityMap]]:
    """Figures of the SAE sibling study and the three fragility maps (SAE, diff. of means, random)."""
    lm = load(lm)
    n_layers = lm.model.config.num_hidden_layers
    if not 0 <= layer < n_layers:
        raise NapkitError(f"layer must lie in 0..{n_layers - 1}, got {layer}")
    ids = dict(zip(words, word_ids(lm.tokenizer, words), strict=True))
    rows, tokens = _rows_and_tokens(lm, n_sentences, seed + 2, layer)
    held_rows, _ = _rows_and_tokens(lm, max(1, n_sentences // 10), seed + 3, layer)
    sae, _ = train_sae(rows, d_sae, kind="topk", k=k, steps=steps, seed=seed)
    quality = sae_metrics(sae, held_rows)
    w_u = lm.model.get_output_embeddings().weight.detach()
    feats = {
        sel: sibling_features(sae, rows, tokens, lm.tokenizer, words, w_u, select=sel)
        for sel in ("input", "output")
    }
    sae_in = {w: sae.W_dec[f.feature].detach() for w, f in feats["input"].items()}
    sae_out = {w: sae.W_dec[f.feature].detach() for w, f in feats["output"].items()}
    dom_dirs = difference_of_means(rows, tokens, ids)
    gen = torch.Generator().manual_seed(seed)
    rnd_dirs = {w: torch.randn(rows.shape[1], generator=gen) for w in words}
    contexts = grammar_contexts(n_contexts, seed)
    layers = list(range(n_layers))
    maps = {
        name: fragility_map(lm, dirs, layers, scales, contexts, words)
        for name, dirs in (
            ("sae_in", sae_in),
            ("sae_out", sae_out),
            ("dom", dom_dirs),
            ("unembed", {w: w_u[i] for w, i in ids.items()}),
            ("random", rnd_dirs),
        )
    }
    dec = torch.stack([sae_in[w] for w in words])
    cos = (dec @ dec.T).numpy()
    figures = {
        "sae_layer": layer,
        "sae_fvu": quality.fvu,
        "sae_dead_frac": quality.dead_frac,
        "sae_d_sae": d_sae,
        "sae_k": k,
        "features": {
            sel: {
                w: {
                    "feature": f.feature,
                    "mean_on_word": round(f.mean_on_word, 4),
                    "max_sibling_mean": round(f.max_sibling_mean, 4),
                    "precision": round(f.precision, 4),
                    "logit_margin": round(f.logit_margin, 4),
                }
                for w, f in fs.items()
            }
            for sel, fs in feats.items()
        },
        "distinct_input_features": len({f.feature for f in feats["input"].values()}),
        "input_decoder_cosine_max_offdiag": float(np.max(cos - 2 * np.eye(len(words)))),
        "scales": list(scales),
        "layers": layers,
        "contexts": {k_: len(v) for k_, v in contexts.items()},
    }
    for name, m in maps.items():
        figures.update(m.summary(f"{name}_"))
    if plot is not None:
        figures["plot"] = str(plot_fragility(maps, plot))
    return figures, maps

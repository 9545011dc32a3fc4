"""Emergent word classes: do a layer's states cluster by the class of the current word?

Windows of 9 words are cut from running text; the state of the last position at each
layer is clustered by k-means with as many clusters as word classes, and the clusters
are scored against the true class of the last word by purity (the fraction of windows
whose cluster's majority class is theirs) and normalised mutual information. Two
baselines from the same run: the same clustering scored against shuffled labels (what
chance gives), and the same architecture with random weights (what training added).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from napkit.errors import NapkitError

WINDOW = 9


@dataclass
class WordClassScores:
    purity: np.ndarray  # [layers + 1]: embeddings, then after each block (the last after the final norm)
    nmi: np.ndarray
    shuffled_purity: np.ndarray  # the same clusters against permuted labels
    majority: float  # purity of putting everything in one cluster

    @property
    def best_layer(self) -> int:
        return int(np.argmax(self.purity))

    @property
    def best_purity(self) -> float:
        return float(self.purity.max())


def windows(sentences: Sequence, tokenizer, n: int, window: int = WINDOW, seed: int = 0):
    """``n`` windows of ``window`` words from the sentences laid end to end.

    Returns token ids [n, window (+1 with a BOS token in front)] and the class of each
    window's last word. Sentences need ``words`` and ``classes`` (napkit.lm.corpus).
    """
    words = [w for s in sentences for w in s.words]
    classes = [c for s in sentences for c in s.classes]
    if len(words) < window or n < 1:
        raise NapkitError(f"need at least {window} words and one window (got {len(words)} words, n={n})")
    ids = np.asarray(tokenizer.convert_tokens_to_ids(words), dtype=np.int64)
    if tokenizer.unk_token_id is not None and (ids == tokenizer.unk_token_id).any():
        raise NapkitError("some words are not in the tokenizer's vocabulary")
    starts = np.random.default_rng(seed).integers(0, len(words) - window + 1, size=n)
    rows = ids[starts[:, None] + np.arange(window)]
    if tokenizer.bos_token_id is not None:
        rows = np.concatenate([np.full((n, 1), tokenizer.bos_token_id), rows], 1)
    return torch.as_tensor(rows), np.asarray(classes)[starts + window - 1]


@torch.no_grad()
def last_states(model: nn.Module, ids: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Hidden state of the last position at every layer: [layers + 1, n, d_model]."""
    out = []
    for lo in range(0, len(ids), batch_size):
        hs = model(input_ids=ids[lo : lo + batch_size], output_hidden_states=True).hidden_states
        out.append(torch.stack([h[:, -1].float() for h in hs]))
    return torch.cat(out, 1)


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of items whose cluster's most common label is their own."""
    _, lab = np.unique(labels, return_inverse=True)
    counts = np.zeros((clusters.max() + 1, lab.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, lab), 1)
    return float(counts.max(1).sum() / len(labels))


def cluster_scores(states: np.ndarray, labels: np.ndarray, seed: int = 0, n_init: int = 4):
    """(purity, NMI, shuffled-label purity) of k-means on standardised states, k = #classes."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    x = np.asarray(states, dtype=np.float64)
    if not np.isfinite(x).all():
        raise NapkitError("states contain NaN or infinity")
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    k = len(np.unique(labels))
    if k < 2:
        raise NapkitError("word classes need at least two classes among the labels")
    clusters = KMeans(k, n_init=n_init, random_state=seed).fit_predict(x)
    shuffled = np.random.default_rng(seed).permutation(labels)
    nmi = normalized_mutual_info_score(labels, clusters)
    return purity(clusters, labels), nmi, purity(clusters, shuffled)


def wordclass_scores(model: nn.Module, ids: torch.Tensor, labels, seed: int = 0) -> WordClassScores:
    """Purity and NMI per layer of k-means on last-position states against word classes."""
    labels = np.asarray(labels)
    if len(labels) != len(ids):
        raise NapkitError(f"{len(ids)} windows but {len(labels)} labels")
    states = last_states(model, ids).numpy()
    rows = np.array([cluster_scores(s, labels, seed) for s in states])
    _, counts = np.unique(labels, return_counts=True)
    return WordClassScores(rows[:, 0], rows[:, 1], rows[:, 2], float(counts.max() / len(labels)))


def random_init_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture with fresh random weights (HF models: built from their config)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fresh = type(model)(model.config)
    return fresh.eval()

"""SAE features for sibling nouns, their fragility map, and how often they steer to a sibling.

The grammar's animal nouns (cat, dog, bird, horse) are siblings: one class, the same
slots, interchangeable in every sentence. For each of them :func:`sibling_features`
picks the SAE feature that best tells it from its siblings (mean activation on the word's
tokens minus the largest mean on a sibling's). Steering adds α times the feature's unit
decoder row to the residual stream after a layer, at every position
(:func:`napkit.lm.feature_steering.steering_grid`), and reads the steered top next token
at the last position. Over a layer × α × context grid (:func:`fragility_map`):

- **success**: the top next token is the steered word;
- **sibling confusion**: the top next token is one of its siblings instead.

α is a multiple of the median residual norm at the steered layer (so one scale means the
same relative push at every layer). Contexts are prompts cut where the grammar expects a
noun, a verb, a city (facts) or a colour (bindings). The same grid runs for two
baselines: the difference of means (the word's rows minus its siblings' rows at the
SAE's layer, unit norm) and a random unit direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.capture import capture, encode
from napkit.lm.corpus import GRAMMAR, Grammar
from napkit.lm.feature_steering import steering_grid
from napkit.lm.models import LanguageModel, load
from napkit.lm.sae import SparseAutoencoder
from napkit.lm.targets import resolve
from napkit.lm.tokenizer import known_token_id
from napkit.staging import save_png

ANIMALS = ("cat", "dog", "bird", "horse")
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CONTEXT_KINDS = ("noun", "verb", "city", "color")


@dataclass(frozen=True)
class NounFeature:
    word: str
    feature: int
    score: float  # mean activation on the word minus the largest mean on a sibling
    mean_on_word: float
    max_sibling_mean: float
    precision: float  # fraction of the feature's firings (on these rows) that are on the word
    logit_margin: float  # decoder row · (unembedding of the word − the largest sibling's)


def sibling_features(
    sae: SparseAutoencoder,
    acts: torch.Tensor,
    tokens: np.ndarray,
    tokenizer,
    words: Sequence[str] = ANIMALS,
    unembedding: torch.Tensor | None = None,
    select: str = "input",
) -> dict[str, NounFeature]:
    """For each word, a feature that tells it from its siblings.

    ``select="input"``: the feature most active on the word's tokens relative to its most
    active sibling (what the feature reads). ``select="output"``: the feature whose decoder
    row most raises the word's logit over its strongest sibling's through ``unembedding``
    ([vocab, d_model], the final norm ignored; what the feature writes).
    """
    if select not in ("input", "output"):
        raise NapkitError(f"select must be 'input' or 'output', not {select!r}")
    if select == "output" and unembedding is None:
        raise NapkitError("output selection needs the unembedding matrix")
    if len(words) < 2:
        raise NapkitError("sibling features need at least two sibling words")
    ids = word_ids(tokenizer, words)
    tokens = np.asarray(tokens)
    with torch.no_grad():
        f = sae.encode(torch.as_tensor(acts).float())
    means = {}
    for w, i in zip(words, ids, strict=True):
        rows = torch.from_numpy(tokens == i)
        if not bool(rows.any()):
            raise NapkitError(f"no activation row holds the word {w!r}: use more sentences (--sentences)")
        means[w] = f[rows].mean(0)
    out = {}
    fired = f > 0
    logits = None
    if unembedding is not None:
        logits = sae.W_dec.detach() @ torch.as_tensor(unembedding).float()[ids].T  # [d_sae, words]
    for wi, (w, i) in enumerate(zip(words, ids, strict=True)):
        sib = torch.stack([means[s] for s in words if s != w]).max(0).values
        margin = None
        if logits is not None:
            margin = logits[:, wi] - torch.cat([logits[:, :wi], logits[:, wi + 1 :]], 1).max(1).values
        score = means[w] - sib if select == "input" else margin
        j = int(score.argmax())
        n_fired = int(fired[:, j].sum())
        on_word = int(fired[torch.from_numpy(tokens == i), j].sum())
        out[w] = NounFeature(
            w, j, float(score[j]), float(means[w][j]), float(sib[j]), on_word / n_fired if n_fired else 0.0,
            float("nan") if margin is None else float(margin[j]),
        )  # fmt: skip
    return out


def word_ids(tokenizer, words: Sequence[str]) -> list[int]:
    return [known_token_id(tokenizer, w) for w in words]


def grammar_contexts(n_per_kind: int = 12, seed: int = 0, grammar: Grammar = GRAMMAR) -> dict[str, list[str]]:
    """Prompts cut where the grammar expects a noun, a verb, a city or a colour next."""
    if n_per_kind < 1:
        raise NapkitError(f"give at least one context per kind, got {n_per_kind}")
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"noun": [], "verb": []}
    while min(len(out["noun"]), len(out["verb"])) < n_per_kind:
        s = grammar.plain(rng)
        for kind, cls in (("noun", "NOUN"), ("verb", "VERB")):
            cuts = [i for i, c in enumerate(s.classes) if c == cls and i > 0]
            if cuts and len(out[kind]) < n_per_kind:
                out[kind].append(" ".join(s.words[: cuts[int(rng.integers(len(cuts)))]]))
    out["city"] = [s.prompt for s in grammar.sample("fact", n_per_kind, seed + 1)]
    out["color"] = [s.prompt for s in grammar.sample("binding", n_per_kind, seed + 2)]
    return out


@dataclass
class FragilityMap:
    """Success and sibling-confusion rates per (word, layer, scale, context kind)."""

    words: list[str]
    layers: list[int]
    scales: list[float]
    kinds: list[str]
    success: np.ndarray  # [words, layers, scales, kinds]
    confusion: np.ndarray  # [words, layers, scales, kinds]
    kl: np.ndarray  # [words, layers, scales, kinds] mean KL(steered || clean)
    clean_success: np.ndarray  # [words, kinds]: the word is already the top token unsteered
    clean_confusion: np.ndarray  # [words, kinds]: a sibling is the top token unsteered
    top_words: np.ndarray | None = None  # [words, layers, scales, contexts]: the steered top token (text)

    def summary(self, prefix: str = "") -> dict:
        s, c = self.success, self.confusion
        hits = s + c
        conf_share = float(c.sum() / hits.sum()) if hits.sum() > 0 else float("nan")
        cell = s.mean(0)  # [layers, scales, kinds]
        li, si, ki = np.unravel_index(int(cell.argmax()), cell.shape)
        return {
            f"{prefix}success_mean": float(s.mean()),
            f"{prefix}confusion_mean": float(c.mean()),
            f"{prefix}confusion_share": conf_share,
            f"{prefix}cells_success_ge_half": float((cell >= 0.5).mean()),
            f"{prefix}best_cell": {
                "layer": self.layers[li],
                "scale": self.scales[si],
                "context": self.kinds[ki],
                "success": float(cell[li, si, ki]),
            },
            f"{prefix}success_by_layer": s.mean((0, 2, 3)).round(4).tolist(),
            f"{prefix}success_by_scale": s.mean((0, 1, 3)).round(4).tolist(),
            f"{prefix}success_by_context": dict(
                zip(self.kinds, s.mean((0, 1, 2)).round(4).tolist(), strict=True)
            ),
            f"{prefix}confusion_by_context": dict(
                zip(self.kinds, c.mean((0, 1, 2)).round(4).tolist(), strict=True)
            ),
            f"{prefix}clean_success": float(self.clean_success.mean()),
            f"{prefix}clean_confusion": float(self.clean_confusion.mean()),
            f"{prefix}top_at_largest_scale": self.top_at_largest_scale(),
        }

    def top_at_largest_scale(self) -> dict[str, dict[str, float]]:
        """Per steered word, the share of each top token over layers × contexts at the largest α."""
        if self.top_words is None:
            return {}
        out = {}
        for wi, w in enumerate(self.words):
            got, counts = np.unique(self.top_words[wi, :, -1], return_counts=True)
            order = np.argsort(-counts, kind="stable")[:4]
            out[w] = {str(got[i]): round(float(counts[i] / counts.sum()), 4) for i in order}
        return out


def residual_norms(lm: LanguageModel, texts: Sequence[str], layers: Sequence[int]) -> list[float]:
    """Median norm of the residual stream after each layer at the last position of ``texts``."""
    sites = [f"blocks.{i}.hook_resid_post" for i in layers]
    got = capture(lm, list(texts), sites, positions=-1)
    return [float(np.median(np.linalg.norm(got.acts[s], axis=1))) for s in sites]


def fragility_map(
    lm,
    directions: dict[str, torch.Tensor],
    layers: Sequence[int],
    scales: Sequence[float] = SCALES,
    contexts: dict[str, list[str]] | None = None,
    siblings: Sequence[str] | None = None,
) -> FragilityMap:
    """Steer along each word's direction over layers × scales × context kinds; see the module docstring."""
    lm = load(lm)
    words = list(directions)
    siblings = list(words if siblings is None else siblings)
    contexts = grammar_contexts() if contexts is None else contexts
    if not words or not layers or not scales or not contexts:
        raise NapkitError("give at least one direction, layer, scale and context kind")
    if any(not np.isfinite(s) for s in scales):
        raise NapkitError("every scale must be finite")
    kinds = list(contexts)
    texts = [t for k in kinds for t in contexts[k]]
    kind_of = np.array([kinds.index(k) for k in kinds for _ in contexts[k]])
    enc = encode(lm, texts)
    ids = dict(zip(siblings, word_ids(lm.tokenizer, siblings), strict=True))
    for w in words:
        if w not in ids:
            ids[w] = word_ids(lm.tokenizer, [w])[0]
    norms = residual_norms(lm, texts, layers)
    modules = [resolve(lm.model, f"blocks.{i}.hook_resid_post", lm.kind).module_name for i in layers]
    shape = (len(words), len(layers), len(scales), len(kinds))
    success, confusion, kl = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    clean_success = np.zeros((len(words), len(kinds)))
    clean_confusion = np.zeros((len(words), len(kinds)))
    top_words = np.empty((len(words), len(layers), len(scales), len(texts)), dtype=object)
    for wi, w in enumerate(words):
        d = torch.as_tensor(directions[w]).float().flatten()
        d = d / d.norm().clamp(min=1e-12)
        others = [ids[s] for s in siblings if s != w]
        for li, (module, norm) in enumerate(zip(modules, norms, strict=True)):
            alphas = [0.0] + [s * norm for s in scales]
            grid = steering_grid(
                lm.model, d, [module], alphas, enc["input_ids"], ids[w], enc["attention_mask"]
            )
            top = grid.top_token[0]  # [alphas, contexts]
            top_words[wi, li] = np.array(
                lm.tokenizer.convert_ids_to_tokens(top[1:].ravel().tolist()), dtype=object
            ).reshape(top[1:].shape)
            hit = top == ids[w]
            sib = np.isin(top, others)
            for ki in range(len(kinds)):
                cols = kind_of == ki
                success[wi, li, :, ki] = hit[1:, cols].mean(1)
                confusion[wi, li, :, ki] = sib[1:, cols].mean(1)
                kl[wi, li, :, ki] = grid.kl[0][1:][:, cols].mean(1)
                clean_success[wi, ki] = hit[0, cols].mean()
                clean_confusion[wi, ki] = sib[0, cols].mean()
    return FragilityMap(
        words,
        list(layers),
        list(scales),
        kinds,
        success,
        confusion,
        kl,
        clean_success,
        clean_confusion,
        top_words,
    )


def plot_fragility(maps: dict[str, FragilityMap], path: str | Path) -> Path:
    """Heat maps (layer × scale) of success and sibling confusion per context kind, one row each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(name, what) for name in maps for what in ("success", "confusion")]
    first = next(iter(maps.values()))
    n_k = len(first.kinds)
    fig, axes = plt.subplots(len(rows), n_k, figsize=(2.6 * n_k + 1, 2.5 * len(rows) + 0.6), squeeze=False)
    fig.subplots_adjust(hspace=0.55, wspace=0.25)
    for r, (name, what) in enumerate(rows):
        m = maps[name]
        data = getattr(m, what).mean(0)  # [layers, scales, kinds]
        for k, ax in enumerate(axes[r]):
            im = ax.imshow(data[:, :, k], vmin=0, vmax=1, cmap="viridis" if what == "success" else "magma",
                           aspect="auto", origin="lower")  # fmt: skip
            for (i, j), v in np.ndenumerate(data[:, :, k]):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.5 else "black")  # fmt: skip
            ax.set_xticks(range(len(m.scales)), [f"{s:g}" for s in m.scales], fontsize=6)
            ax.set_yticks(range(len(m.layers)), [str(i) for i in m.layers], fontsize=6)
            ax.set_title(f"{name}: {what}, {m.kinds[k]} slot", fontsize=7)
            if k == 0:
                ax.set_ylabel("layer", fontsize=7)
            if r == len(rows) - 1:
                ax.set_xlabel("α / median residual norm", fontsize=7)
        fig.colorbar(im, ax=axes[r].tolist(), fraction=0.02)
    return save_png(fig, path, dpi=110)

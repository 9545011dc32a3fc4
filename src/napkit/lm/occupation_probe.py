"""Probe an occupation's stereotyped gender (and the model's preferred pronoun) per layer.

One capture reads the residual stream after every layer at the last position of each
occupation prompt (:mod:`napkit.lm.occupations`), plus the final norm, whose product with
the unembedding rows of " he" and " she" gives the model's own he/she log-odds in the same
forward pass. Probes are standardised logistic regressions (each layer's L2 strength chosen
by the one-standard-error rule of :mod:`napkit.lm.probes`) scored by cross-validation
**split by occupation** (no occupation is in both the training and the test fold), so a
probe scores above chance only if a direction generalises to unseen occupations, not by
recognising an occupation it saw. Two labels: the occupation's stereotyped gender, and the
pronoun the model prefers after the prompt (the sign of its log-odds).

Baselines from the same run: the **control task** (each occupation gets a fixed random
label with the task's class balance, same split: a probe that memorised occupations would
score on it as well), the **random-init model** (same architecture, fresh weights), and
the majority class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napkit.errors import NapkitError
from napkit.lm.capture import capture
from napkit.lm.models import LanguageModel, load, random_init_like
from napkit.lm.occupations import occupation_prompts, pronoun_ids
from napkit.lm.probes import C_GRID, control_labels, fold_accuracies, select_and_score
from napkit.lm.targets import final_norm_name
from napkit.staging import save_png

FOLDS = 6


@dataclass
class OccupationProbe:
    """Per-layer accuracies (held-out occupations) of the probes and their baselines."""

    layers: list[int]
    stereotype: np.ndarray  # [layers] accuracy on the stereotyped gender
    control: np.ndarray  # [layers] accuracy on per-occupation random labels
    preferred: np.ndarray  # [layers] accuracy on the model's preferred pronoun
    random_init: np.ndarray | None  # [layers] stereotype accuracy on the random-init model
    majority_stereotype: float
    majority_preferred: float
    log_odds: np.ndarray  # the model's he/she log-odds per prompt
    n_prompts: int
    n_occupations: int
    c: np.ndarray | None = None  # [layers] the inverse L2 strength the stereotype probe chose

    def best(self, which: str = "stereotype") -> tuple[int, float]:
        acc = getattr(self, which)
        i = int(np.nanargmax(acc))
        return self.layers[i], float(acc[i])

    def to_dict(self) -> dict:
        layer, acc = self.best()
        p_layer, p_acc = self.best("preferred")
        sel = self.stereotype - self.control
        out = {
            "probe_best_layer": layer,
            "probe_best_acc": acc,
            "probe_selectivity": float(np.nanmax(sel)),
            "probe_control_at_best": float(self.control[self.layers.index(layer)]),
            "probe_preferred_best_layer": p_layer,
            "probe_preferred_best_acc": p_acc,
            "majority_stereotype": self.majority_stereotype,
            "majority_preferred": self.majority_preferred,
            "layers": self.layers,
            "stereotype_acc": self.stereotype.round(4).tolist(),
            "control_acc": self.control.round(4).tolist(),
            "preferred_acc": self.preferred.round(4).tolist(),
            "c": None if self.c is None else self.c.tolist(),
            "n_prompts": self.n_prompts,
            "n_occupations": self.n_occupations,
            "he_she_log_odds_mean": float(self.log_odds.mean()),
            "prefers_she_frac": float((self.log_odds < 0).mean()),
        }
        if self.random_init is not None:
            out["probe_random_init_best_acc"] = float(np.nanmax(self.random_init))
            out["random_init_acc"] = self.random_init.round(4).tolist()
        return out


def _group_splits(y: np.ndarray, groups, folds: int, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold

    if len(np.unique(y)) < 2:
        raise NapkitError("a probe needs at least two classes in its labels")
    n_groups = len(np.unique(groups))
    k = min(folds, n_groups)
    if k < 2:
        raise NapkitError(f"cross-validation by group needs at least 2 groups, got {n_groups}")
    return StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)


def grouped_cv_accuracy(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = FOLDS, seed: int = 0, c: float = 1.0
) -> float:
    """Accuracy of the probe with inverse L2 strength ``c``, whole groups held out."""
    y = np.asarray(y)
    return float(fold_accuracies(x, y, c, _group_splits(y, groups, folds, seed), groups).mean())


def grouped_selected_cv_accuracy(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    folds: int = FOLDS,
    seed: int = 0,
    c_grid: Sequence[float] = C_GRID,
) -> tuple[float, float]:
    """(accuracy, c) of the one-SE probe (:mod:`napkit.lm.probes`), whole groups held out."""
    y = np.asarray(y)
    return select_and_score(x, y, _group_splits(y, groups, folds, seed), c_grid, groups)


def _states(lm: LanguageModel, texts: list[str], layers: list[int], batch_size: int):
    """Residual states per layer and the final norm's output (the last hidden state), last position."""
    sites = [f"blocks.{i}.hook_resid_post" for i in layers]
    # the norm's output, weight and bias applied: TL's ln_final.hook_normalized is before them
    final = final_norm_name(lm.model)
    got = capture(lm, texts, sites + [final], positions=-1, batch_size=batch_size)
    for name in sites:
        if not np.isfinite(got.acts[name]).all():
            raise NapkitError(f"activations at {name} hold NaN or infinity")
    return [got.acts[s] for s in sites], got.acts[final]


def probe_occupations(
    lm,
    layers: list[int] | None = None,
    templates=None,
    folds: int = FOLDS,
    seed: int = 0,
    random_init: bool = True,
    batch_size: int = 32,
    c_grid: Sequence[float] = C_GRID,
) -> OccupationProbe:
    """Probe stereotyped gender and the preferred pronoun from every layer's last position.

    Each probe's L2 strength is the one-SE choice over ``c_grid`` per layer; the control
    probe at a layer uses the strength the stereotype probe chose there.
    """
    lm = load(lm)
    n_layers = lm.model.config.num_hidden_layers
    layers = list(range(n_layers)) if layers is None else [int(i) for i in layers]
    bad = [i for i in layers if not 0 <= i < n_layers]
    if bad or not layers:
        raise NapkitError(f"layers must lie in 0..{n_layers - 1}, got {layers}")
    ids = pronoun_ids(lm.tokenizer)
    prompts = occupation_prompts() if templates is None else occupation_prompts(templates)
    groups = np.asarray(prompts.occupations)
    states, final = _states(lm, prompts.texts, layers, batch_size)
    head = lm.model.get_output_embeddings()
    w = head.weight.detach().double().numpy()[ids]  # [2, d]
    odds = final.astype(np.float64) @ (w[0] - w[1])  # logit(he) − logit(she) = log-odds
    if getattr(head, "bias", None) is not None:
        b = head.bias.detach().double().numpy()[ids]
        odds += b[0] - b[1]
    y = prompts.stereotype
    preferred = (odds < 0).astype(int)  # 1: the model prefers " she"
    ctl = control_labels(groups, y, seed)
    if len(np.unique(ctl)) < 2:  # a one-class draw: redraw with the next seed
        ctl = control_labels(groups, y, seed + 1)

    def acc(xs, labels) -> tuple[np.ndarray, np.ndarray]:
        """Accuracies and chosen strengths per layer (NaN for a one-class label)."""
        if len(np.unique(labels)) < 2:
            return np.full(len(xs), np.nan), np.full(len(xs), np.nan)
        return np.array([grouped_selected_cv_accuracy(x, labels, groups, folds, seed, c_grid) for x in xs]).T

    fresh = None
    if random_init:
        fresh_states, _ = _states(random_init_like(lm, seed), prompts.texts, layers, batch_size)
        fresh = acc(fresh_states, y)[0]
    stereotype, c = acc(states, y)
    # the control probe at each layer has the strength the task probe chose there
    if len(np.unique(ctl)) < 2:
        control = np.full(len(states), np.nan)
    else:
        control = np.array(
            [grouped_cv_accuracy(x, ctl, groups, folds, seed, ci) for x, ci in zip(states, c, strict=True)]
        )
    return OccupationProbe(
        layers,
        stereotype,
        control,
        acc(states, preferred)[0],
        fresh,
        float(max(np.mean(y), 1 - np.mean(y))),
        float(max(np.mean(preferred), 1 - np.mean(preferred))),
        odds,
        len(prompts.texts),
        len(np.unique(groups)),
        c,
    )


def plot_probe(res: OccupationProbe, path) -> str:
    """Accuracy per layer of the probes and their baselines, as a PNG."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(res.layers, res.stereotype, "o-", ms=3, label="stereotyped gender")
    ax.plot(res.layers, res.preferred, "s-", ms=3, label="preferred pronoun")
    ax.plot(res.layers, res.control, "x--", ms=3, label="control task")
    if res.random_init is not None:
        ax.plot(res.layers, res.random_init, "^:", ms=3, label="random-init model")
    ax.axhline(res.majority_stereotype, color="grey", lw=0.8, label="majority class")
    ax.set_xlabel("layer (residual stream after it, last position)")
    ax.set_ylabel("accuracy, held-out occupations")
    ax.set_ylim(0.3, 1.12)
    ax.legend(fontsize=7, loc="upper left", ncol=3)
    fig.tight_layout()
    return str(save_png(fig, path, dpi=110))

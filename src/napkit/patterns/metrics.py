"""How well NAPs describe data: recall, precision, δ sweeps, syntactic non-ambiguity.

recall(NAP_c) = |class-c inputs that follow NAP_c| / |class-c inputs| and
precision(NAP_c) = |class-c inputs that follow NAP_c| / |inputs that follow NAP_c|, where
"follow" allows up to γ violated constraints (γ = 0 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napkit.capture import iter_activations
from napkit.capture.recorder import Model
from napkit.errors import NapkitError
from napkit.patterns.membership import pack_signs, violations_per_class
from napkit.patterns.mining import check_labels, check_tolerance, count_patterns
from napkit.patterns.nap import NAPSet, check_napset


@dataclass
class NAPStats:
    """Per-class recall and precision of a NAPSet on some data (NaN where undefined)."""

    labels: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    n_class: np.ndarray  # inputs of each class
    n_follow: np.ndarray  # inputs (any class) following each NAP
    n_hit: np.ndarray  # class-c inputs following NAP_c
    tolerance: int

    def to_dict(self) -> dict:
        clean = lambda a: [None if np.isnan(v) else round(float(v), 6) for v in a]  # noqa: E731
        return {
            "labels": self.labels.tolist(),
            "recall": clean(self.recall),
            "precision": clean(self.precision),
            "n_class": self.n_class.tolist(),
            "n_follow": self.n_follow.tolist(),
            "tolerance": self.tolerance,
        }


class StatsAccumulator:
    """Streams batches of patterns and accumulates the counts behind recall and precision."""

    def __init__(self, naps: NAPSet, tolerance: int = 0) -> None:
        self.naps, self.tolerance = check_napset(naps), check_tolerance(tolerance)
        c = len(naps.labels)
        self.n_class = np.zeros(c, np.int64)
        self.n_follow = np.zeros(c, np.int64)
        self.n_hit = np.zeros(c, np.int64)

    def update(self, packed: np.ndarray, labels: np.ndarray) -> None:
        a, d = self.naps.packed()
        follows = violations_per_class(packed, a, d) <= self.tolerance  # (n, C)
        own = labels[:, None] == self.naps.labels[None, :]  # (n, C)
        self.n_class += own.sum(0)
        self.n_follow += follows.sum(0)
        self.n_hit += (follows & own).sum(0)

    def result(self) -> NAPStats:
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(self.n_class > 0, self.n_hit / self.n_class, np.nan)
            precision = np.where(self.n_follow > 0, self.n_hit / self.n_follow, np.nan)
        return NAPStats(
            self.naps.labels,
            recall,
            precision,
            self.n_class,
            self.n_follow,
            self.n_hit,
            self.tolerance,
        )


def evaluate_many(
    model: Model,
    napsets: Sequence[NAPSet],
    x: np.ndarray,
    y: np.ndarray,
    tolerance: int = 0,
    only_correct: bool = False,
    batch_size: int = 4096,
    progress: bool = True,
) -> list[NAPStats]:
    """Recall and precision of several NAPSets of one model in a single pass over the data."""
    if isinstance(napsets, NAPSet):
        raise NapkitError("napsets must be a list of NAPSets; use nap_stats for one")
    if not napsets:
        return []
    first = check_napset(napsets[0], "each of napsets")
    if len(x) != len(y):
        raise NapkitError(f"{len(x)} inputs but {len(y)} labels")
    from napkit.capture import model_fingerprint

    fingerprint = model_fingerprint(model)
    for n in napsets:
        check_napset(n, "each of napsets")
        n.check_model(fingerprint)
        if (n.layer_names, n.layer_sizes) != (first.layer_names, first.layer_sizes):
            raise NapkitError(
                f"NAP sets to compare must cover the same layers: {list(first.layer_names)} "
                f"and {list(n.layer_names)}"
            )
    accs = [StatsAccumulator(n, tolerance) for n in napsets]
    layers = list(first.layer_names)
    checked = False
    for batch in iter_activations(model, x, layers=layers, batch_size=batch_size, progress=progress):
        if not checked:
            first.check_layers_of(tuple(batch.acts), tuple(a.shape[1] for a in batch.acts.values()))
            y = check_labels(y, batch.logits.shape[1])
            checked = True
        labels = y[batch.start : batch.start + len(batch.logits)]
        packed = pack_signs(batch.signs(layers))
        if only_correct:
            keep = labels == batch.logits.argmax(1)
            packed, labels = packed[keep], labels[keep]
        for acc in accs:
            acc.update(packed, labels)
    return [acc.result() for acc in accs]


def nap_stats(
    model: Model,
    naps: NAPSet,
    x: np.ndarray,
    y: np.ndarray,
    tolerance: int = 0,
    only_correct: bool = False,
    batch_size: int = 4096,
    progress: bool = True,
) -> NAPStats:
    """Recall and precision per class of ``naps`` on ``(x, y)``."""
    return evaluate_many(model, [naps], x, y, tolerance, only_correct, batch_size, progress)[0]


def delta_sweep(
    model: Model,
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    deltas: Sequence[float],
    x_eval: np.ndarray | None = None,
    y_eval: np.ndarray | None = None,
    all_samples: bool = False,
    tolerance: int = 0,
    batch_size: int = 4096,
    progress: bool = True,
) -> list[dict]:
    """Mine once, then recall/precision per class for each δ (on fit data, correct only, and eval data)."""
    if (x_eval is None) != (y_eval is None):
        raise NapkitError("give both x_eval and y_eval, or neither")
    miner = count_patterns(model, x_fit, y_fit, all_samples, batch_size=batch_size, progress=progress)
    napsets = [miner.naps(d) for d in deltas]
    fit = evaluate_many(model, napsets, x_fit, y_fit, tolerance, not all_samples, batch_size, progress)
    ev = (
        evaluate_many(model, napsets, x_eval, y_eval, tolerance, False, batch_size, progress)
        if x_eval is not None
        else [None] * len(napsets)
    )
    rows = []
    for d, n, f, e in zip(deltas, napsets, fit, ev, strict=True):
        rows.append(
            {
                "delta": float(d),
                "naps": n,
                "neurons": n.sizes().tolist(),
                "fit": f,
                "eval": e,
            }
        )
    return rows


def syntactic_disjoint(naps: NAPSet) -> np.ndarray:
    """(C, C) bool: NAP_i and NAP_j are disjoint by syntax (A_i ∩ D_j or D_i ∩ A_j non-empty).

    Such a pair can never be followed by the same input, with no solver needed.
    """
    check_napset(naps)
    a = naps.active.astype(np.int32)
    d = naps.inactive.astype(np.int32)
    clash = (a @ d.T) + (d @ a.T)
    return clash > 0

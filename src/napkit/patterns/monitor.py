"""NAPMonitor: flag inputs at run time whose pattern is off the NAP of their predicted class.

A scikit-learn style outlier detector: ``fit`` mines NAPs, ``score_samples`` is higher for
more normal inputs (minus the number of violated constraints of the predicted class's
NAP), ``predict`` gives +1 (follows within tolerance γ) or -1 (flagged). ``evaluate``
reports the flagged rate, the share of misclassifications caught, AUROCs (against the
max-softmax baseline) and, with held-out classes, novelty detection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.metrics import roc_auc_score

from napkit.capture import iter_activations
from napkit.capture.recorder import Model
from napkit.errors import NapkitError
from napkit.patterns.membership import pack_signs, violations_for
from napkit.patterns.mining import check_labels, check_tolerance, count_patterns
from napkit.patterns.nap import NAPSet, check_napset


@dataclass
class MonitorReport:
    """What a monitor does on labelled data (rates in [0, 1]; AUROC None where undefined)."""

    n: int
    accuracy: float | None
    flagged_rate: float | None
    misclassified_caught: float | None
    correct_flagged: float | None
    auroc: float | None
    max_softmax_auroc: float | None
    novel_flagged: float | None = None
    novelty_auroc: float | None = None
    tolerance: int = 0

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _auroc(positive: np.ndarray, score: np.ndarray) -> float | None:
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, score))


class NAPMonitor(OutlierMixin, BaseEstimator):
    """Run-time monitor of a model against the NAPs of its classes."""

    def __init__(
        self,
        model: Model,
        delta: float = 0.99,
        tolerance: int = 0,
        all_samples: bool = False,
        batch_size: int = 4096,
        progress: bool | str = False,
        scheduler: str | None = None,
    ) -> None:
        self.model = model
        self.delta = delta
        self.tolerance = tolerance
        self.all_samples = all_samples
        self.batch_size = batch_size
        self.progress = progress
        self.scheduler = scheduler  # a dask.distributed address: scan blocks of inputs on its workers

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, classes: list[int] | None = None) -> NAPMonitor:
        """Mine the NAPs from ``(X, y)``; with ``classes`` only those (the rest held out)."""
        if classes is not None:
            keep = np.isin(np.asarray(y), classes)
            X, y = np.asarray(X)[keep], np.asarray(y)[keep]
        miner = count_patterns(
            self.model, X, y, self.all_samples, batch_size=self.batch_size, progress=self.progress
        )
        if classes is None:
            classes = np.flatnonzero(miner.totals).tolist()
        self.naps_ = miner.naps(self.delta, classes)
        return self

    def set_naps(self, naps: NAPSet) -> NAPMonitor:
        """Use NAPs mined elsewhere (a NAP file) instead of fitting."""
        from napkit.capture import model_fingerprint

        check_napset(naps).check_model(model_fingerprint(self.model))
        self.naps_ = naps
        return self

    # ---- scoring ---------------------------------------------------------------------------
    def _check_fitted(self) -> NAPSet:
        if not hasattr(self, "naps_"):
            raise NapkitError("the monitor is not fitted: call fit() or set_naps() first")
        check_tolerance(self.tolerance)
        return self.naps_

    def scan(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(violations of the predicted class's NAP, predictions, max softmax) per input.

        An input predicted as a class that has no NAP gets ``n_neurons + 1`` violations.
        With ``scheduler`` set, blocks of ``batch_size`` inputs are scanned on the cluster.
        """
        naps = self._check_fitted()
        if self.scheduler is not None:
            return self._scan_on_cluster(X, naps)
        a, d = naps.packed()
        row_of = np.full(max(int(naps.labels.max()) + 1, 1), -1, np.int64)
        row_of[naps.labels] = np.arange(len(naps.labels))
        outs = []
        layers = list(naps.layer_names)
        for batch in iter_activations(self.model, X, layers, self.batch_size, progress=self.progress):
            self.n_outputs_ = batch.logits.shape[1]
            pred = batch.logits.argmax(1)
            rows = np.where(pred < len(row_of), row_of[np.minimum(pred, len(row_of) - 1)], -1)
            v = violations_for(pack_signs(batch.signs(layers)), a, d, np.maximum(rows, 0))
            v[rows < 0] = naps.n_neurons + 1
            z = batch.logits - batch.logits.max(1, keepdims=True)
            soft = 1.0 / np.exp(z).sum(1)
            outs.append((v, pred, soft))
        if not outs:
            return np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0)
        return tuple(np.concatenate(parts) for parts in zip(*outs, strict=True))  # type: ignore[return-value]

    def _scan_on_cluster(self, X: np.ndarray, naps: NAPSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from napkit.cluster import map_on_cluster
        from napkit.progress import progress_bar

        blocks = [X[lo : lo + self.batch_size] for lo in range(0, len(X), self.batch_size)]
        if not blocks:
            return np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0)
        with progress_bar(len(blocks), self.progress if isinstance(self.progress, str) else "scanning",
                          bool(self.progress)) as advance:
            parts = map_on_cluster(self.scheduler, scan_block, blocks, self.model, naps, self.batch_size,
                                   on_done=advance)
        self.n_outputs_ = parts[0][3]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Higher is more normal: minus the number of violated constraints."""
        return -self.scan(X)[0].astype(np.float64)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Positive for inputs that follow within γ, negative for flagged ones."""
        return self.score_samples(X) + self.tolerance + 0.5

    def predict(self, X: np.ndarray) -> np.ndarray:
        """+1 for inputs that follow their predicted class's NAP within γ, -1 for flagged."""
        return np.where(self.scan(X)[0] <= self.tolerance, 1, -1)

    # ---- evaluation -----------------------------------------------------------------------------
    def evaluate(self, X: np.ndarray, y: np.ndarray, novel_classes: list[int] | None = None) -> MonitorReport:
        """Flagged rate, misclassifications caught and AUROCs on labelled data."""
        y = np.asarray(y)
        if y.dtype.kind not in "biuf" or y.ndim != 1:
            raise NapkitError(
                f"labels must be a 1-D array of class indices, got {y.dtype} of shape {y.shape}"
            )
        v, pred, soft = self.scan(X)
        n_out = getattr(self, "n_outputs_", int(max(pred.max(initial=0), y.max(initial=0))) + 1)
        if novel_classes:  # novel classes may lie beyond what the model can output
            n_out = max(n_out, max(novel_classes) + 1)
        y = check_labels(y, n_out)
        if len(y) != len(pred):
            raise NapkitError(f"{len(pred)} inputs but {len(y)} labels")
        novel = np.isin(y, novel_classes) if novel_classes else np.zeros(len(y), bool)
        known = ~novel
        flagged = v > self.tolerance
        wrong = (pred != y) & known
        right = (pred == y) & known
        mean = lambda m: float(m.mean()) if m.size else None  # noqa: E731
        return MonitorReport(
            n=int(len(y)),
            accuracy=float(right[known].mean()) if known.any() else None,
            flagged_rate=float(flagged[known].mean()) if known.any() else None,
            misclassified_caught=mean(flagged[wrong]),
            correct_flagged=mean(flagged[right]),
            auroc=_auroc(wrong[known], v[known].astype(float)),
            max_softmax_auroc=_auroc(wrong[known], -soft[known]),
            novel_flagged=mean(flagged[novel]) if novel.any() else None,
            novelty_auroc=_auroc(novel, v.astype(float)) if novel.any() else None,
            tolerance=int(self.tolerance),
        )


def scan_block(block: np.ndarray, model: Model, naps: NAPSet, batch_size: int) -> tuple:
    """One block of a monitor's scan (on a cluster worker): violations, predictions, max softmax
    and the number of outputs."""
    mon = NAPMonitor(model, batch_size=batch_size).set_naps(naps)
    return (*mon.scan(block), mon.n_outputs_)

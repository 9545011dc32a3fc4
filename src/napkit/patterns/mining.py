"""Mining NAPs by the δ rule, streaming: counts per class, never all activations in memory.

For class c with samples S_c (by default only those the network classifies correctly)
and p_j the fraction of S_c on which neuron j is active: j ∈ A iff p_j ≥ δ and j ∈ D iff
1 − p_j ≥ δ, 0.5 < δ ≤ 1. The comparison is done in exact integer arithmetic on the
counts, with δ read as the decimal it is written as (0.99 means 99/100).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from napkit.capture import ActivationStore
from napkit.errors import NapkitError
from napkit.patterns.membership import as_signs
from napkit.patterns.nap import NAPSet

if TYPE_CHECKING:  # torch loads only where a model runs, not to mine a store
    from napkit.capture.layers import LayerSpec
    from napkit.capture.recorder import Model

CHUNKS_PER_TASK = 8  # store chunks counted by one cluster task: fewer, larger tasks amortise their overhead


def check_delta(delta: float) -> Fraction:
    """δ as an exact fraction; refuses values outside (0.5, 1]."""
    try:
        d = float(delta)
    except (TypeError, ValueError):
        raise NapkitError(f"δ must be a number, not {delta!r}") from None
    if not (0.5 < d <= 1.0):
        raise NapkitError(f"δ must satisfy 0.5 < δ ≤ 1, got {delta}")
    return Fraction(repr(d))


def check_tolerance(tolerance: int) -> int:
    """The Hamming tolerance γ as an int; refuses negatives, fractions, NaN and non-numbers."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | np.integer | float | np.floating):
        raise NapkitError(f"tolerance γ must be a whole number ≥ 0, got {tolerance!r}")
    if not (tolerance >= 0 and float(tolerance).is_integer()):
        raise NapkitError(f"tolerance γ must be a whole number ≥ 0, got {tolerance!r}")
    return int(tolerance)


def check_labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels as int64, refusing non-integers and values outside [0, n_classes)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise NapkitError(f"labels must be a 1-D array, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise NapkitError("labels must be whole numbers")
    elif y.dtype.kind not in "iub":
        raise NapkitError(f"labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise NapkitError(f"labels must lie in 0..{n_classes - 1} (the model has {n_classes} outputs)")
    return y


class NAPMiner:
    """Accumulates, per class, how often each neuron is active; yields NAPs for any δ."""

    def __init__(
        self,
        n_classes: int,
        layer_names: tuple[str, ...],
        layer_sizes: tuple[int, ...],
        fingerprint: str,
        all_samples: bool = False,
    ) -> None:
        self.n_classes = int(n_classes)
        self.layer_names, self.layer_sizes = tuple(layer_names), tuple(int(s) for s in layer_sizes)
        if self.n_classes < 1:
            raise NapkitError(f"a miner needs at least one class, got n_classes={n_classes}")
        if len(self.layer_names) != len(self.layer_sizes) or min(self.layer_sizes, default=0) < 0:
            raise NapkitError(
                f"layer names {list(self.layer_names)} and sizes {list(self.layer_sizes)} do not match"
            )
        self.fingerprint, self.all_samples = fingerprint, all_samples
        self.counts = np.zeros((self.n_classes, sum(self.layer_sizes)), dtype=np.int64)
        self.totals = np.zeros(self.n_classes, dtype=np.int64)

    def update(self, signs: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> None:
        """Add a batch of on/off patterns (n, neurons) with their labels and predictions."""
        labels = check_labels(labels, self.n_classes)
        signs = as_signs(signs)
        if signs.shape != (len(labels), self.counts.shape[1]):
            raise NapkitError(
                f"patterns of shape {signs.shape} do not match "
                f"{len(labels)} labels × {self.counts.shape[1]} neurons"
            )
        predictions = np.asarray(predictions)
        if predictions.shape != labels.shape:
            raise NapkitError(f"{predictions.size} predictions for {len(labels)} labels")
        kept = labels if self.all_samples else np.where(labels == predictions, labels, -1)
        present = np.bincount(kept[kept >= 0], minlength=self.n_classes)
        as_bytes = np.ascontiguousarray(signs, dtype=bool).view(np.uint8)
        for c in np.flatnonzero(present):  # a loop over classes; each sum is vectorised
            self.counts[c] += as_bytes[kept == c].sum(axis=0, dtype=np.int64)
        self.totals += present

    def naps(self, delta: float, classes: list[int] | None = None) -> NAPSet:
        """The NAP of every class (or of ``classes``) at δ; a class with no samples is an error."""
        d = check_delta(delta)
        labels = np.arange(self.n_classes) if classes is None else np.asarray(classes, dtype=np.int64)
        what = "samples" if self.all_samples else "correctly classified samples"
        for c in labels.tolist():
            if not (0 <= c < self.n_classes):
                raise NapkitError(f"class {c} is not an output of the model (0..{self.n_classes - 1})")
            if self.totals[c] == 0:
                raise NapkitError(f"class {c} has no {what} to mine a NAP from")
        counts, totals = self.counts[labels], self.totals[labels][:, None]
        # p >= δ  <=>  count >= ceil(δ·total), computed in Python integers (no overflow)
        need = np.array([[-((-d.numerator * int(t)) // d.denominator)] for t in totals[:, 0]], dtype=np.int64)
        active = counts >= need
        inactive = (totals - counts) >= need
        return NAPSet(
            self.layer_names,
            self.layer_sizes,
            self.fingerprint,
            float(delta),
            labels,
            active,
            inactive,
            self.totals[labels],
            self.all_samples,
        )


def count_patterns(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    all_samples: bool = False,
    layers: LayerSpec = None,
    batch_size: int = 4096,
    progress: bool = True,
    miner: NAPMiner | None = None,
) -> NAPMiner:
    """One streaming pass of ``model`` over ``(x, y)``; returns the filled miner.

    Pass the ``miner`` of an earlier call to keep counting over data that comes in parts
    (files read one at a time, a stream): memory stays bounded by one batch.
    """
    if len(x) != len(y):
        raise NapkitError(f"{len(x)} inputs but {len(y)} labels")
    if not len(x):
        raise NapkitError("no samples to mine from")
    from napkit.capture import iter_activations, model_fingerprint

    fp = model_fingerprint(model)
    if miner is not None and miner.fingerprint != fp:
        raise NapkitError("the miner to continue was filled from another model")
    for batch in iter_activations(model, x, layers, batch_size, progress=progress):
        if batch.start == 0:
            names = tuple(batch.acts)
            sizes = tuple(a.shape[1] for a in batch.acts.values())
            if miner is None:
                miner = NAPMiner(batch.logits.shape[1], names, sizes, fp, all_samples)
            elif (names, sizes) != (miner.layer_names, miner.layer_sizes):
                raise NapkitError(f"the miner counts layers {list(miner.layer_names)}, not {list(names)}")
            y = check_labels(y, miner.n_classes)
        rows = slice(batch.start, batch.start + len(batch.logits))
        miner.update(batch.signs(), y[rows], batch.logits.argmax(axis=1))
    assert miner is not None
    return miner


def mine(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    delta: float,
    all_samples: bool = False,
    layers: LayerSpec = None,
    classes: list[int] | None = None,
    batch_size: int = 4096,
    progress: bool = True,
) -> NAPSet:
    """Mine one NAP per class from ``model``'s activations over ``(x, y)`` at δ."""
    check_delta(delta)
    miner = count_patterns(model, x, y, all_samples, layers, batch_size, progress)
    return miner.naps(delta, classes)


def mine_store(
    store: ActivationStore,
    delta: float,
    n_classes: int | None = None,
    all_samples: bool = False,
    classes: list[int] | None = None,
    scheduler: str | None = None,
) -> NAPSet:
    """Mine NAPs from a recorded ActivationStore (one pass over its chunks).

    With ``scheduler`` (a dask.distributed address) the workers count the chunks, reading
    the store from the same path, and the counts are summed here: the NAPs are identical.
    """
    check_delta(delta)
    if not isinstance(store, ActivationStore):
        raise NapkitError(
            f"store must be an ActivationStore (ActivationStore.open), not {type(store).__name__}"
        )
    if store.n_committed == 0:
        raise NapkitError(f"the store at {store.path} holds no committed rows")
    if n_classes is None:
        n_classes = int(max(store.labels().max(), store.predictions().max())) + 1
    miner = NAPMiner(
        n_classes,
        tuple(store.layer_names),
        tuple(store.layer_sizes),
        store.fingerprint,
        all_samples,
    )
    if scheduler is None:
        for signs, labels, preds in store.iter_signs():
            miner.update(signs, labels, preds)
    else:
        from napkit.cluster import map_on_cluster

        n, step = store.n_committed, store.chunk_rows * CHUNKS_PER_TASK
        parts = [(lo, min(n, lo + step)) for lo in range(0, n, step)]
        for counts, totals in map_on_cluster(
            scheduler, count_store_rows, parts, str(store.path), n_classes, all_samples
        ):
            miner.counts += counts
            miner.totals += totals
    return miner.naps(delta, classes)


def count_store_rows(
    rows: tuple[int, int], path: str, n_classes: int, all_samples: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class activation counts and sample totals of rows ``[lo, hi)`` of the store at ``path``.

    One part of a mining pass; sums of parts equal the counts of the whole pass.
    """
    store = ActivationStore.open(path)
    miner = NAPMiner(n_classes, tuple(store.layer_names), tuple(store.layer_sizes), store.fingerprint,
                     all_samples)
    for signs, labels, preds in store.iter_signs(start=rows[0], stop=rows[1]):
        miner.update(signs, labels, preds)
    return miner.counts, miner.totals

"""Capture a model's activations over a data set into an ActivationStore, resumably."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from napkit.arrays import real_numbers
from napkit.capture.layers import LayerSpec
from napkit.capture.recorder import Model, as_torch, iter_activations, model_fingerprint
from napkit.capture.store import ActivationStore
from napkit.errors import NapkitError


def data_fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the inputs and labels: a resumed capture must see the same data."""
    h = hashlib.sha256()
    for name, a in (("inputs", np.ascontiguousarray(x)), ("labels", np.ascontiguousarray(y))):
        real_numbers(a, name)  # an object array would hash its pointers
        h.update(str((a.shape, a.dtype.str)).encode())
        if a.size:
            h.update(memoryview(a).cast("B"))  # no copy of the data
    return h.hexdigest()


def record(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    layers: LayerSpec = None,
    mode: str = "float32",
    batch_size: int = 4096,
    progress: bool = True,
) -> ActivationStore:
    """Record ``model``'s layers over ``(x, y)`` into a store at ``path``.

    If ``path`` holds an unfinished store of the same model and data, recording resumes
    after its last committed row; a store of another model or data is refused.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim != 1:
        raise NapkitError(
            f"record needs one row of inputs per label and 1-D labels, got {x.shape} and {y.shape}"
        )
    if len(x) != len(y):
        raise NapkitError(f"{len(x)} inputs but {len(y)} labels")
    if not len(x):
        raise NapkitError("no data to record")
    floats = y.dtype.kind == "f"
    whole = y.dtype.kind in "biu" or (floats and np.isfinite(y).all() and (y == np.round(y)).all())
    if not whole:
        raise NapkitError(f"labels must be whole numbers, got dtype {y.dtype}")
    if y.min() < 0:
        raise NapkitError(f"labels must be class indices >= 0, got {y.min()}")
    fp, dfp = model_fingerprint(model), data_fingerprint(x, y)
    p = Path(path)
    store: ActivationStore | None = None
    start = 0
    if (p / "zarr.json").exists():
        store = ActivationStore.open(p, fingerprint=fp, mode="r+")
        if store.data_fingerprint != dfp:
            raise NapkitError(f"the store at {p} was recorded from other data; choose a new path")
        if store.mode != mode:
            raise NapkitError(f"the store at {p} holds {store.mode} activations, not {mode}")
        asked = list(as_torch(model, layers)[1].values())
        if asked != store.layer_names:  # checked here too: a complete store returns below
            raise NapkitError(f"the store at {p} records layers {store.layer_names}, not {asked}")
        start = store.n_committed
        batch_size = store.chunk_rows
        if isinstance(layers, list | tuple) and list(layers) != store.layer_names:
            raise NapkitError(f"the store at {p} records layers {store.layer_names}, not {list(layers)}")
        if store.complete:
            return store
    for batch in iter_activations(model, x, layers, batch_size, start=start, progress=progress):
        if store is None:
            if y.max() >= batch.logits.shape[1]:
                raise NapkitError(
                    f"labels must lie in 0..{batch.logits.shape[1] - 1} (the model has "
                    f"{batch.logits.shape[1]} outputs), got {y.max()}"
                )
            sizes = {k: a.shape[1] for k, a in batch.acts.items()}
            store = ActivationStore.create(p, sizes, len(x), fp, dfp, mode, chunk_rows=batch_size)
        elif list(batch.acts) != store.layer_names:
            raise NapkitError(f"the store at {p} records layers {store.layer_names}, not {list(batch.acts)}")
        rows = slice(batch.start, batch.start + len(batch.logits))
        store.append(batch.acts, y[rows], batch.logits.argmax(axis=1))
    if store is None:
        raise NapkitError("no data to record")
    return store

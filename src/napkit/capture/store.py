"""ActivationStore: recorded activations on disk as a zarr v3 group.

One array per layer (samples × units, float32 values or bit-packed signs), plus
``labels`` and ``predictions``. Rows are written a chunk at a time and only then
counted: the number of committed rows lives in a small JSON file replaced atomically, so
a crash never leaves a half-written chunk counted and a new capture resumes after the
last committed row. Arrays open as dask arrays for out-of-core work.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr

from napkit.errors import NapkitError

STORE_FORMAT = "napkit.store/1"
PROGRESS_FILE = "napkit-progress.json"
MODES = ("float32", "bits")


class ActivationStore:
    """A zarr group of per-layer activations with labels, predictions and a commit count."""

    def __init__(self, path: str | Path, group: zarr.Group) -> None:
        self.path = Path(path)
        self.group = group
        attrs = dict(group.attrs)
        if attrs.get("format") != STORE_FORMAT:
            raise NapkitError(f"{path} is not a napkit activation store")
        self.fingerprint: str = attrs["fingerprint"]
        self.data_fingerprint: str = attrs.get("data_fingerprint", "")
        self.layer_names: list[str] = list(attrs["layers"])
        self.layer_sizes: list[int] = [int(s) for s in attrs["sizes"]]
        self.mode: str = attrs["mode"]
        self.n_total: int = int(attrs["n_total"])
        self.chunk_rows: int = int(attrs["chunk_rows"])

    # ---- creation and opening ------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        layers: dict[str, int],
        n_total: int,
        fingerprint: str,
        data_fingerprint: str = "",
        mode: str = "float32",
        chunk_rows: int = 4096,
    ) -> ActivationStore:
        """A new, empty store with room for ``n_total`` rows (refuses to overwrite one)."""
        if mode not in MODES:
            raise NapkitError(f"store mode must be one of {MODES}, not {mode!r}")
        p = Path(path)
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise NapkitError(f"{p} exists and is not an empty folder; choose a new store path")
        # built beside its final place and renamed at the end: an interrupted creation
        # leaves no half-made store behind, only this folder, which the next try replaces
        tmp = p.with_name(p.name + ".creating")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            g = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        except OSError as exc:
            raise NapkitError(f"cannot create a store at {p}: {exc.strerror or exc}") from None
        rows = max(1, min(chunk_rows, n_total or 1))
        for name, units in layers.items():
            width, dtype = (units, "float32") if mode == "float32" else ((units + 7) // 8, "uint8")
            g.create_array(name, shape=(n_total, width), chunks=(rows, width), dtype=dtype)
        for name in ("labels", "predictions"):
            g.create_array(name, shape=(n_total,), chunks=(rows,), dtype="int64", fill_value=-1)
        g.attrs.update(
            {
                "format": STORE_FORMAT,
                "fingerprint": fingerprint,
                "data_fingerprint": data_fingerprint,
                "layers": list(layers),
                "sizes": [int(u) for u in layers.values()],
                "mode": mode,
                "n_total": int(n_total),
                "chunk_rows": rows,
            }
        )
        cls(tmp, g)._write_committed(0)
        try:
            if p.exists():
                p.rmdir()  # an empty folder
            os.replace(tmp, p)
        except OSError as exc:
            raise NapkitError(f"cannot create a store at {p}: {exc.strerror or exc}") from None
        return cls(p, zarr.open_group(str(p), mode="r+", zarr_format=3))

    @classmethod
    def open(cls, path: str | Path, fingerprint: str | None = None, mode: str = "r") -> ActivationStore:
        """Open a store; with ``fingerprint``, refuse one recorded from another model."""
        p = Path(path)
        if not (p / "zarr.json").exists():
            raise NapkitError(f"no activation store at {p}")
        try:
            g = zarr.open_group(str(p), mode=mode, zarr_format=3)
        except Exception as exc:
            raise NapkitError(f"{p} is not a readable activation store: {exc}") from None
        store = cls(p, g)
        if fingerprint is not None and fingerprint != store.fingerprint:
            raise NapkitError(f"the store at {p} was recorded from another model (fingerprint differs)")
        return store

    # ---- commit count ----------------------------------------------------------------------
    @property
    def n_committed(self) -> int:
        try:
            return int(json.loads((self.path / PROGRESS_FILE).read_text())["committed"])
        except (OSError, ValueError, KeyError) as exc:
            raise NapkitError(f"{self.path}: commit record is missing or corrupt ({exc})") from None

    def _write_committed(self, n: int) -> None:
        tmp = self.path / (PROGRESS_FILE + ".tmp")
        tmp.write_text(json.dumps({"committed": int(n)}))
        os.replace(tmp, self.path / PROGRESS_FILE)

    @property
    def complete(self) -> bool:
        return self.n_committed >= self.n_total

    # ---- writing -----------------------------------------------------------------------------
    def append(self, acts: dict[str, np.ndarray], labels: np.ndarray, predictions: np.ndarray) -> int:
        """Write the next rows of every array, then count them; returns the new commit count."""
        lo = self.n_committed
        b = len(labels)
        if lo + b > self.n_total:
            raise NapkitError(f"store holds {self.n_total} rows; cannot append {b} after {lo}")
        if set(acts) != set(self.layer_names):
            raise NapkitError(f"store layers are {self.layer_names}, got {sorted(acts)}")
        for name, units in zip(self.layer_names, self.layer_sizes, strict=True):
            a = acts[name]
            if a.shape != (b, units):
                raise NapkitError(f"layer {name!r}: expected shape {(b, units)}, got {a.shape}")
            self.group[name][lo : lo + b] = (
                a.astype(np.float32) if self.mode == "float32" else np.packbits(a > 0, axis=1)
            )
        self.group["labels"][lo : lo + b] = labels
        self.group["predictions"][lo : lo + b] = predictions
        self._write_committed(lo + b)
        return lo + b

    # ---- reading -----------------------------------------------------------------------------
    def labels(self) -> np.ndarray:
        return self.group["labels"][: self.n_committed]

    def predictions(self) -> np.ndarray:
        return self.group["predictions"][: self.n_committed]

    def layer(self, name: str) -> np.ndarray:
        """Committed rows of one layer as stored (float32 values or packed bits)."""
        if name not in self.layer_names:
            raise NapkitError(f"no layer {name!r} in the store; it has {self.layer_names}")
        return self.group[name][: self.n_committed]

    def signs(self, name: str) -> np.ndarray:
        """Committed on/off pattern of one layer as booleans, whichever way it is stored.

        This is what ``napkit.codes`` takes; ``layer(name)`` of a float32 store is what
        ``napkit.geometry`` takes.
        """
        block = self.layer(name)
        if self.mode == "bits":
            units = self.layer_sizes[self.layer_names.index(name)]
            return np.unpackbits(block, axis=1, count=units).astype(bool)
        return block > 0

    def to_dask(self, name: str):
        """One layer's committed rows as a lazy dask array (chunks as stored)."""
        import dask.array as da

        if name not in self.layer_names and name not in ("labels", "predictions"):
            raise NapkitError(f"no layer {name!r} in the store; it has {self.layer_names}")
        return da.from_zarr(self.group[name])[: self.n_committed]

    def iter_signs(
        self, batch_rows: int | None = None, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(signs of all layers concatenated, labels, predictions) for committed rows, in batches.

        ``start``/``stop`` restrict it to a range of rows (a part mined on a cluster worker).
        """
        n = self.n_committed if stop is None else min(stop, self.n_committed)
        step = batch_rows or self.chunk_rows
        for lo in range(start, n, step):
            hi = min(n, lo + step)
            parts = []
            for name, units in zip(self.layer_names, self.layer_sizes, strict=True):
                block = self.group[name][lo:hi]
                if self.mode == "bits":
                    parts.append(np.unpackbits(block, axis=1, count=units).astype(bool))
                else:
                    parts.append(block > 0)
            yield (
                np.concatenate(parts, axis=1),
                self.group["labels"][lo:hi],
                self.group["predictions"][lo:hi],
            )

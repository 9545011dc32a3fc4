"""ActivationStore: recorded activations on disk as a zarr v3 group.

One array per layer (samples × units, float32 values or bit-packed signs), plus
``labels`` and ``predictions``. Rows are written a chunk at a time and only then
counted: the number of committed rows lives in a small JSON file replaced atomically, so
a crash never leaves a half-written chunk counted and a new capture resumes after the
last committed row. Arrays open as dask arrays for out-of-core work.

Opening checks that every chunk the committed rows wrote is still there, and every read
turns a chunk or metadata file that no longer decodes into one NapkitError naming it
(see :mod:`napkit.capture.integrity`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr

from napkit.capture.integrity import GuardedArray, damaged, missing_chunks, read, reading_metadata
from napkit.errors import NapkitError
from napkit.staging import check_parent, move_into_place, staging_folder

STORE_FORMAT = "napkit.store/1"
PROGRESS_FILE = "napkit-progress.json"
MODES = ("float32", "bits")
# set on stores whose every chunk is written, even one equal to the fill value (zarr skips
# those by default), so that a missing chunk file always means damage
ALL_CHUNKS_WRITTEN = "all_chunks_written"


class ActivationStore:
    """A zarr group of per-layer activations with labels, predictions and a commit count."""

    def __init__(self, path: str | Path, group: zarr.Group) -> None:
        self.path = Path(path)
        self.group = group
        self._arrays: dict[str, zarr.Array] = {}
        attrs = dict(group.attrs)
        if attrs.get("format") != STORE_FORMAT:
            raise NapkitError(f"{path} is not a napkit activation store")
        try:
            self.fingerprint: str = attrs["fingerprint"]
            self.data_fingerprint: str = attrs.get("data_fingerprint", "")
            self.layer_names: list[str] = list(attrs["layers"])
            self.layer_sizes: list[int] = [int(s) for s in attrs["sizes"]]
            self.mode: str = attrs["mode"]
            self.n_total: int = int(attrs["n_total"])
            self.chunk_rows: int = int(attrs["chunk_rows"])
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged(self.path, "zarr.json lacks a valid store field", exc) from None
        self.all_chunks_written = bool(attrs.get(ALL_CHUNKS_WRITTEN, False))

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
        check_parent(p)
        # built beside its final place and renamed at the end: an interrupted or failed
        # creation leaves neither a half-made store nor the staging folder behind
        tmp = staging_folder(p)
        try:
            g = zarr.open_group(str(tmp), mode="w", zarr_format=3)
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
                    ALL_CHUNKS_WRITTEN: True,
                }
            )
            cls(tmp, g)._write_committed(0)
            move_into_place(tmp, p, last="zarr.json")  # into an empty folder; ".", a link: filled
        except OSError as exc:
            raise NapkitError(f"cannot create a store at {p}: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # after the rename: a no-op
        return cls(p, zarr.open_group(str(p), mode="r+", zarr_format=3))

    @classmethod
    def open(cls, path: str | Path, fingerprint: str | None = None, mode: str = "r") -> ActivationStore:
        """Open a store; with ``fingerprint``, refuse one recorded from another model."""
        if mode not in ("r", "r+"):
            raise NapkitError(f"a store opens read-only ('r') or to append ('r+'), not {mode!r}")
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
        store.check_chunks()
        return store

    def check_chunks(self) -> None:
        """Refuse the store if a chunk of its committed rows is missing (zarr would fill it in).

        Only rows counted as committed are checked, so a capture that was interrupted (and
        may have left later chunks unwritten or half-written) still opens and resumes. A
        store made before every chunk was written keeps the check on arrays where a missing
        chunk cannot be a skipped all-fill one (labels, predictions, float32 layers).
        """
        n = self.n_committed
        names = ["labels", "predictions"]
        if self.all_chunks_written or self.mode == "float32":
            names = [*self.layer_names, *names]
        for name in names:
            gone = missing_chunks(self.path / name, self._array(name), n)
            if gone:
                raise damaged(self.path, f"{len(gone)} chunk(s) of {name} are missing (e.g. {gone[0]})")

    def _array(self, name: str) -> zarr.Array:
        """Array ``name``, opened once; it writes every chunk, even one equal to the fill value."""
        if name not in self._arrays:
            with reading_metadata(self.path, name):
                self._arrays[name] = self.group[name].with_config({"write_empty_chunks": True})
        return self._arrays[name]

    def _rows(self, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows ``[lo, hi)`` (default: all committed) of array ``name``, read through the damage check."""
        hi = self.n_committed if hi is None else hi
        return read(self.path, name, self._array(name), slice(lo, hi))

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
            self._array(name)[lo : lo + b] = (
                a.astype(np.float32) if self.mode == "float32" else np.packbits(a > 0, axis=1)
            )
        self._array("labels")[lo : lo + b] = labels
        self._array("predictions")[lo : lo + b] = predictions
        self._write_committed(lo + b)
        return lo + b

    # ---- reading -----------------------------------------------------------------------------
    def labels(self) -> np.ndarray:
        return self._rows("labels")

    def predictions(self) -> np.ndarray:
        return self._rows("predictions")

    def layer(self, name: str) -> np.ndarray:
        """Committed rows of one layer as stored (float32 values or packed bits)."""
        if name not in self.layer_names:
            raise NapkitError(f"no layer {name!r} in the store; it has {self.layer_names}")
        return self._rows(name)

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
        array = self._array(name)
        lazy = da.from_array(
            GuardedArray(self.path, name, array),
            chunks=array.chunks,
            name=f"napkit-store-{self.path.resolve()}-{name}-{self.n_committed}",
            asarray=False,
            lock=False,
        )
        return lazy[: self.n_committed]

    def iter_signs(
        self, batch_rows: int | None = None, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(signs of all layers concatenated, labels, predictions) for committed rows, in batches.

        ``start``/``stop`` restrict it to a range of rows (a part mined on a cluster worker).
        """
        if batch_rows is not None and not (isinstance(batch_rows, int | np.integer) and batch_rows >= 1):
            raise NapkitError(f"batch_rows must be a whole number >= 1, got {batch_rows!r}")
        if start < 0 or (stop is not None and stop < start):
            raise NapkitError(f"rows {start}..{stop} are not a range of the store's rows")
        n = self.n_committed if stop is None else min(stop, self.n_committed)
        step = batch_rows or self.chunk_rows
        for lo in range(start, n, step):
            hi = min(n, lo + step)
            parts = []
            for name, units in zip(self.layer_names, self.layer_sizes, strict=True):
                block = self._rows(name, lo, hi)
                if self.mode == "bits":
                    parts.append(np.unpackbits(block, axis=1, count=units).astype(bool))
                else:
                    parts.append(block > 0)
            yield (
                np.concatenate(parts, axis=1),
                self._rows("labels", lo, hi),
                self._rows("predictions", lo, hi),
            )

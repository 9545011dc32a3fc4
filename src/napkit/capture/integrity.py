"""Refuse a damaged ActivationStore with one clear error instead of a zarr traceback or silent fills.

Two kinds of damage reach a reader: a chunk or array ``zarr.json`` that no longer decodes
(truncated, overwritten), which zarr reports as a codec, JSON or OS error; and a chunk file
that is gone, which zarr would read back as the fill value. The first is caught where the
store reads from zarr and named (array and chunk); the second is found by listing each
array's folder against the chunks the committed rows must have written.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import zarr

from napkit.errors import NapkitError

# what zarr and its codecs raise for bytes or metadata they cannot decode (zstd: RuntimeError,
# JSON: ValueError, a missing or malformed metadata field: KeyError/TypeError, a file: OSError)
READ_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError)


def damaged(path: Path, what: str, exc: BaseException | None = None) -> NapkitError:
    """The one error a damaged store gives: which store, which part, and zarr's reason."""
    reason = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return NapkitError(f"store {path} is damaged: {what}{reason}")


@contextmanager
def reading_metadata(path: Path, name: str) -> Iterator[None]:
    """Turn a failure to open array ``name`` (its zarr.json) into a NapkitError."""
    try:
        yield
    except READ_ERRORS as exc:
        raise damaged(path, f"{name}/zarr.json cannot be read", exc) from None


def read(path: Path, name: str, array: zarr.Array, key=slice(None)) -> np.ndarray:
    """``array[key]``; a chunk that does not decode becomes a NapkitError naming it."""
    try:
        return array[key]
    except READ_ERRORS as exc:
        rows = key[0] if isinstance(key, tuple) else key
        lo, hi, _ = rows.indices(array.shape[0]) if isinstance(rows, slice) else (0, array.shape[0], 1)
        raise damaged(path, f"chunk {name}/{_bad_chunk(array, lo, hi)} cannot be decoded", exc) from None


def _bad_chunk(array: zarr.Array, lo: int, hi: int) -> str:
    """Key of the first chunk in rows ``[lo, hi)`` that fails to read (only on the error path)."""
    rows = array.chunks[0]
    for i in range(lo // rows, (max(hi, lo + 1) - 1) // rows + 1):
        try:
            array[i * rows : (i + 1) * rows]
        except READ_ERRORS:
            for rest in itertools.product(*(range(n) for n in array.cdata_shape[1:])):
                try:
                    array.blocks[(i, *rest)]
                except READ_ERRORS:
                    return _key(array, (i, *rest))
            return _key(array, (i,) + (0,) * (array.ndim - 1))
    return f"in rows {lo}-{hi}"


def _key(array: zarr.Array, coords: tuple[int, ...]) -> str:
    return array.metadata.chunk_key_encoding.encode_chunk_key(coords)


def missing_chunks(folder: Path, array: zarr.Array, n_rows: int) -> list[str]:
    """Chunk keys that rows ``[0, n_rows)`` of ``array`` must have written but ``folder`` lacks.

    One directory listing per chunk folder (``os.walk``), compared as sets: cost grows with
    the number of chunks, not of rows.
    """
    rows = array.chunks[0]
    n_chunks = -(-n_rows // rows)
    if n_chunks == 0:
        return []
    grids = [range(n_chunks), *(range(n) for n in array.cdata_shape[1:])]
    expected = {_key(array, coords): coords for coords in itertools.product(*grids)}
    present: set[str] = set()
    for root, _, files in os.walk(folder):
        prefix = Path(root).relative_to(folder).as_posix()
        present.update(f if prefix == "." else f"{prefix}/{f}" for f in files)
    return sorted(set(expected) - present, key=expected.__getitem__)


class GuardedArray:
    """A zarr array read through :func:`read`, for ``dask.array.from_array``."""

    def __init__(self, path: Path, name: str, array: zarr.Array) -> None:
        self.path, self.name, self.array = path, name, array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key) -> np.ndarray:
        return read(self.path, self.name, self.array, key)

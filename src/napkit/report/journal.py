"""The report's finished verification queries, kept on disk so that an interrupted report resumes.

Solver queries are the slow part of a report. Each finished one is appended (one JSON line,
flushed and synced) under a key that hashes everything its verdict depends on: the network,
the kind of query, the class(es), their phases, the region, the witness and the timeout. A
rerun of the same report takes the recorded verdicts and runs only the rest; a key that does
not match (another model, other NAPs, another ε) is simply not found. A torn last line (a
crash mid-write) is ignored and cut before appending.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from napkit.errors import NapkitError
from napkit.jsonlines import append_record, read_records
from napkit.staging import named


def query_key(*parts) -> str:
    """A hash of the parts (strings, numbers, arrays, lists of arrays) that fix a verdict."""
    h = hashlib.sha256()
    for part in parts:
        items = part if isinstance(part, list) else [part]
        for item in items:
            if isinstance(item, np.ndarray):
                arr = np.ascontiguousarray(item)
                h.update(f"{arr.dtype.str}{arr.shape}".encode())
                h.update(arr.tobytes())
            else:
                h.update(repr(item).encode())
            h.update(b"\x00")
    return h.hexdigest()


class QueryJournal:
    """Finished queries by key, read from ``path`` and appended to it as they finish."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        records = read_records(self.path, repair=True)
        self.done: dict[str, dict] = {r["key"]: r for r in records if isinstance(r.get("key"), str)}

    def get(self, key: str) -> dict | None:
        """The recorded query of ``key`` (``verdict``, ``reason``, ``seconds``, ``counterexample``)."""
        return self.done.get(key)

    def add(self, key: str, verdict: str, reason: str, seconds: float, counterexample) -> None:
        """Record one finished query (a counterexample as a list of floats: exact through JSON)."""
        rec = {"key": key, "verdict": verdict, "reason": reason, "seconds": seconds,
               "counterexample": None if counterexample is None else np.asarray(counterexample).tolist()}
        try:
            with open(self.path, "ab") as f:
                append_record(f, rec)
        except OSError as exc:
            raise NapkitError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.done[key] = rec

    def remove(self) -> None:
        """Delete the file: the report it served is written."""
        self.path.unlink(missing_ok=True)


def journal_path(out: str | Path) -> Path:
    """Where the report written to folder ``out`` keeps its finished queries (beside it, hidden)."""
    out = named(out)  # "." has no name to hide
    return out.parent / f".{out.name}.queries.jsonl"

"""Append-only JSON-lines files that survive a crash: one record per line, each flushed and
fsynced as it is written; a torn last line (a crash mid-write) is ignored, and cut on repair
so that appending starts on a fresh line. Batch results and the report's journal use them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO


def read_records(path: str | Path, repair: bool = False) -> list[dict]:
    """The complete lines of ``path`` that are JSON objects, in order ([] when it is absent)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    out = []
    for line in data[:end].splitlines():
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def append_record(f: BinaryIO, rec: dict) -> None:
    """Write one record as a line of ``f`` (opened "ab") and sync it to disk."""
    f.write((json.dumps(rec) + "\n").encode())
    f.flush()
    os.fsync(f.fileno())

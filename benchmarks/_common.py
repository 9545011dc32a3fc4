"""Shared helpers for the benchmarks: data paths, peak memory, timing in a fresh process."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
MNIST = SHARED / "data" / "mnist.npz"
ONNX = SHARED / "benchmarks" / "mnist_fc" / "onnx"


def need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"skipped: {path} is absent (the benchmarks need ../shared)")
    return path


def rss_mb() -> float:
    """Current resident set size in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: Path, *args: str) -> dict:
    """Run ``script --worker ARGS`` in a fresh interpreter; it prints one JSON line."""
    proc = subprocess.run(
        [sys.executable, str(script), "--worker", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_mnist():
    """MNIST as float32 (n, 784) in [0, 1] with int64 labels: x_train, y_train, x_test, y_test."""
    import numpy as np

    with np.load(need(MNIST)) as f:
        return (
            f["x_train"].reshape(60000, -1).astype(np.float32) / 255,
            f["y_train"].astype(np.int64),
            f["x_test"].reshape(10000, -1).astype(np.float32) / 255,
            f["y_test"].astype(np.int64),
        )


def finish_report(lines: list[str], out: Path | None) -> str:
    """The results text: ``lines`` and the load average at the end, printed and written to ``out``."""
    text = "\n".join([*lines, f"Load average at the end: {os.getloadavg()[0]:.1f}."]) + "\n"
    print(text)
    if out:
        out.write_text(text)
    return text

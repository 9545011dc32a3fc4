"""Fixtures for the verification tests (and the helpers module on the import path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
MNIST_FC = Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks" / "mnist_fc"


@pytest.fixture
def mnist_fc() -> Path:
    if not (MNIST_FC / "truth.csv").exists():
        pytest.skip(f"shared mnist_fc benchmark not found at {MNIST_FC}")
    return MNIST_FC

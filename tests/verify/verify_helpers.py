"""Shared helpers for the verification tests: tiny networks and the shared benchmark path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napkit.network import ReluNetwork

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MNIST_FC = SHARED / "benchmarks" / "mnist_fc"


def random_net(rng: np.random.Generator, n_in: int, widths: list[int], n_out: int) -> ReluNetwork:
    sizes = [n_in, *widths, n_out]
    ws = [rng.normal(size=(sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    bs = [rng.normal(scale=0.5, size=sizes[i + 1]) for i in range(len(sizes) - 1)]
    return ReluNetwork(tuple(ws), tuple(bs))


def random_phases(rng: np.random.Generator, sizes, p: float = 0.3) -> list[np.ndarray]:
    return [
        (rng.choice([-1, 1], size=n) * (rng.random(n) < p)).astype(np.int8) for n in sizes
    ]

"""Reference models: small seeded ReLU MLPs trained on the CPU, returned as ReluNetworks.

One training loop serves the whole package (:mod:`napkit.codes.training`); this module
only fixes the defaults of the demo's models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napkit.codes.training import train_mlp as _train
from napkit.network import ReluNetwork


def train_mlp(
    x: np.ndarray,
    y: np.ndarray,
    hidden: Sequence[int] = (32, 32),
    epochs: int = 60,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> ReluNetwork:
    """Train an MLP with Adam on (x, y); the same seed gives the same network."""
    return _train(x, y, hidden, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr)

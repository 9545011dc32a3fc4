"""Reference models: small seeded ReLU MLPs trained on the CPU, returned as ReluNetworks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from napkit.network import ReluNetwork, from_torch


def mlp(n_inputs: int, hidden: Sequence[int], n_outputs: int) -> nn.Sequential:
    """Linear/ReLU layers of the given widths, with a final Linear to the logits."""
    layers: list[nn.Module] = []
    width = n_inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


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
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    model = mlp(xt.shape[1], hidden, int(yt.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    return from_torch(model, input_shape=(xt.shape[1],))

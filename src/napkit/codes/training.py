"""Small seeded ReLU MLPs trained on the CPU, for sweeps of width, depth and epochs.

Training is deterministic for a seed (its own torch generator, single-threaded batches
in a fixed order), and :func:`train_checkpoints` yields the network after chosen
epochs of one run, so that a sweep over epochs costs one training per architecture.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from napkit.codes._input import as_labels, as_rows
from napkit.errors import NapkitError
from napkit.network import ReluNetwork, from_torch


def make_mlp(
    n_inputs: int, hidden: Sequence[int], n_classes: int, seed: int = 0, batch_norm: bool = False
) -> nn.Sequential:
    """Linear[/BatchNorm]/ReLU stack with seeded default (Kaiming-uniform) initialisation.

    Lei et al. train with batch normalisation before each ReLU; at inference it is an
    affine map, folded into the linear layer by :func:`to_relu_network`.
    """
    if not hidden or any(int(h) < 1 for h in hidden):
        raise NapkitError(f"hidden widths must be positive, got {list(hidden)}")
    if int(n_inputs) < 1 or int(n_classes) < 1:
        raise NapkitError(f"a network needs >= 1 input and >= 1 class, got {n_inputs} and {n_classes}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width = n_inputs
        for h in hidden:
            layers.append(nn.Linear(width, int(h)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(h)))
            layers.append(nn.ReLU())
            width = int(h)
        layers.append(nn.Linear(width, n_classes))
        return nn.Sequential(*layers)


def to_relu_network(model: nn.Sequential) -> ReluNetwork:
    """A trained :func:`make_mlp` model as a ReluNetwork, batch norms folded in (eval mode)."""
    if not any(isinstance(m, nn.BatchNorm1d) for m in model):
        return from_torch(model.eval())
    weights, biases = [], []
    for m in model:
        if isinstance(m, nn.Linear):
            weights.append(m.weight.detach().double().numpy().copy())
            biases.append(m.bias.detach().double().numpy().copy())
        elif isinstance(m, nn.BatchNorm1d):
            var = m.running_var.detach().double().numpy()
            scale = m.weight.detach().double().numpy() / np.sqrt(var + m.eps)
            shift = m.bias.detach().double().numpy() - scale * m.running_mean.detach().double().numpy()
            weights[-1] = scale[:, None] * weights[-1]
            biases[-1] = scale * biases[-1] + shift
    return ReluNetwork(tuple(weights), tuple(biases), source="napkit.codes.make_mlp")


def train_checkpoints(
    x: Any,
    y: Any,
    hidden: Sequence[int],
    epochs: Sequence[int],
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    n_classes: int | None = None,
    batch_norm: bool = False,
    lr_decay_every: int | None = None,
) -> Iterator[tuple[int, ReluNetwork]]:
    """Train one MLP with Adam and cross-entropy; yield (epoch, network) at each epoch listed.

    ``lr_decay_every`` divides the learning rate by 10 every that many epochs.
    """
    xs = as_rows(x, "inputs").astype(np.float32)
    ys = as_labels(y, xs.shape[0])
    if xs.shape[0] == 0:
        raise NapkitError("no training samples")
    if ys.min() < 0:
        raise NapkitError("labels must be 0 .. n_classes - 1")
    stops = sorted({int(e) for e in epochs})
    if not stops or stops[0] < 0:
        raise NapkitError(f"epochs must be non-negative, got {list(epochs)}")
    n_cls = int(n_classes or ys.max() + 1)
    if ys.max() >= n_cls:
        raise NapkitError(f"labels must be 0 .. n_classes - 1 = {n_cls - 1}, got {ys.max()}")
    if not (isinstance(batch_size, int | np.integer) and batch_size >= 1):
        raise NapkitError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if not (isinstance(lr, int | float | np.number) and 0 < lr < np.inf):
        raise NapkitError(f"the learning rate must be a finite number > 0, got {lr!r}")
    model = make_mlp(xs.shape[1], hidden, n_cls, seed, batch_norm)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(xs), torch.from_numpy(ys)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(stops[-1] + 1):
        if epoch in stops:
            yield epoch, to_relu_network(model.eval())
        if epoch == stops[-1]:
            break
        if lr_decay_every and epoch and epoch % lr_decay_every == 0:
            for group in opt.param_groups:
                group["lr"] *= 0.1
        model.train()
        order = torch.randperm(xt.shape[0], generator=gen)
        for start in range(0, xt.shape[0], batch_size):
            batch = order[start : start + batch_size]
            opt.zero_grad()
            loss_fn(model(xt[batch]), yt[batch]).backward()
            opt.step()


def train_mlp(
    x: Any,
    y: Any,
    hidden: Sequence[int] = (100,),
    epochs: int = 10,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    n_classes: int | None = None,
    batch_norm: bool = False,
    lr_decay_every: int | None = None,
) -> ReluNetwork:
    """Train a ReLU MLP on (x, y) and return it as a :class:`ReluNetwork`."""
    *_, (_, net) = train_checkpoints(
        x, y, hidden, [epochs], seed, batch_size, lr, n_classes, batch_norm, lr_decay_every
    )
    return net

"""Shared fixtures: tiny hand-weighted networks and the ../shared data (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import need_shared
from napkit.network import ReluNetwork


@pytest.fixture
def tiny_net() -> ReluNetwork:
    """2 inputs -> 3 ReLUs -> 2 ReLUs -> 2 logits, weights chosen by hand."""
    w0 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    b0 = np.array([0.0, -0.5, 0.0])
    w1 = np.array([[1.0, 1.0, 0.0], [0.0, -1.0, 2.0]])
    b1 = np.array([-1.0, 0.5])
    w2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    b2 = np.array([0.0, 0.0])
    return ReluNetwork((w0, w1, w2), (b0, b1, b2), ("h0", "h1"))


@pytest.fixture
def mnist_small():
    """The first 1000 MNIST test images as float (1000, 784) and their labels."""
    with np.load(need_shared("data", "mnist.npz")) as f:
        x, y = f["x_test"][:1000], f["y_test"][:1000]
    return x.reshape(len(x), -1).astype(np.float64) / 255.0, y.astype(np.int64)


@pytest.fixture
def existing_out_folder(monkeypatch):
    """``make(tmp, form)``: an existing empty folder ``tmp/real`` and how a user names it as an
    output: ``"."`` after a chdir into it (form ``current_folder``), or a symlink to it."""

    def make(tmp, form: str):
        real = tmp / "real"
        real.mkdir()
        if form == "current_folder":
            monkeypatch.chdir(real)
            return real, "."
        link = tmp / "link"
        link.symlink_to(real, target_is_directory=True)
        return real, link

    return make

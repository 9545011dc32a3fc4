"""Helpers for tests: paths to ../shared (skipping when absent) and small random networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napkit.network import ReluNetwork

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
MNIST_FC = SHARED / "benchmarks" / "mnist_fc"


def need_shared(*parts: str) -> Path:
    """Path inside ../shared, or skip the test with a clear reason."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent: tests on the shared MNIST/VNN-COMP data need ../shared")
    return p


def random_net(seed: int, sizes=(4, 8, 6, 3)) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    ws = tuple(rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:], strict=True))
    bs = tuple(rng.normal(size=o) * 0.1 for o in sizes[1:])
    return ReluNetwork(ws, bs)


def cli_files(tmp_path: Path):
    """An ONNX model (8-32-24-3) and an .npz of 500 inputs whose first 40 labels are wrong:
    (model path, data path, network, x, y), for the CLI tests."""
    from napkit.network import to_onnx

    net = random_net(21, sizes=(8, 32, 24, 3))
    x = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    y = net.predict(x)
    y[:40] = (y[:40] + 1) % 3
    model = tmp_path / "model.onnx"
    to_onnx(net, model)
    data = tmp_path / "data.npz"
    np.savez(data, x=x, y=y)
    return model, data, net, x, y

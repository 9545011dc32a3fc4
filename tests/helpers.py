"""Helpers for tests: paths to ../shared (skipping when absent) and small random networks."""

from __future__ import annotations

import contextlib
import socket
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


def reused_relu_model():
    """A torch 4-5-6-3 MLP whose one ``nn.ReLU`` module runs after both hidden layers."""
    from torch import nn

    class ReusedRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 5), nn.Linear(5, 6), nn.Linear(6, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.c(self.act(self.b(self.act(self.a(x)))))

    return ReusedRelu()


def gaussian_inputs(n: int = 200, d: int = 4, seed: int = 0) -> np.ndarray:
    """``n`` seeded standard-normal float32 inputs of width ``d``."""
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


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


def three_class_files(tmp_path: Path, n: int = 600, relabel: int = 0):
    """A 3-10-8-3 ONNX network whose three classes all occur on [0,1]^3 (each on ≥ 10% of n
    uniform inputs), the data with its first ``relabel`` labels made wrong, and δ = 0.95 NAPs
    mined from it: (folder, model path, data path, NAP path, network as loaded from the file)."""
    from napkit.network import load_model, to_onnx
    from napkit.patterns import mine

    x = np.random.default_rng(0).uniform(size=(n, 3)).astype(np.float32)
    for seed in range(31, 80):
        net = random_net(seed, sizes=(3, 10, 8, 3))
        y = net.predict(x)
        if np.bincount(y, minlength=3).min() >= n // 10:
            break
    model = tmp_path / "m.onnx"
    to_onnx(net, model)
    net = load_model(model)  # float32 weights, as the file holds them
    y[:relabel] = (y[:relabel] + 1) % 3
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=y)
    naps = tmp_path / "naps.json"
    mine(net, x, y, 0.95, progress=False).save(naps)
    return tmp_path, model, data, naps, net


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``napkit ARGS`` in-process: (exit code, stdout, stderr)."""
    from napkit.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    """The JSON object on the last line of a command's stdout (DESIGN.md's --json contract)."""
    import json

    return json.loads(out.strip().splitlines()[-1])


_INTERNET = (socket.AF_INET, socket.AF_INET6)


class _NoNetwork(socket.socket):
    """Internet sockets raise; local ones (asyncio's self-pipe, used by zarr) still work."""

    def __init__(self, family=-1, *args, **kwargs) -> None:
        if family in _INTERNET or family == -1 and not args and not kwargs.get("fileno"):
            raise OSError("network access is forbidden in napkit's LM tests")
        super().__init__(family, *args, **kwargs)


def _no_connection(*args, **kwargs):
    raise OSError("network access is forbidden in napkit's LM tests")


@contextlib.contextmanager
def forbid_network():
    """Internet sockets and connections raise inside this context."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "socket", _NoNetwork)
        mp.setattr(socket, "create_connection", _no_connection)
        yield


def record_interrupted(monkeypatch, net: ReluNetwork, x: np.ndarray, y: np.ndarray, path: Path,
                       batch_size: int = 16, after_batches: int = 4) -> None:
    """``record`` interrupted (KeyboardInterrupt) after ``after_batches`` batches, as Ctrl-C
    mid-capture; the recorder is restored afterwards."""
    import napkit.capture.to_store as record_mod
    from napkit.capture import record

    real = record_mod.iter_activations

    def crashing(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == after_batches:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(record_mod, "iter_activations", crashing)
    with pytest.raises(KeyboardInterrupt):
        record(net, x, y, path, batch_size=batch_size, progress=False)
    monkeypatch.setattr(record_mod, "iter_activations", real)

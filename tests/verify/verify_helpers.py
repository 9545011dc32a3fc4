"""Shared helpers for the verification tests: tiny networks and the shared benchmark path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napkit.network import ReluNetwork
from napkit.patterns import mine
from napkit.verify import domain_box, linf_ball

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


def unit_square_grid(net: ReluNetwork, phases, n: int = 161, margin: float = 1e-6):
    """A dense grid over [0, 1]^2 for 2-input nets: (points, outputs, followers), where a
    follower keeps every phase of ``phases`` with ``margin`` to spare, and the majority
    predicted class among the followers (0 when none follows)."""
    g = np.linspace(0.0, 1.0, n)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    y, pre = net.forward(grid)
    follow = np.ones(len(grid), bool)
    for z, p in zip(pre, phases, strict=True):
        follow &= (z[:, p > 0] > margin).all(1) & (z[:, p < 0] < -margin).all(1)
    n_out = y.shape[1]
    label = int(np.argmax(np.bincount(y[follow].argmax(1), minlength=n_out))) if follow.any() else 0
    return grid, y, follow, label


# ---- differential testing against Marabou (tests/verify/test_marabou.py, benchmarks) ----

def differential_case(seed: int):
    """One random network and query: (kind, net, box, label or phases_i, phases or phases_j, attack)."""
    rng = np.random.default_rng(1000 + seed)
    n_in = int(rng.integers(2, 9))
    widths = [int(rng.integers(3, 17)) for _ in range(int(rng.integers(1, 4)))]
    n_out = int(rng.integers(2, 5))
    net = random_net(rng, n_in, widths, n_out)
    if rng.random() < 0.5:
        box = domain_box(n_in)
        center = rng.random(n_in)
    else:
        center = rng.random(n_in)
        box = linf_ball(center, float(rng.choice([0.02, 0.1, 0.3])))
    how = rng.choice(["mined", "random", "none"], p=[0.5, 0.35, 0.15])
    if how == "mined":
        x = rng.random((200, n_in))
        y = net.predict(x)
        naps = mine(net, x, y, float(rng.choice([0.8, 0.95, 1.0])), classes=sorted(set(y.tolist())),
                    progress=False)
        labels = [int(c) for c in naps.labels]
        get = naps.phases
    else:
        labels = list(range(n_out))
        p = float(rng.choice([0.1, 0.3, 0.5]))
        table = {c: random_phases(rng, net.layer_sizes, p) for c in labels}
        get = table.__getitem__
    attack = bool(rng.random() < 0.3)
    if rng.random() < 0.2 and len(labels) >= 2 and how != "none":
        i, j = (int(v) for v in rng.choice(labels, size=2, replace=False))
        return "disjoint", net, domain_box(n_in), get(i), get(j), attack
    label = int(net.predict(center[None])[0]) if rng.random() < 0.6 else int(rng.choice(labels))
    phases = None if how == "none" or label not in labels else get(label)
    return "robust", net, box, label, phases, attack


def contradicts(a: str, b: str) -> bool:
    """Two decided verdicts that cannot both be right (``unknown`` never contradicts)."""
    if "unknown" in (a, b):
        return False
    if (a == "falsified") != (b == "falsified"):
        return True
    return {a, b} == {"verified", "vacuous"}

"""Codes benchmarks: blocked Hamming k-NN against scikit-learn, and Lei et al. on MNIST.

    python benchmarks/codes_knn.py knn [--train N] [--test N]
    python benchmarks/codes_knn.py mnist [--widths 10,30,...] [--epochs E]
    python benchmarks/codes_knn.py sweep [--train N] [--widths ...] [--png FILE]

`knn` trains one width-100 MLP (batch norm, 3 epochs), encodes MNIST, and times
napkit's HammingKNN and sklearn's KNeighborsClassifier(n_neighbors=9, metric="hamming")
on the same codes in the same run (accuracy, agreement, seconds, peak traced memory).
`mnist` reproduces the width sweep of "Neural networks behave as hash encoders": one
hidden layer, batch norm, Adam (lr 1e-2, /10 every 20 epochs), batch 64, trained on the
first 48000 training images, codes measured on those and on the 10000 test images.
`sweep` draws the phase chart (test redundancy over width x epochs) on a subset.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from napkit.codes import (
    CodeEncoder,
    HammingKNN,
    codes_report,
    network_on_off,
    phase_sweep,
    phase_table,
    plot_phase_chart,
    train_mlp,
)

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist.npz"


def load(n_train: int, n_test: int):
    if not MNIST.exists():
        sys.exit(f"MNIST not found at {MNIST}")
    d = np.load(MNIST)
    x_train = d["x_train"][:n_train].reshape(-1, 784) / 255.0
    x_test = d["x_test"][:n_test].reshape(-1, 784) / 255.0
    return x_train, d["y_train"][:n_train], x_test, d["y_test"][:n_test]


def measured(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def bench_knn(n_train: int, n_test: int) -> None:
    xtr, ytr, xte, yte = load(n_train, n_test)
    net = train_mlp(xtr, ytr, (100,), epochs=3, seed=0, lr=1e-2, batch_size=64, batch_norm=True)
    enc = CodeEncoder().fit(network_on_off(net, xtr))
    ctr, cte = enc.transform(network_on_off(net, xtr)), enc.transform(network_on_off(net, xte))
    btr, bte = enc.unpack(ctr), enc.unpack(cte)
    print(f"codes: {ctr.shape[0]} train x {cte.shape[0]} test, {enc.n_bits_} bits")
    ours, t_ours, m_ours = measured(lambda: HammingKNN(9).fit(ctr, ytr).predict(cte))
    ref, t_ref, m_ref = measured(
        lambda: KNeighborsClassifier(n_neighbors=9, metric="hamming").fit(btr, ytr).predict(bte)
    )
    print("| k-NN (k=9) on codes | accuracy | seconds | peak traced MiB |")
    print("|---|---|---|---|")
    print(
        f"| napkit HammingKNN (packed, blocked) | {(ours == yte).mean():.4f} | {t_ours:.2f} | {m_ours:.0f} |"
    )
    print(
        f"| sklearn KNeighborsClassifier(metric='hamming') | {(ref == yte).mean():.4f} "
        f"| {t_ref:.2f} | {m_ref:.0f} |"
    )
    print(
        f"speed-up {t_ref / t_ours:.1f}x, memory ratio {m_ref / max(m_ours, 1e-9):.1f}x, "
        f"prediction agreement {(ours == ref).mean():.4f}"
    )


def bench_mnist(widths: list[int], epochs: int, seed: int) -> None:
    xtr, ytr, xte, yte = load(60000, 10000)
    xtr, ytr = xtr[:48000], ytr[:48000]
    keys = [
        "test_accuracy",
        "redundancy_train",
        "redundancy_test",
        "knn_accuracy",
        "logistic_accuracy",
        "kmeans_train_matched",
        "kmeans_train_greedy",
        "kmeans_test_matched",
        "kmeans_test_greedy",
    ]
    print("| width | bits | " + " | ".join(keys) + " | seconds |")
    print("|---" * (len(keys) + 3) + "|")
    for w in widths:
        t = time.perf_counter()
        net = train_mlp(
            xtr,
            ytr,
            (w,),
            epochs=epochs,
            seed=seed,
            lr=1e-2,
            batch_size=64,
            batch_norm=True,
            lr_decay_every=20,
        )
        rep = codes_report(net, xtr, ytr, xte, yte, seed=seed)
        cells = " | ".join(f"{rep[k]:.4f}" for k in keys)
        print(f"| {w} | {rep['bits']} | {cells} | {time.perf_counter() - t:.0f} |", flush=True)


def bench_sweep(n_train: int, widths: list[int], seed: int, png: str | None) -> None:
    xtr, ytr, xte, yte = load(n_train, 10000)
    rows = phase_sweep(
        xtr,
        ytr,
        xte,
        yte,
        widths=widths,
        epochs=(0, 1, 2, 5),
        seed=seed,
        lr=1e-2,
        batch_size=64,
        batch_norm=True,
    )
    for value in ("redundancy_test", "test_accuracy"):
        xs, ys, mat = phase_table(rows, "width", "epochs", value)
        print(f"\n{value} ({n_train} training images; rows: epochs, columns: width)\n")
        print("| epochs \\ width | " + " | ".join(map(str, xs)) + " |")
        print("|---" * (len(xs) + 1) + "|")
        for e, row in zip(ys, mat, strict=True):
            print(f"| {e} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    if png:
        plot_phase_chart(rows, path=png)
        print(f"\nchart written to {png}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["knn", "mnist", "sweep"])
    p.add_argument("--png", default=None)
    p.add_argument("--train", type=int, default=60000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--widths", default="10,20,30,40,60,80,100")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.part == "knn":
        bench_knn(a.train, a.test)
    elif a.part == "mnist":
        bench_mnist([int(w) for w in a.widths.split(",")], a.epochs, a.seed)
    else:
        bench_sweep(a.train, [int(w) for w in a.widths.split(",")], a.seed, a.png)


if __name__ == "__main__":
    main()

"""Recall and precision of mined NAPs on MNIST for the three VNN-COMP mnist_fc networks.

NAPs are mined on all 60000 training images (correctly classified only); the table gives,
per δ, recall and precision averaged over classes on the training set (correct only) and
on the test set (all 10000 images), plus the per-class figures in the JSON it writes.
Run: .venv/bin/python benchmarks/nap_stats_mnist.py [--out benchmarks/results/nap_stats_mnist.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, load_mnist, need  # noqa: E402

DELTAS = (1.0, 0.99, 0.95, 0.9, 0.85)
NETS = ("mnist-net_256x2", "mnist-net_256x4", "mnist-net_256x6")


def main() -> None:
    from napkit.network import load_model
    from napkit.patterns import count_patterns, evaluate_many

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nets", nargs="+", default=list(NETS))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    xtr, ytr, xte, yte = load_mnist()
    dump = {}
    print(
        "| network | δ | neurons per NAP | recall train (correct) | precision train | recall test | precision test |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.nets:
        net = load_model(need(ONNX / f"{name}.onnx.gz"))
        t0 = time.perf_counter()
        miner = count_patterns(net, xtr, ytr, progress=False)
        napsets = [miner.naps(d) for d in DELTAS]
        train = evaluate_many(net, napsets, xtr, ytr, only_correct=True, progress=False)
        test = evaluate_many(net, napsets, xte, yte, progress=False)
        dump[name] = {"seconds": time.perf_counter() - t0, "rows": []}
        for d, n, a, b in zip(DELTAS, napsets, train, test, strict=True):
            print(
                f"| {name} | {d:g} | {n.sizes().mean():.0f} of {n.n_neurons} | {np.nanmean(a.recall):.3f} | "
                f"{np.nanmean(a.precision):.3f} | {np.nanmean(b.recall):.3f} | {np.nanmean(b.precision):.3f} |"
            )
            dump[name]["rows"].append(
                {"delta": d, "neurons": n.sizes().tolist(), "train_correct": a.to_dict(), "test": b.to_dict()}
            )
    if args.out:
        args.out.write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()

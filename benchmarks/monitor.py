"""Run-time monitoring on MNIST: detection quality against max-softmax, and throughput of the
NAP membership check (bit-packed, napkit) against dense boolean matrices (the baseline).

Run: .venv/bin/python benchmarks/monitor.py [--nets mnist-net_256x2 mnist-net_256x6]
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, load_mnist, need  # noqa: E402


def best_of(fn, trials=5):
    best = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def napkit_check(signs, pa, pd, rows, tolerance):
    from napkit.patterns import pack_signs, violations_for

    return violations_for(pack_signs(signs), pa, pd, rows) <= tolerance


def dense_check(signs, active, inactive, rows, tolerance):
    a, d = active[rows], inactive[rows]
    return ((~signs & a) | (signs & d)).sum(1) <= tolerance


def main() -> None:
    from napkit.capture import iter_activations
    from napkit.network import load_model
    from napkit.patterns import NAPMonitor, count_patterns

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nets", nargs="+", default=["mnist-net_256x2", "mnist-net_256x6"])
    ap.add_argument("--tolerance", type=int, default=0)
    args = ap.parse_args()
    xtr, ytr, xte, yte = load_mnist()
    print("## Detection of misclassified test images (NAPs mined on all training images, correct only)\n")
    print("| network | δ | γ | flagged | errors caught | NAP AUROC | max-softmax AUROC |")
    print("|---|---|---|---|---|---|---|")
    speed_rows = []
    for name in args.nets:
        net = load_model(need(ONNX / f"{name}.onnx.gz"))
        miner = count_patterns(net, xtr, ytr, progress=False)
        for delta in (0.95, 0.99):
            naps = miner.naps(delta)
            for gamma in sorted({0, args.tolerance}):
                rep = NAPMonitor(net, tolerance=gamma).set_naps(naps).evaluate(xte, yte)
                print(
                    f"| {name} | {delta} | {gamma} | {rep.flagged_rate:.1%} | {rep.misclassified_caught:.1%} | "
                    f"{rep.auroc:.3f} | {rep.max_softmax_auroc:.3f} |"
                )
        # throughput of the membership check alone, on the test set repeated 10 times
        naps = miner.naps(0.99)
        signs, preds = [], []
        for b in iter_activations(net, xte, progress=False):
            signs.append(b.signs())
            preds.append(b.logits.argmax(1))
        signs = np.tile(np.concatenate(signs), (10, 1))
        rows = np.tile(np.concatenate(preds), 10)
        pa, pd = naps.packed()

        t_nap, r_nap = best_of(partial(napkit_check, signs, pa, pd, rows, args.tolerance))
        t_base, r_base = best_of(
            partial(dense_check, signs, naps.active, naps.inactive, rows, args.tolerance)
        )
        assert (r_nap == r_base).all()
        mon = NAPMonitor(net, tolerance=args.tolerance).set_naps(naps)
        t_fwd, _ = best_of(partial(mon.predict, xte), trials=3)
        speed_rows.append((name, len(rows), t_nap, t_base, len(xte) / t_fwd))
    print("\n## Membership check throughput (inputs/s; test set x 10; identical results checked)\n")
    print("| network | inputs | napkit bit-packed | dense boolean baseline | ratio | monitor end to end |")
    print("|---|---|---|---|---|---|")
    for name, n, t_nap, t_base, e2e in speed_rows:
        print(f"| {name} | {n} | {n / t_nap:,.0f} | {n / t_base:,.0f} | {t_base / t_nap:.1f}x | {e2e:,.0f} |")


if __name__ == "__main__":
    main()

"""Minimal NAP specifications on the mnist_fc networks: how much of a NAP a proof needs.

For each network, δ = 0.99 NAPs are mined from all MNIST training images (correct only).
For the first test image of some classes that is classified correctly, follows its
class's NAP, is proved robust at ε with the NAP and is not proved robust without it, the NAP is minimised (ranked and
greedy) and the table reports the fraction of constrained neurons kept, the recall of
the class's NAP on the training set before and after, the verifier calls and the time.

Run: .venv/bin/python benchmarks/minimize.py [--nets 256x2 256x4 256x6] [--classes 0 1 2] [--eps 0.03]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, load_mnist, need  # noqa: E402


def main() -> None:
    from napkit.network import load_model
    from napkit.patterns import NAPMonitor, count_patterns, nap_stats
    from napkit.verify import linf_ball, minimize_nap, verify_robustness

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=["256x2", "256x4", "256x6"])
    ap.add_argument("--classes", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--methods", nargs="+", default=["ranked", "greedy"])
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per verifier call")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per minimisation")
    args = ap.parse_args()
    xtr, ytr, xte, yte = load_mnist()
    print(
        f"# Minimal NAPs: δ = 0.99, ε = {args.eps}, timeout {args.timeout:g} s per call, budget {args.budget:g} s\n"
    )
    print(f"Command: `.venv/bin/python benchmarks/minimize.py {' '.join(sys.argv[1:])}`\n")
    print(
        "| network | class | image | method | kept / constrained | kept % | implied by bounds | recall before | recall after | calls | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    summary: dict[str, list[tuple[float, float, float]]] = {}
    for name in args.nets:
        net = load_model(need(ONNX / f"mnist-net_{name}.onnx.gz"))
        miner = count_patterns(net, xtr, ytr, progress=False)
        naps = miner.naps(0.99)
        ok = (NAPMonitor(net).set_naps(naps).predict(xte) == 1) & (net.predict(xte) == yte)
        before = nap_stats(net, naps, xtr, ytr, only_correct=True, progress=False)
        p = miner.counts / np.maximum(miner.totals[:, None], 1)
        for c in args.classes:
            rows = np.flatnonzero(ok & (yte == c))
            chosen = None
            for i in rows[:5]:  # the first image robust at ε with the NAP but not proved without it
                box = linf_ball(xte[i].astype(float), args.eps)
                if verify_robustness(net, box, c, None, timeout=args.timeout).verdict == "verified":
                    continue  # the NAP is not needed here: minimising it to nothing proves nothing new
                if verify_robustness(net, box, c, naps.phases(c), timeout=args.timeout).verdict == "verified":
                    chosen = (int(i), box)
                    break
            if chosen is None:
                print(f"| {name} | {c} | - | - | no image of the first 5 needs and verifies with the NAP | | | | | | |")
                continue
            i, box = chosen
            priority = 1.0 - np.abs(2 * p[c] - 1)
            for method in args.methods:
                res = minimize_nap(net, box, c, naps.phases(c), method, priority, args.timeout, args.budget)
                smaller = naps.with_phases(c, res.phases)
                after = nap_stats(net, smaller, xtr, ytr, only_correct=True, progress=False)
                r = smaller.row(c)
                kept = res.kept / res.original
                summary.setdefault(f"{name} {method}", []).append(
                    (kept, float(after.recall[r] - before.recall[r]), res.seconds)
                )
                print(
                    f"| {name} | {c} | {i} | {method} | {res.kept} / {res.original} | {100 * kept:.1f} | {res.implied} | "
                    f"{before.recall[r]:.3f} | {after.recall[r]:.3f} | {res.calls} | {res.seconds:.1f} |"
                )
    print("\n| network and method | median kept % | median recall gained | median seconds |")
    print("|---|---|---|---|")
    for key, vals in summary.items():
        kept, gain, secs = zip(*vals, strict=True)
        print(
            f"| {key} | {100 * statistics.median(kept):.1f} | {statistics.median(gain):+.3f} | {statistics.median(secs):.1f} |"
        )


if __name__ == "__main__":
    main()

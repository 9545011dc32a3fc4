"""The NAP paper's own setting: whole-domain NAP robustness per class, NAPs mined at δ over
all 60000 training images (``--all-samples``, as the authors' pattern files), one query per class.

    .venv/bin/python benchmarks/paper_domain.py --net 256x4 --delta 0.99 --timeout 60 [--classes 0 1 ...]
        [--workers N] [--out benchmarks/results/paper_domain.md]

Each query gets a training image that follows the NAP as its witness of non-emptiness;
every counterexample is re-checked by an exact float64 pass and by onnxruntime on the
ONNX model. Prints per class: the verdict, seconds, napkit's reason, the NAP's recall on
the test set, and the branch-and-bound statistics.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, load_mnist, need  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="256x4")
    ap.add_argument("--delta", type=float, default=0.99)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--workers", type=int, default=None, help="processes per query (default: cores)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    from napkit.network import from_onnx, load_onnx_model
    from napkit.patterns import evaluate_many, mine
    from napkit.verify import Property, domain_box, first_follower, robustness_spec, verify_property

    proto = load_onnx_model(need(ONNX / f"mnist-net_{args.net}.onnx.gz"))
    net = from_onnx(proto)
    xtr, ytr, xte, yte = load_mnist()
    xtr, xte = xtr.astype(np.float64), xte.astype(np.float64)
    naps = mine(net, xtr, ytr, args.delta, all_samples=True, progress=False)
    recall = evaluate_many(net, [naps], xte, yte, progress=False)[0].recall
    lines = [f"# Whole-domain NAP robustness, {args.net}, δ = {args.delta:g}, --all-samples NAPs, "
             f"timeout {args.timeout:g} s, workers {args.workers or 'default (cores)'}", "",
             "| class | verdict | s | recall test | reason | unstable | bab domains |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    counts: dict[str, int] = {}
    t0 = time.monotonic()
    for c in args.classes:
        ph = naps.phases(c)
        w = first_follower(net, ph, xtr)
        prop = Property(domain_box(net.n_inputs), robustness_spec(c, 10), ph)
        res = verify_property(net, prop, timeout=args.timeout, witness=w, onnx_model=proto, workers=args.workers)
        counts[res.verdict] = counts.get(res.verdict, 0) + 1
        st = res.stats
        row = (f"| {c} | {res.verdict} | {res.seconds:.1f} | {recall[c]:.3f} | {res.reason} | "
               f"{st.get('unstable_final', st.get('unstable', '-'))} | {st.get('bab_domains', '-')} |")
        lines.append(row)
        print(row, flush=True)
    tail = ["", "totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f"; wall {time.monotonic() - t0:.0f} s"]
    print("\n".join(tail))
    if args.out:
        args.out.write_text("\n".join(lines + tail) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

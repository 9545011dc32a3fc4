"""NAP-augmented queries on mnist-net_256x2: napkit's verify_property beside Marabou 2.0.

    .venv/bin/python benchmarks/nap_vs_marabou.py [--timeout 60] [--classes 0 2 3] [--eps 0.03 0.05]
        [--domain-classes 0 1 2] [--out benchmarks/results/nap_vs_marabou.md]

NAPs: δ = 0.99, mined from the first 20000 training images (correctly classified only).
Local queries: NAP robustness of class c on the L-inf ball of radius ε around the first
test image of class c that the network classifies as c and that follows NAP_c (strictly),
clipped to [0, 1]. Domain queries: NAP robustness of class c over [0, 1]^784.
Both solvers get the same timeout per property (all competitor queries together);
Marabou runs with its defaults (one query per competitor, sequential, verbosity 0).
A timed-out run counts as the timeout in the medians and ratios (a lower bound).
Each finished row is cached in --cache (JSON lines) so a re-run resumes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from napkit.network import from_onnx, load_onnx_model
from napkit.patterns import mine
from napkit.verify import Property, domain_box, follows_phases, linf_ball, robustness_spec, verify_property
from napkit.verify.marabou import marabou_core, verify_property_marabou

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
ONNX = SHARED / "benchmarks" / "mnist_fc" / "onnx" / "mnist-net_256x2.onnx.gz"
MNIST = SHARED / "data" / "mnist.npz"


def _load():
    for p in (ONNX, MNIST):
        if not p.exists():
            sys.exit(f"skipped: {p} is absent (the benchmark needs ../shared)")
    proto = load_onnx_model(ONNX)
    net = from_onnx(proto)
    with np.load(MNIST) as f:
        xtr = f["x_train"][:20000].reshape(20000, -1).astype(np.float64) / 255.0
        ytr = f["y_train"][:20000].astype(np.int64)
        xte = f["x_test"].reshape(len(f["x_test"]), -1).astype(np.float64) / 255.0
        yte = f["y_test"].astype(np.int64)
    return proto, net, xtr, ytr, xte, yte


def _first_following(net, naps, xte, yte, c: int) -> int:
    idx = np.flatnonzero(yte == c)[:2000]
    y, pre = net.forward(xte[idx])
    ok = (y.argmax(1) == c) & follows_phases(pre, naps.phases(c), strict=True)
    if not ok.any():
        sys.exit(f"no test image of class {c} follows its NAP")
    return int(idx[np.argmax(ok)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per property, both solvers")
    ap.add_argument("--classes", type=int, nargs="+", default=[0, 2, 3])
    ap.add_argument("--eps", type=float, nargs="+", default=[0.03, 0.05])
    ap.add_argument("--domain-classes", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--delta", type=float, default=0.99)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "nap_vs_marabou.md")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/napkit_nap_vs_marabou.jsonl"))
    args = ap.parse_args(argv)
    marabou_core()  # a clear error when maraboupy is missing
    t_all = time.monotonic()
    proto, net, xtr, ytr, xte, yte = _load()
    t = time.monotonic()
    naps = mine(net, xtr, ytr, args.delta, progress=False)
    print(f"mined δ={args.delta} NAPs in {time.monotonic() - t:.1f} s; sizes {naps.sizes().tolist()}",
          file=sys.stderr)
    queries = []  # (name, class, image or None, eps or None, Property)
    for c in args.classes:
        i = _first_following(net, naps, xte, yte, c)
        for eps in args.eps:
            box = linf_ball(xte[i], eps)
            queries.append((f"c{c} img{i} eps{eps:g}", c, i, eps, Property(box, robustness_spec(c, 10),
                                                                             naps.phases(c))))
    for c in args.domain_classes:
        queries.append((f"c{c} domain", c, None, None,
                        Property(domain_box(net.n_inputs), robustness_spec(c, 10), naps.phases(c))))
    key = f"t{args.timeout:g} d{args.delta:g}"
    cache = {}
    if args.cache.exists():
        for line in args.cache.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            cache[(r["name"], r["key"])] = r
    rows = []
    for name, c, i, eps, prop in queries:
        if (name, key) in cache:
            rows.append(cache[(name, key)])
            continue
        ours = verify_property(net, prop, args.timeout, onnx_model=proto)
        t = time.monotonic()
        theirs = verify_property_marabou(net, prop, args.timeout)
        theirs_s = time.monotonic() - t
        row = {"name": name, "key": key, "class": c, "image": i, "eps": eps,
               "napkit": ours.verdict, "napkit_s": ours.seconds, "napkit_reason": ours.reason,
               "unstable": ours.stats.get("unstable"),
               "marabou": theirs.verdict, "marabou_s": theirs_s, "marabou_reason": theirs.reason,
               "marabou_queries": theirs.stats.get("queries")}
        rows.append(row)
        with open(args.cache, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name}: napkit {ours.verdict} {ours.seconds:.2f} s | Marabou {theirs.verdict} "
              f"{theirs_s:.2f} s ({theirs.reason})", file=sys.stderr, flush=True)
    text = _report(args, rows, naps, time.monotonic() - t_all)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


def _report(args, rows, naps, total_s: float) -> str:
    cmd = "python benchmarks/nap_vs_marabou.py " + " ".join(sys.argv[1:])
    lines = [
        "# NAP-augmented queries on mnist-net_256x2: napkit vs Marabou 2.0.0",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Machine: {platform.machine()}, {platform.python_version()}, run of {total_s / 60:.1f} min. "
        f"Timeout {args.timeout:g} s per property for both solvers (all 9 competitor queries together; "
        "Marabou: defaults, one query per competitor, sequential). A timeout counts as the timeout in "
        "medians and ratios, so ratios with a timed-out Marabou are lower bounds.",
        f"NAPs: δ = {args.delta:g}, first 20000 training images, correctly classified only; "
        f"constrained neurons per class {naps.sizes().tolist()}.",
        "",
        "| query | unstable | napkit | napkit s | Marabou | Marabou s | Marabou / napkit |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for r in rows:
        ratio = r["marabou_s"] / max(r["napkit_s"], 1e-3)
        ratios.append(ratio)
        lines.append(f"| {r['name']} | {r['unstable']} | {r['napkit']} | {r['napkit_s']:.2f} "
                     f"| {r['marabou']} | {r['marabou_s']:.2f} | {ratio:.1f}× |")
    contra = [r["name"] for r in rows if {r["napkit"], r["marabou"]} in ({"verified", "falsified"},
                                                                          {"vacuous", "falsified"})]
    med_n = statistics.median(r["napkit_s"] for r in rows)
    med_m = statistics.median(r["marabou_s"] for r in rows)
    lines += [
        "",
        f"Median time per query: napkit **{med_n:.2f} s**, Marabou **{med_m:.2f} s**; "
        f"ratio of medians **{med_m / max(med_n, 1e-3):.1f}×**, median of per-query ratios "
        f"**{statistics.median(ratios):.1f}×**.",
        f"Decided: napkit {sum(r['napkit'] != 'unknown' for r in rows)} of {len(rows)}, "
        f"Marabou {sum(r['marabou'] != 'unknown' for r in rows)} of {len(rows)}. "
        f"Contradictions: {len(contra)}{' ' + str(contra) if contra else ''}.",
        "",
        "Reasons:",
        "",
    ]
    for r in rows:
        lines.append(f"- {r['name']}: napkit — {r['napkit_reason']}; Marabou — {r['marabou_reason']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

"""VNN-COMP 2022 mnist_fc: napkit's verdicts and times beside the ground truth and the
published alpha-beta-CROWN and Marabou times (truth.csv), then totals and wrong answers.

    .venv/bin/python benchmarks/vnncomp_mnist_fc.py --nets 256x2 [--timeout-scale 1] [--limit N]
        [--only mnist-net_256x4-prop_5_0.05 ...] [--workers N] [--stats]

Instance timeouts as in VNN-COMP 2022 mnist_fc: 120 s for 256x2, 300 s for 256x4 and 256x6,
times --timeout-scale.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

from napkit.network import from_onnx, load_onnx_model
from napkit.verify import VerifyOptions, verify_vnnlib

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks" / "mnist_fc"
INSTANCE_TIMEOUT = {"256x2": 120.0, "256x4": 300.0, "256x6": 300.0}


def _secs(s: str) -> float | None:
    s = s.split()[0] if s and s[0].isdigit() else ""
    return float(s) if s else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["256x2"], help="e.g. 256x2 256x4 256x6")
    ap.add_argument("--timeout-scale", type=float, default=1.0)
    ap.add_argument("--limit", type=int, default=0, help="at most this many instances per net")
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--only", nargs="*", default=None,
                    help="only these instances, e.g. mnist-net_256x4-prop_5_0.05")
    ap.add_argument("--workers", type=int, default=None, help="processes per query (default: cores)")
    ap.add_argument("--stats", action="store_true",
                    help="after each row, the engine's statistics (root bound, tree size, ...) as JSON")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="VerifyOptions fields other than the defaults, e.g. refine_share=0.4")
    args = ap.parse_args(argv)
    fields = {f.name: f.type for f in dataclasses.fields(VerifyOptions)}
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in fields:
            ap.error(f"--set: no VerifyOptions field {name!r}")
        overrides[name] = ast.literal_eval(value)
    if not (args.root / "truth.csv").exists():
        print(f"benchmark data not found under {args.root}", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(open(args.root / "truth.csv")))
    timeouts = {n: INSTANCE_TIMEOUT.get(n, 300.0) * args.timeout_scale for n in args.nets}
    if overrides:
        print(f"# options: {overrides}")
    print("# VNN-COMP 2022 mnist_fc, napkit; timeout per instance: "
          + ", ".join(f"{n} {t:g} s" for n, t in timeouts.items()) + "\n")
    print("| instance | truth | napkit | napkit s | reason | a-b-CROWN s | Marabou s |")
    print("|---|---|---|---|---|---|---|")
    tot = {"solved": 0, "wrong": 0, "n": 0, "s": 0.0, "abc": 0, "mar": 0}
    for net_name in args.nets:
        proto = load_onnx_model(args.root / "onnx" / f"mnist-net_{net_name}.onnx.gz")
        net = from_onnx(proto)
        mine = [r for r in rows if r["inst"].startswith(f"mnist-net_{net_name}-")]
        if args.only:
            mine = [r for r in mine if r["inst"] in args.only]
        if args.limit:
            mine = mine[: args.limit]
        for r in mine:
            prop = r["inst"].split("-", 2)[2]
            t = time.monotonic()
            res = verify_vnnlib(net, args.root / "vnnlib" / f"{prop}.vnnlib.gz",
                                timeout=timeouts[net_name], onnx_model=proto, workers=args.workers, **overrides)
            secs = time.monotonic() - t
            truth = r["truth"]
            wrong = res.verdict != "unknown" and truth in ("sat", "unsat") and res.verdict != truth
            tot["n"] += 1
            tot["s"] += secs
            tot["solved"] += res.verdict != "unknown"
            tot["wrong"] += wrong
            tot["abc"] += _secs(r["alpha_beta_crown_s"]) is not None
            tot["mar"] += _secs(r["marabou_s"]) is not None
            flag = " **WRONG**" if wrong else ""
            print(f"| {r['inst']} | {truth} | {res.verdict}{flag} | {secs:.2f} | {res.reason} "
                  f"| {r['alpha_beta_crown_s']} | {r['marabou_s']} |", flush=True)
            if args.stats:
                print(json.dumps({k: v for k, v in res.to_dict().items() if k != "counterexample"}), flush=True)
    print(f"\nsolved {tot['solved']}/{tot['n']} (alpha-beta-CROWN {tot['abc']}, Marabou "
          f"{tot['mar']}), wrong {tot['wrong']}, napkit total {tot['s']:.1f} s")
    return 1 if tot["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Cross-check napkit's whole-domain NAP proofs by independent routes: a plain MILP and Marabou.

napkit's default route proves most domain queries by branch and bound on optimised
bounds (``bab.py``). Here each query is decided again (1) by napkit with optimised bounds,
branch and bound and pattern LPs switched off, i.e. the big-M MILP on HiGHS over the
interval/CROWN bounds, and (2) by Marabou 2.0, each with a long timeout. A `verified`
that either route falsifies would be a soundness bug.

    .venv/bin/python benchmarks/crosscheck_proofs.py --net 256x4 --delta 0.95 --classes 6 7 \\
        [--timeout 10] [--long 600] [--no-marabou]

NAPs are mined from all 60000 training images (correct only), as in paper_mnist.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, load_mnist, need  # noqa: E402


def main(argv=None) -> int:
    from napkit.network import load_model
    from napkit.patterns import mine
    from napkit.verify import Property, domain_box, robustness_spec, verify_property

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="256x4")
    ap.add_argument("--delta", type=float, default=0.95)
    ap.add_argument("--classes", type=int, nargs="+", default=[6, 7])
    ap.add_argument("--timeout", type=float, default=10.0, help="napkit's default route")
    ap.add_argument("--long", type=float, default=600.0, help="the independent routes")
    ap.add_argument("--no-marabou", action="store_true")
    args = ap.parse_args(argv)

    net = load_model(need(ONNX / f"mnist-net_{args.net}.onnx.gz"))
    xtr, ytr, _, _ = load_mnist()
    naps = mine(net, xtr, ytr, args.delta, progress=False)
    marabou = None
    if not args.no_marabou:
        from napkit.verify import marabou_available, verify_property_marabou

        marabou = verify_property_marabou if marabou_available() else None
    print(f"# {args.net}, δ={args.delta:g}: default route (timeout {args.timeout:g} s) against plain MILP "
          f"and Marabou (timeout {args.long:g} s)\n")
    print("| class | napkit | s | reason | plain MILP | s | Marabou | s | agree |")
    print("|---|---|---|---|---|---|---|---|---|")
    clashes = 0
    for c in args.classes:
        prop = Property(domain_box(net.n_inputs), robustness_spec(c, net.n_outputs), naps.phases(c))
        ours = verify_property(net, prop, timeout=args.timeout)
        plain = verify_property(net, prop, timeout=args.long, optimize=False, bab=False, patterns=False)
        theirs = marabou(net, prop, args.long) if marabou else None
        verdicts = {ours.verdict, plain.verdict} | ({theirs.verdict} if theirs else set())
        clash = {"verified", "falsified"} <= verdicts
        clashes += clash
        m = f"{theirs.verdict} | {theirs.seconds:.1f}" if theirs else "- | -"
        print(f"| {c} | {ours.verdict} | {ours.seconds:.1f} | {ours.reason} | {plain.verdict} | "
              f"{plain.seconds:.1f} | {m} | {'**NO**' if clash else 'yes'} |", flush=True)
    print(f"\ncontradictions: {clashes}")
    return 1 if clashes else 0


if __name__ == "__main__":
    sys.exit(main())

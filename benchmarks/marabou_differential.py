"""Differential soundness run: napkit against Marabou on random small networks and NAPs.

    .venv/bin/python benchmarks/marabou_differential.py [--n 1000] [--start 400] [--timeout 2]

The queries are those of tests/verify/test_marabou.py (``differential_case``: robustness
over the domain or an L-inf ball with mined or random phases, non-ambiguity of two
patterns), from seed ``--start`` on, so the default run does not repeat the 400 of CI.
A contradiction is two decided verdicts that cannot both hold (falsified against
verified/vacuous, verified against vacuous); ``unknown`` never contradicts. Every fourth
query runs napkit with the falsifier process beside the proof (workers=2). Exit 1 on any
contradiction.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "verify"))
from verify_helpers import contradicts, differential_case  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="number of queries")
    ap.add_argument("--start", type=int, default=400, help="first seed (CI uses 0..399)")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds per query, each solver")
    args = ap.parse_args(argv)
    from napkit.verify import Property, robustness_spec, verify_disjoint, verify_property
    from napkit.verify.marabou import marabou_available, verify_disjoint_marabou, verify_property_marabou

    if not marabou_available():
        print("skipped: maraboupy is not importable (pip install 'maraboupy==2.0.0')", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    kinds: dict[tuple, int] = {}
    bad = []
    ours_s = theirs_s = 0.0
    for seed in range(args.start, args.start + args.n):
        kind, net, box, a, b, attack = differential_case(seed)
        if kind == "disjoint":
            ours = verify_disjoint(net, box, a, b, timeout=args.timeout)
            theirs = verify_disjoint_marabou(net, box, a, b, timeout=args.timeout)
        else:
            prop = Property(box, robustness_spec(a, net.n_outputs), b)
            extra = {"workers": 2, "parallel_min_left": 0.0} if seed % 4 == 3 else {"workers": 1}
            ours = verify_property(net, prop, timeout=args.timeout, attack=attack, **extra)
            theirs = verify_property_marabou(net, prop, timeout=args.timeout)
        ours_s += ours.seconds
        theirs_s += theirs.seconds
        key = (kind, ours.verdict, theirs.verdict)
        kinds[key] = kinds.get(key, 0) + 1
        if contradicts(ours.verdict, theirs.verdict):
            bad.append((seed, kind, ours.verdict, ours.reason, theirs.verdict, theirs.reason))
            print(f"CONTRADICTION seed {seed}: {bad[-1]}", flush=True)
    decided = sum(n for (_, o, t), n in kinds.items() if "unknown" not in (o, t))
    print(f"# napkit vs Marabou, {args.n} random queries (seeds {args.start}..{args.start + args.n - 1}), "
          f"timeout {args.timeout:g} s each\n")
    print("| kind | napkit | Marabou | queries |\n|---|---|---|---|")
    for (kind, o, t), n in sorted(kinds.items()):
        print(f"| {kind} | {o} | {t} | {n} |")
    print(f"\ndecided by both: {decided}/{args.n}; contradictions: {len(bad)}; "
          f"napkit {ours_s:.1f} s, Marabou {theirs_s:.1f} s (ratio {theirs_s / max(ours_s, 1e-9):.2f}x); "
          f"wall {time.monotonic() - t0:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

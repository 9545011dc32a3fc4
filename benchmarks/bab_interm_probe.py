"""Branch and bound with and without re-optimised intermediate bounds per subdomain
(``VerifyOptions.bab_interm_every``), from the same root bounds for the same time.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bab_interm_probe.py \\
        --instance vnncomp:256x4:prop_7_0.05 --seconds 40 --every 0 4 8

One tree per value of ``--every`` (0: the root's intermediate bounds throughout, as the
engine runs it), on one process: its verdict, subdomains bounded, the weakest open key, the
open subdomains, and how many subdomains had their intermediate bounds re-optimised and how
many of those were shown to hold no input of the region. Instances as in
``bab_throughput.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bab_throughput import instance, root  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", default="vnncomp:256x4:prop_7_0.05")
    ap.add_argument("--seconds", type=float, default=40.0, help="per tree")
    ap.add_argument("--every", type=int, nargs="+", default=[0, 4, 8])
    args = ap.parse_args(argv)
    from napkit.verify.bab import branch_and_bound
    from napkit.verify.optimized import one_thread
    from napkit.verify.options import VerifyOptions

    print(f"# {args.instance}, {args.seconds:g} s per tree, one process, torch on 1 thread\n")
    print("| bab_interm_every | status | subdomains | weakest open | open | re-optimised | shown empty |")
    print("|---|---|---|---|---|---|---|")
    with one_thread():
        net, prop = instance(args.instance)
        b, c, d, _ = root(net, prop, 6.0)
        for every in args.every:
            res = branch_and_bound(net, b, c, -d, time.monotonic() + args.seconds, lambda x: None,
                                   groups=np.arange(c.shape[0]), options=VerifyOptions(bab_interm_every=every))
            open_now = res.reason.split("(")[-1].split()[0] if "(" in res.reason else "-"
            weakest = "-" if res.bound is None else f"{res.bound:.3f}"
            print(f"| {every} | {res.status} | {res.domains} | {weakest} | {open_now} | {res.refreshed} | "
                  f"{res.emptied} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

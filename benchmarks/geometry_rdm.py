"""RDM benchmark: napkit's one-product RDMs against rsatoolbox's calc_rdm, same run.

    python benchmarks/geometry_rdm.py compare [--patterns 1000] [--units 10000]
    python benchmarks/geometry_rdm.py memory [--patterns 20000] [--units 10000]

`compare` builds seeded Gaussian patterns and times napkit.geometry.rdm and
rsatoolbox.rdm.calc_rdm for euclidean and correlation RDMs (best of 3 for napkit, one
run for rsatoolbox's slow correlation), checks the values agree, and prints peak traced
memory. rsatoolbox's "euclidean" is the squared distance divided by the number of units.
`memory` runs each napkit configuration in a fresh subprocess and prints its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from napkit.geometry import rdm, to_condensed


def patterns(n: int, p: int, dtype=np.float64) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, p), dtype=np.float32).astype(dtype)
    x += rng.standard_normal((1, p), dtype=np.float32) * 3  # a shared mean, as in real data
    return x


def timed(fn, repeat: int = 1):
    best, out, peak = np.inf, None, 0
    for _ in range(repeat):
        tracemalloc.start()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return out, best, peak / 2**20


def compare(n: int, p: int) -> None:
    try:
        from rsatoolbox.data import Dataset
        from rsatoolbox.rdm import calc_rdm
    except ImportError:
        sys.exit("rsatoolbox is needed for the baseline: pip install rsatoolbox")
    x = patterns(n, p)
    print(f"{n} patterns x {p} units, float64")
    print(
        "| method | napkit s | rsatoolbox s | speed-up | napkit peak MiB | rsatoolbox peak MiB "
        "| max abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for method in ("euclidean", "correlation"):
        ours, t_ours, m_ours = timed(lambda m=method: rdm(x, m, condensed=True), repeat=3)
        ref, t_ref, m_ref = timed(lambda m=method: calc_rdm(Dataset(x), method=m))
        ref_v = to_condensed(ref.get_matrices()[0])
        mine = ours**2 / p if method == "euclidean" else ours
        diff = np.abs(mine - ref_v).max()
        print(
            f"| {method} | {t_ours:.3f} | {t_ref:.3f} | {t_ref / t_ours:.1f}x | {m_ours:.0f} "
            f"| {m_ref:.0f} | {diff:.1e} |",
            flush=True,
        )


def one_memory_run(n: int, p: int, method: str, condensed: bool, dtype: str) -> None:
    x = patterns(n, p, np.dtype(dtype))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    out = rdm(x, method, condensed=condensed, dtype=np.dtype(dtype))
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "input_mib": x.nbytes / 2**20,
                "output_mib": out.nbytes / 2**20,
                "rss_before_mib": base / 1024,
                "peak_rss_mib": peak / 1024,
                "seconds": seconds,
            }
        )
    )


def memory(n: int, p: int) -> None:
    print(f"{n} patterns x {p} units; peak RSS of a fresh process (input made before the RDM)")
    print("| method | form | dtype | input MiB | output MiB | RSS before MiB | peak RSS MiB | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for method, condensed, dtype in [
        ("correlation", True, "float64"),
        ("euclidean", True, "float64"),
        ("correlation", False, "float64"),
        ("correlation", True, "float32"),
    ]:
        cmd = [
            sys.executable,
            __file__,
            "_one",
            "--patterns",
            str(n),
            "--units",
            str(p),
            "--method",
            method,
            "--dtype",
            dtype,
        ] + (["--condensed"] if condensed else [])
        r = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        )
        form = "condensed" if condensed else "square"
        print(
            f"| {method} | {form} | {dtype} | {r['input_mib']:.0f} | {r['output_mib']:.0f} "
            f"| {r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} | {r['seconds']:.1f} |",
            flush=True,
        )


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("part", choices=["compare", "memory", "_one"])
    a.add_argument("--patterns", type=int)
    a.add_argument("--units", type=int, default=10000)
    a.add_argument("--method", default="correlation")
    a.add_argument("--dtype", default="float64")
    a.add_argument("--condensed", action="store_true")
    args = a.parse_args()
    if args.part == "compare":
        compare(args.patterns or 1000, args.units)
    elif args.part == "memory":
        memory(args.patterns or 20000, args.units)
    else:
        one_memory_run(args.patterns, args.units, args.method, args.condensed, args.dtype)


if __name__ == "__main__":
    main()

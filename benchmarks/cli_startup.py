"""Start-up overhead of the `napkit` command: wall time minus the `seconds` the command reports.

Runs each command in a fresh interpreter, for this worktree's code ("after") and for the
code of an older commit ("before", extracted with `git archive` into a temporary folder),
interleaved in the same run so both see the same machine load. The overhead is what a user
waits for beyond the work itself: interpreter start, imports, reading the model and data.

    python benchmarks/cli_startup.py [--before REV] [--repeat N] [--out benchmarks/results/cli_startup.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import MNIST, ONNX, ROOT, SHARED, need

VNNLIB = SHARED / "benchmarks" / "mnist_fc" / "vnnlib"
BASE_REV = "8fb300e"  # the commit issue 10's start-up work started from


def extract(rev: str, into: Path) -> Path:
    """The ``src`` folder of ``rev``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def commands(work: Path) -> dict[str, list[str]]:
    """name -> argv (a fresh ``--out`` path is filled in per run by ``{n}``)."""
    net = str(need(ONNX / "mnist-net_256x2.onnx.gz"))
    small = str(work / "small.npz")
    naps = str(work / "naps.json")
    return {
        "--help": ["--help"],
        "vnnlib (prop_0_0.03, unsat by bounds)": [
            "vnnlib", net, str(need(VNNLIB / "prop_0_0.03.vnnlib.gz")), "--json"],
        "verify --center, ε = 0.005 (no NAP)": [
            "verify", net, "--label", "7", "--center", small, "--index", "0", "--eps", "0.005", "--json"],
        "export-vnnlib --domain": [
            "export-vnnlib", net, "--naps", naps, "--label", "0", "--domain", "--out", str(work / "exp{n}"),
            "--json"],
        "mine (2000 images)": [
            "mine", net, small, "--delta", "0.99", "--out", str(work / "mined{n}.json"), "--json"],
        "stats (2000 images)": ["stats", net, naps, small, "--json"],
    }


def run_once(src: Path, argv: list[str], n: int) -> tuple[float, float]:
    """(wall seconds, reported seconds or 0) of one run of ``napkit argv``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    argv = [a.replace("{n}", str(n)) for a in argv]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from napkit.cli import run; run()", *argv],
                          capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"napkit {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    reported = 0.0
    if "--json" in argv:
        reported = float(json.loads(proc.stdout.strip().splitlines()[-1]).get("seconds") or 0.0)
    return wall, reported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BASE_REV, help="git revision measured as the baseline")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="napkit-startup-") as tmp:
        work = Path(tmp)
        (work / "before").mkdir()
        before_src = extract(args.before, work / "before")
        after_src = ROOT / "src"
        with np.load(need(MNIST)) as f:
            np.savez(work / "small.npz", x=f["x_test"][:2000], y=f["y_test"][:2000])
        cmds = commands(work)
        run_once(after_src, ["mine", cmds["mine (2000 images)"][1], str(work / "small.npz"),
                             "--delta", "0.99", "--out", str(work / "naps.json")], 0)
        rows, n = [], 0
        for name, argv in cmds.items():
            over = {"before": [], "after": []}
            for _ in range(args.repeat):
                for label, src in (("before", before_src), ("after", after_src)):
                    n += 1
                    wall, reported = run_once(src, argv, n)
                    over[label].append(wall - reported)
            b, a = statistics.median(over["before"]), statistics.median(over["after"])
            rows.append((name, b, a))
            print(f"{name:45s} before {b:6.2f} s  after {a:6.2f} s  ratio {b / a:5.1f}x", flush=True)
    lines = [
        "| command | overhead before (s) | after (s) | before / after |",
        "|---|---|---|---|",
        *[f"| `{name}` | {b:.2f} | {a:.2f} | {b / a:.1f}× |" for name, b, a in rows],
    ]
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text(
            "# CLI start-up overhead\n\nWall time minus the `seconds` each command reports (median of "
            f"{args.repeat} runs, before = commit `{args.before}`, after = this tree), from\n"
            f"`python benchmarks/cli_startup.py --repeat {args.repeat} --out {args.out}`.\n\n"
            + "\n".join(lines) + "\n"
        )


if __name__ == "__main__":
    main()

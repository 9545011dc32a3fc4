"""Probe capacity against selectivity (issue 11 §5: best accuracy ≥ 0.95, selectivity ≥ 0.3).

For each model folder: the regime probe (``probe_regime``, control keys = the cue words,
selectivity = the largest gap over sites) and the binding probe (``probe_binding``, control
keys = the prompt's ordered colour pair, selectivity at the most accurate site), once per
fixed inverse L2 strength C and once with napkit's default, the one-standard-error choice
per site over those strengths. The choice looks at the task alone; Hewitt & Liang's
control task shows what each capacity buys.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_probe_capacity.py [MODEL_DIR ...]

Without a folder the shipped tiny model is used. Results: benchmarks/results/lm_probes.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from napkit.lm.experiments import probe_binding, probe_regime
from napkit.lm.models import load, load_tiny
from napkit.lm.probes import C_GRID


def row(name: str, label: str, res: dict, binding: bool) -> str:
    sel = res["probe_selectivity"]
    extra = f"{res['probe_max_selectivity']:.3f}" if binding else "-"
    return (
        f"| {name} | {label} | {res['probe_best_acc']:.3f} | `{res['probe_best_site']}` | "
        f"{res['probe_best_c']:g} | {sel:.3f} | {extra} | {res['probe_random_init_best_acc']:.3f} |"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"load average at the start: {os.getloadavg()[0]:.1f}; one torch thread")
    print("| probe | strengths | best accuracy | best site | C there | selectivity | max selectivity | random init |")
    print("|---|---|---|---|---|---|---|---|")
    grids = [(f"C = {c:g} only", (c,)) for c in C_GRID] + [("one-SE choice (default)", C_GRID)]
    for path in args.models or [None]:
        lm = load_tiny() if path is None else load(path)
        tag = path or "shipped tiny"
        for task, run, binding in (("binding", probe_binding, True), ("regime", probe_regime, False)):
            for label, grid in grids:
                print(row(f"{tag}: {task}", label, run(lm, c_grid=grid), binding), flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much one control-task draw moves a probe's selectivity (issue 11 §5: selectivity ≥ 0.3).

For each model folder: the regime probe of ``tests/lm/test_probes.py`` (200 contrast prompts,
positions 7 and 9, every block's output, control keys = the 16 cue words) with one control
draw per seed, then with the default average over ``CONTROL_DRAWS`` draws; and the demo's
binding probe (``probe_binding``) with the default.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_probe_draws.py [MODEL_DIR ...] [--seeds 6]

Without a folder the shipped tiny model is used. Results: benchmarks/results/lm_probes.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from napkit.lm.experiments import contrast_prompts, probe_binding
from napkit.lm.models import load, load_tiny, random_init_like
from napkit.lm.probes import CONTROL_DRAWS, probe

POSITIONS = [7, 9]  # "so" and "was", after the cue word


def regime_selectivity(lm, seed: int, draws: int) -> float:
    prompts, regimes, cues = contrast_prompts(200)
    sites = [f"blocks.{i}.hook_resid_post" for i in range(lm.model.config.num_hidden_layers)]
    res = probe(lm, prompts, regimes, sites, POSITIONS, control_keys=cues, seed=seed, control_draws=draws)
    return res.max_selectivity


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--seeds", type=int, default=6, help="single control draws to show")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"load average at the start: {os.getloadavg()[0]:.1f}; one torch thread")
    print("| model | regime, one draw per seed | mean | regime, default | random init, default | binding, default |")
    print("|---|---|---|---|---|---|")
    for path in args.models or [None]:
        lm = load_tiny() if path is None else load(path)
        single = [regime_selectivity(lm, s, 1) for s in range(args.seeds)]
        avg = regime_selectivity(lm, 0, CONTROL_DRAWS)
        fresh = regime_selectivity(random_init_like(lm), 0, CONTROL_DRAWS)
        binding = probe_binding(lm)["probe_selectivity"]
        print(
            f"| {path or 'shipped tiny'} | {', '.join(f'{s:.3f}' for s in single)} | {np.mean(single):.3f} "
            f"| {avg:.3f} | {fresh:.3f} | {binding:.3f} |",
            flush=True,
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

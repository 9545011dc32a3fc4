"""One tiny-model training candidate and its subject-position patching (issue 11 §5: facts
recalled at the subject), with the subject-position curve logged at every evaluation.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_subject_trials.py NAME '{"mix": {...}, ...}' [--root /tmp/lmsub] [--seed 0]

The JSON holds ``TinyConfig`` changes (corpus mixes as {kind: share}). The model goes to
ROOT/NAME, the log (one line per evaluation) to ROOT/NAME.log, the figures to ROOT/NAME.json.
Trials and their reading: benchmarks/results/lm_patching.md (2026-12-05 section).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import napkit.lm.train as T
from napkit.lm import method_figures as mf
from napkit.lm.corpus import GRAMMAR
from napkit.lm.models import load
from napkit.lm.patching import patch_sweep

PAIRS = 64  # fact prompts patched (clean name -> another name with another city)
LOG_EVERY_N = 200  # the trainer's progress evaluations use n=200 prompts per task
PHASE2_END_EVAL = 9  # the 9th progress evaluation is step 4500, the end of phase 2


def subject_curve(model, tokenizer) -> list[float]:
    """Recovery by layer of patching the subject position (resid_pre), as the demo measures it."""
    rng = np.random.default_rng(0)
    names = list(GRAMMAR.facts)
    pairs = [(a, b) for a, b in (rng.choice(names, 2, replace=False) for _ in range(4 * PAIRS))
             if GRAMMAR.facts[a] != GRAMMAR.facts[b]][:PAIRS]
    clean = mf._prompts(tokenizer, [GRAMMAR.fact(rng, a) for a, _ in pairs])
    corrupted = mf._prompts(tokenizer, [GRAMMAR.fact(rng, b) for _, b in pairs])
    res = patch_sweep(model, clean[0], corrupted[0], clean[2], corrupted[2], "resid_pre", clean[1])
    return [round(float(x), 3) for x in res.scores[:, 1]]


def logging_accuracies(log, root: Path, name: str):
    """``task_accuracies`` that also logs the subject curve at each progress evaluation and
    keeps the end-of-phase-2 weights (the trainer has no hook for either)."""
    plain = T.task_accuracies
    calls = 0

    def accuracies(model, tokenizer, grammar=GRAMMAR, n=400):
        nonlocal calls
        acc = plain(model, tokenizer, grammar, n=n)
        if n == LOG_EVERY_N:
            with torch.no_grad():
                acc["subj"] = subject_curve(model, tokenizer)
            calls += 1
            if calls == PHASE2_END_EVAL:
                torch.save(model.state_dict(), root / f"{name}_phase2.pt")
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in acc.items()}),
                  file=log, flush=True)
        return acc

    return accuracies


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("changes", nargs="?", default="{}", help="TinyConfig changes as JSON")
    ap.add_argument("--root", type=Path, default=Path("/tmp/lmsub"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    kw = json.loads(args.changes)
    for k in T.MIX_OPTIONS:
        if k in kw:
            kw[k] = tuple(kw[k].items())
    cfg = replace(T.TinyConfig(), **kw)
    args.root.mkdir(parents=True, exist_ok=True)
    out = args.root / args.name
    with open(args.root / f"{args.name}.log", "w") as log:
        T.task_accuracies = logging_accuracies(log, args.root, args.name)
        try:
            info = T.train_tiny(out, seed=args.seed, cfg=cfg, progress=False,
                                log=lambda s, loss, a: print("step", s, "loss", round(loss, 3), file=log, flush=True))
        except T.TrainingGateError as exc:
            print("GATE FAIL", exc, file=log, flush=True)
            return 1
        lm = load(out)
        fig = mf.patch_figures(lm.model, lm.tokenizer)
        res = {"name": args.name, "seed": args.seed, "cfg": json.loads(args.changes), "acc": info["accuracies"],
               "train_seconds": info["train_seconds"], "recovery": fig["patch_recall_recovery"],
               "subject_by_layer": fig["patch_recall_subject_by_layer"],
               "last_by_layer": fig["patch_recall_last_by_layer"], "recall_cut": fig["patch_recall_cut"],
               "binding_cut": fig["patch_binding_cut"], "load": os.getloadavg()}
        print(json.dumps(res), file=log, flush=True)
    (args.root / f"{args.name}.json").write_text(json.dumps(res))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

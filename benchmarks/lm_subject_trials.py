"""Train one tiny-model candidate into /tmp/lmsub/NAME and measure subject-position patching.

Usage: trial NAME JSON (TinyConfig changes; mixes as {kind: share}); see
benchmarks/results/lm_patching.md (2026-12-05 section).
"""

import json
import os
import sys
import time
from dataclasses import replace

import numpy as np
import torch

import napkit.lm.train as T
from napkit.lm import method_figures as mf
from napkit.lm.corpus import GRAMMAR
from napkit.lm.models import load
from napkit.lm.patching import patch_sweep

torch.set_num_threads(1)

name = sys.argv[1]
kw = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
for k in ("first_mix", "mix", "polish_mix"):
    if k in kw:
        kw[k] = tuple(kw[k].items())
cfg = replace(T.TinyConfig(), **kw)
out = f"/tmp/lmsub/{name}"
logf = open(f"/tmp/lmsub/{name}.log", "w")


def subj_curve(model, tok):
    rng = np.random.default_rng(0)
    names = list(GRAMMAR.facts)
    pairs = [
        (a, b)
        for a, b in (rng.choice(names, 2, replace=False) for _ in range(256))
        if GRAMMAR.facts[a] != GRAMMAR.facts[b]
    ][:64]
    f = mf._prompts(tok, [GRAMMAR.fact(rng, a) for a, _ in pairs])
    c = mf._prompts(tok, [GRAMMAR.fact(rng, b) for _, b in pairs])
    r = patch_sweep(model, f[0], c[0], f[2], c[2], "resid_pre", f[1])
    return [round(float(x), 3) for x in r.scores[:, 1]]


orig = T.task_accuracies


def wrapped(model, tok, grammar=GRAMMAR, n=400):
    acc = orig(model, tok, grammar, n=n)
    if n == 200:
        with torch.no_grad():
            acc["subj"] = subj_curve(model, tok)
        wrapped.calls = getattr(wrapped, "calls", 0) + 1
        if wrapped.calls == 9:  # step 4500: the end of phase 2
            torch.save(model.state_dict(), f"/tmp/lmsub/{name}_phase2.pt")
        print(
            json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in acc.items()}),
            file=logf,
            flush=True,
        )
    return acc


T.task_accuracies = wrapped
t0 = time.time()
try:
    info = T.train_tiny(
        out,
        seed=0,
        cfg=cfg,
        progress=False,
        log=lambda s, loss, a: print("step", s, "loss", round(loss, 3), file=logf, flush=True),
    )
except T.TrainingGateError as e:
    print("GATE FAIL", e, file=logf, flush=True)
    sys.exit(1)
lm = load(out)
fig = mf.patch_figures(lm.model, lm.tokenizer)
res = {
    "name": name,
    "cfg": kw,
    "acc": info["accuracies"],
    "train_seconds": info["train_seconds"],
    "recovery": fig["patch_recall_recovery"],
    "subject_by_layer": fig["patch_recall_subject_by_layer"],
    "last_by_layer": fig["patch_recall_last_by_layer"],
    "recall_cut": fig["patch_recall_cut"],
    "binding_cut": fig["patch_binding_cut"],
    "load": os.getloadavg(),
}
print(json.dumps(res), file=logf, flush=True)
json.dump(res, open(f"/tmp/lmsub/{name}.json", "w"))

"""Probes per layer and position on the tiny model: napkit ``probes.probe`` (one capture of the
probed rows + scikit-learn) against TransformerLens's full cache + the same scikit-learn.

Task: the regime of the grammar's contrast prompts, read from ``blocks.{i}.hook_resid_post``
of every layer at every position after the cue word, with the control task (a random regime
per cue word) at each site: the demo's probe experiment. napkit captures only the probed
rows (batches of 64, rows gathered in the hooks); the baseline runs
``HookedTransformer.run_with_cache`` on all prompts (every hook point, every position) and
slices the same rows from the cache. Both then fit the same standardised logistic regressions
with the same stratified 5-fold split, the L2 strength at each site chosen from C = 1, 0.1,
0.01, 0.001 by the one-standard-error rule (the control probe at the chosen strength). Each side runs in a fresh process; memory is the peak
resident memory above the process's state after loading the model and importing
scikit-learn and a warm-up run on a few inputs. Targets: accuracies
±0.01, time ≤1.2×, memory ≤1/5 of the baseline.

    PYTHONPATH=src python benchmarks/lm_probes.py [--n 400] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report  # noqa: E402
from _lm import header, hooked_tiny, interleaved_sides, measure_side, need_anchor  # noqa: E402


def task(lm, n: int):
    from napkit.lm.experiments import CUE_POSITION, contrast_prompts, resid_sites

    prompts, regimes, cues = contrast_prompts(n)
    n_pos = len(lm.tokenizer(prompts[0])["input_ids"])
    return prompts, regimes, cues, resid_sites(lm), list(range(CUE_POSITION + 1, n_pos))


def sklearn_probe(x, y, control, seed: int = 0) -> tuple[float, float]:
    """The same probes as napkit's, written out: standardised logistic regressions, stratified
    5-fold, C by the one-standard-error rule over the grid; (task accuracy, control accuracy)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def folds(labels, c):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        return cross_val_score(model, x, labels, cv=StratifiedKFold(5, shuffle=True, random_state=seed))

    grid = [1.0, 0.1, 0.01, 0.001]
    scores = [folds(y, c) for c in grid]
    best = max(range(len(grid)), key=lambda i: scores[i].mean())
    bar = scores[best].mean() - scores[best].std(ddof=1) / np.sqrt(len(scores[best])) - 1e-12
    c = min(g for g, s in zip(grid, scores, strict=True) if s.mean() >= bar)
    return float(scores[grid.index(c)].mean()), float(folds(control, c).mean())


def run_napkit(lm, n: int):
    from napkit.lm.probes import probe

    prompts, regimes, cues, sites, positions = task(lm, n)
    # one control draw, as the baseline side fits: the same probes on both sides
    res = probe(lm, prompts, regimes, sites, positions, control_keys=cues, control_draws=1)
    return res.accuracy, res.control


def run_tl(lm, n: int):
    import numpy as np
    import torch

    from napkit.lm.probes import control_labels

    model = hooked_tiny(lm)
    prompts, regimes, cues, sites, positions = task(lm, n)
    ids = lm.tokenizer(prompts, return_tensors="pt")["input_ids"]  # one length: no padding
    with torch.no_grad():
        _, cache = model.run_with_cache(ids)
    control = control_labels(np.asarray(cues), regimes)
    acc = np.zeros((len(sites), len(positions)))
    ctl = np.zeros_like(acc)
    for i, site in enumerate(sites):
        for j, p in enumerate(positions):
            acc[i, j], ctl[i, j] = sklearn_probe(cache[site][:, p].numpy(), regimes, control)
    return acc, ctl


def worker(which: str, n: int) -> None:
    import sklearn.linear_model  # noqa: F401 (imported before the measurement, by both sides)
    import sklearn.model_selection  # noqa: F401
    import sklearn.pipeline  # noqa: F401

    measure_side(which, run_napkit, run_tl, n, ('acc', 'ctl'))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="contrast prompts")
    ap.add_argument(
        "--rounds", type=int, default=2, help="fresh processes per side (best time, largest memory)"
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", nargs=2, default=None)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    need_anchor("transformer_lens")
    import numpy as np

    best, mb = interleaved_sides(__file__, args.n, args.rounds)
    acc = {k: np.array(v["acc"]) for k, v in best.items()}
    ctl = {k: np.array(v["ctl"]) for k, v in best.items()}
    d_acc = float(max(np.abs(acc["napkit"] - acc["tl"]).max(), np.abs(ctl["napkit"] - ctl["tl"]).max()))
    t_ratio = best["napkit"]["seconds"] / best["tl"]["seconds"]
    m_ratio = mb["napkit"] / mb["tl"]
    cmd = f"PYTHONPATH=src python benchmarks/lm_probes.py --n {args.n} --rounds {args.rounds}"
    lines = header("lm_probes: napkit probes vs TransformerLens full cache + scikit-learn", cmd) + [
        f"{args.n} contrast prompts, {acc['napkit'].shape[0]} layers × {acc['napkit'].shape[1]} positions, task and "
        f"control probe at each site (5-fold CV). Best time of {args.rounds} fresh processes per side; memory: "
        "the largest peak RSS above the state after loading the model, importing scikit-learn "
        "and a warm-up run on a few inputs.",
        "",
        "| run | seconds | peak MiB above start | best accuracy | best control |",
        "|---|---|---|---|---|",
        f"| napkit `probe` (capture of the probed rows + scikit-learn) | {best['napkit']['seconds']:.1f} | "
        f"{mb['napkit']:.1f} | {acc['napkit'].max():.3f} | {ctl['napkit'].max():.3f} |",
        f"| TL `run_with_cache` (all hooks, all prompts) + scikit-learn | {best['tl']['seconds']:.1f} | "
        f"{mb['tl']:.1f} | {acc['tl'].max():.3f} | {ctl['tl'].max():.3f} |",
        "",
        f"Task accuracy per layer (napkit, max over positions): {np.round(acc['napkit'].max(1), 3).tolist()}.",
        "",
        f"Targets: accuracies ±0.01 ({'met' if d_acc <= 0.01 else 'NOT met'}: largest difference {d_acc:.4f} "
        f"over {acc['napkit'].size} task and as many control probes); time ≤1.2× "
        f"({'met' if t_ratio <= 1.2 else 'NOT met'}: {t_ratio:.2f}×); memory ≤1/5 "
        f"({'met' if m_ratio <= 0.2 else 'NOT met'}: {m_ratio:.2f}×).",
    ]
    finish_report(lines, args.out)


if __name__ == "__main__":
    main()

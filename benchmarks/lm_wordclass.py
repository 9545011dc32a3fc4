"""Emergent word classes on the tiny model: napkit ``wordclass_scores`` (one pass keeping the
last position's state per layer + scikit-learn k-means) against TransformerLens's full cache +
the same k-means.

Windows of 9 words of the grammar's plain clauses (``wordclass.windows``, the demo's data);
the state of the last position at each layer (embeddings, after each block, the last after
the final norm) is standardised and clustered by k-means with as many clusters as word
classes; purity and NMI against the last word's class. The baseline runs
``HookedTransformer.run_with_cache`` on all windows (every hook point, every position),
reads ``blocks.{i}.hook_resid_pre`` and the final norm's output at the last position, and
fits the same k-means (same standardisation, k, n_init, seed). Each side runs in a fresh
process; memory is the peak resident memory above the state after loading the model,
importing scikit-learn and a warm-up run on a few inputs. Targets: purities ±0.01, time ≤1.2×, memory ≤1/5 of the baseline.

    PYTHONPATH=src python benchmarks/lm_wordclass.py [--n 2000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report  # noqa: E402
from _lm import header, hooked_tiny, interleaved_sides, measure_side, need_anchor  # noqa: E402

N_INIT = 4  # napkit's cluster_scores default


def data(lm, n: int, seed: int = 0):
    from napkit.lm.corpus import GRAMMAR
    from napkit.lm.wordclass import windows

    return windows(GRAMMAR.sample("plain", 800, seed + 9), lm.tokenizer, n, seed=seed)


def kmeans_purity(states, labels, seed: int = 0) -> tuple[float, float]:
    """Standardised states, k-means with k = number of classes; (purity, NMI). Written out with
    scikit-learn and numpy only."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    x = np.asarray(states, dtype=np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    classes, lab = np.unique(labels, return_inverse=True)
    clusters = KMeans(len(classes), n_init=N_INIT, random_state=seed).fit_predict(x)
    counts = np.zeros((clusters.max() + 1, len(classes)), dtype=np.int64)
    np.add.at(counts, (clusters, lab), 1)
    return float(counts.max(1).sum() / len(labels)), float(normalized_mutual_info_score(labels, clusters))


def run_napkit(lm, n: int):
    from napkit.lm.wordclass import wordclass_scores

    ids, labels = data(lm, n)
    res = wordclass_scores(lm.model, ids, labels)
    return res.purity, res.nmi


def run_tl(lm, n: int):
    import numpy as np
    import torch

    model = hooked_tiny(lm)
    ids, labels = data(lm, n)
    with torch.no_grad():
        _, cache = model.run_with_cache(ids)
    layers = model.cfg.n_layers
    states = [cache[f"blocks.{i}.hook_resid_pre"][:, -1] for i in range(layers)]
    final = cache["ln_final.hook_normalized"][:, -1] * model.ln_final.w + model.ln_final.b
    rows = [kmeans_purity(s.detach().numpy(), labels) for s in [*states, final]]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def worker(which: str, n: int) -> None:
    import sklearn.cluster  # noqa: F401 (imported before the measurement, by both sides)
    import sklearn.metrics  # noqa: F401

    measure_side(which, run_napkit, run_tl, n, ('purity', 'nmi'))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="windows")
    ap.add_argument(
        "--rounds", type=int, default=1, help="fresh processes per side (best time, largest memory)"
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
    pur = {k: np.array(v["purity"]) for k, v in best.items()}
    nmi = {k: np.array(v["nmi"]) for k, v in best.items()}
    d_pur = float(np.abs(pur["napkit"] - pur["tl"]).max())
    d_nmi = float(np.abs(nmi["napkit"] - nmi["tl"]).max())
    t_ratio = best["napkit"]["seconds"] / best["tl"]["seconds"]
    m_ratio = mb["napkit"] / mb["tl"]
    cmd = f"PYTHONPATH=src python benchmarks/lm_wordclass.py --n {args.n} --rounds {args.rounds}"
    lines = header("lm_wordclass: napkit word classes vs TransformerLens full cache + scikit-learn", cmd) + [
        f"{args.n} windows of 9 words (+ <bos>), k-means (n_init {N_INIT}) per layer on the last position's state. "
        f"Best time of {args.rounds} fresh process(es) per side; memory: the largest peak RSS above the state after "
        "loading the model, importing scikit-learn and a warm-up run on a few inputs.",
        "",
        "| run | seconds | peak MiB above start | purity per layer (embeddings … final norm) |",
        "|---|---|---|---|",
        f"| napkit `wordclass_scores` | {best['napkit']['seconds']:.1f} | {mb['napkit']:.1f} | "
        f"{np.round(pur['napkit'], 3).tolist()} |",
        f"| TL `run_with_cache` (all hooks, all windows) + scikit-learn | {best['tl']['seconds']:.1f} | "
        f"{mb['tl']:.1f} | {np.round(pur['tl'], 3).tolist()} |",
        "",
        f"Targets: purities ±0.01 ({'met' if d_pur <= 0.01 else 'NOT met'}: largest difference {d_pur:.4f}; NMI "
        f"{d_nmi:.4f}); time ≤1.2× ({'met' if t_ratio <= 1.2 else 'NOT met'}: {t_ratio:.2f}×); memory ≤1/5 "
        f"({'met' if m_ratio <= 0.2 else 'NOT met'}: {m_ratio:.2f}×).",
    ]
    finish_report(lines, args.out)


if __name__ == "__main__":
    main()

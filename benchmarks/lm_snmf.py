"""SNMF benchmark: napkit's fit_snmf against a dense re-implementation of the published updates.

    python benchmarks/lm_snmf.py [--model DIR] [--layer 1] [--rank 24] [--iters 100]

The matrix: MLP neuron activations (d_mlp × tokens) of one layer of a causal LM folder
(default: the committed tiny model; random ReLU data when none is available). Both
implementations start from the same G (napkit's SVD init) and run the same number of
iterations of Ding, Li & Jordan's updates (F by ridge least squares, G multiplicatively,
G columns normalised): the reference is the straightforward numpy transcription (an
explicit inverse, P⁺/P⁻ and Q⁺/Q⁻ as (|X| ± X)/2, the error from the dense residual). It
prints the largest difference of the two loss curves, the time per iteration of each and
the ratio; then scikit-learn's NMF at the same rank (time, error) and the time napkit's
SNMF needs to reach NMF's error.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napkit.lm.snmf import RIDGE, fit_snmf, init_codes, svd_rel_error


def reference_snmf(a: np.ndarray, g: np.ndarray, iters: int) -> list[float]:
    """The published updates, transcribed directly (dense numpy, float64)."""
    errors = []
    k = g.shape[1]
    for _ in range(iters):
        f = a @ g @ np.linalg.inv(g.T @ g + RIDGE * np.eye(k))
        p, q = a.T @ f, f.T @ f
        p_pos, p_neg = (np.abs(p) + p) / 2, (np.abs(p) - p) / 2
        q_pos, q_neg = (np.abs(q) + q) / 2, (np.abs(q) - q) / 2
        g = g * np.sqrt((p_pos + g @ q_neg) / np.maximum(p_neg + g @ q_pos, 1e-12))
        norms = np.maximum(np.linalg.norm(g, axis=0), 1e-12)
        f, g = f * norms, g / norms
        errors.append(float(np.linalg.norm(a - f @ g.T) / np.linalg.norm(a)))
    return errors


def activations(model_dir: str | None, layer: int, sentences: int) -> tuple[np.ndarray, str]:
    try:
        from napkit.lm.corpus import GRAMMAR
        from napkit.lm.method_figures import token_rows
        from napkit.lm.models import load, load_tiny
        from napkit.lm.patching import Site

        lm = load(model_dir) if model_dir else load_tiny()
        rows = token_rows(lm.model, lm.tokenizer, GRAMMAR.corpus(sentences, seed=1), Site("neuron", layer, 0))
        return rows.double().T.numpy(), f"MLP neurons of layer {layer} of {lm.source}"
    except Exception as exc:  # no model available: the same shape of ReLU data
        rng = np.random.default_rng(0)
        a = np.maximum(
            rng.normal(size=(512, 24)) @ rng.normal(size=(24, 4000)) + rng.normal(size=(512, 4000)), 0
        )
        return a, f"random ReLU data 512 x 4000 (no model: {type(exc).__name__}: {exc})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--layer", type=int, default=1)
    ap.add_argument("--rank", type=int, default=24)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a, what = activations(args.model, args.layer, args.sentences)
    print(
        f"matrix: {what}, shape {a.shape}, rank {args.rank}, {args.iters} iterations, {args.threads} thread(s)"
    )
    g0 = init_codes(torch.as_tensor(a), args.rank, "svd", torch.Generator().manual_seed(0)).numpy()

    t = time.perf_counter()
    ref = reference_snmf(a, g0, args.iters)
    t_ref = (time.perf_counter() - t) / args.iters
    t = time.perf_counter()
    ours = fit_snmf(a, args.rank, n_iter=args.iters, init=g0).rel_errors
    t_ours = (time.perf_counter() - t) / args.iters
    diff = float(np.max(np.abs(np.array(ours) - np.array(ref))))
    print("| implementation | s / iteration | final rel. error |")
    print("|---|---|---|")
    print(f"| napkit fit_snmf | {t_ours:.4f} | {ours[-1]:.6f} |")
    print(f"| dense reference | {t_ref:.4f} | {ref[-1]:.6f} |")
    print(f"speed-up {t_ref / t_ours:.2f}x; largest loss-curve difference {diff:.2e}")

    from sklearn.decomposition import NMF

    t = time.perf_counter()
    nmf = NMF(args.rank, init="nndsvda", max_iter=500, random_state=0)
    w = nmf.fit_transform(a.T)
    t_nmf = time.perf_counter() - t
    e_nmf = float(np.linalg.norm(a.T - w @ nmf.components_) / np.linalg.norm(a))
    reached = next((i + 1 for i, e in enumerate(ours) if e <= e_nmf), None)
    print(f"SVD rank-{args.rank} error {svd_rel_error(a, args.rank):.6f}")
    print(f"scikit-learn NMF: {t_nmf:.2f} s, {nmf.n_iter_} iterations, rel. error {e_nmf:.6f}")
    if reached is None:
        print(f"napkit SNMF did not reach NMF's error in {args.iters} iterations")
    else:
        print(
            f"napkit SNMF reaches it after {reached} iterations, {reached * t_ours:.2f} s "
            f"({t_nmf / (reached * t_ours):.1f}x less time than NMF)"
        )


if __name__ == "__main__":
    main()

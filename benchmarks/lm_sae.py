"""TopK SAEs on the tiny model's residual stream: napkit ``train_sae`` against SAELens
``TopKTrainingSAE`` + ``SAETrainer``, fed by the same activation iterator, in one run.

Activations: ``blocks.{L}.hook_resid_post`` of the committed tiny model on grammar
sentences (napkit capture, every real token), shuffled once with a fixed seed; held-out
rows come from other sentences. Each trainer gets its own copy of one iterator over the
same batches in the same order, for the same number of samples, with the same width,
k, batch size and learning rate; everything else is each tool's default (SAELens: its
initialisation, decoder-norm rescaling and auxiliary loss for dead latents; napkit: data
initialisation and dead-feature resampling). Figures: FVU, L0 and dead fraction on the
held-out rows, and training throughput (samples per second of wall time, the iterator's
cost included for both). Targets: FVU within ±0.02 at equal samples; napkit ≥1× SAELens's
throughput.

    PYTHONPATH=src python benchmarks/lm_sae.py [--layer 2] [--d-sae 512] [--k 16] [--samples 400000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report  # noqa: E402
from _lm import header, need_anchor  # noqa: E402

BATCH = 256


def activations(lm, site: str, n_sentences: int, seed: int):
    import numpy as np
    import torch

    from napkit.lm.capture import capture
    from napkit.lm.corpus import GRAMMAR

    texts = [s.text for s in GRAMMAR.corpus(n_sentences, seed=seed)]
    x = capture(lm, texts, [site], batch_size=256).acts[site]
    return torch.from_numpy(x[np.random.default_rng(seed).permutation(len(x))])


def batches(x, samples: int):
    """The shared iterator: consecutive batches of the shuffled rows, cycling, ``samples`` in all."""
    steps = samples // BATCH
    for i in range(steps):
        lo = (i * BATCH) % (len(x) - BATCH + 1)
        yield x[lo : lo + BATCH]


def train_napkit(x, args):
    from napkit.lm.sae import train_sae

    sae, _ = train_sae(
        batches(x, args.samples), args.d_sae, kind="topk", k=args.k, lr=args.lr,
        steps=args.samples // BATCH, batch_size=BATCH, seed=0,
    )  # fmt: skip
    return sae.encode, sae.decode


def train_saelens(x, args):
    import itertools

    import torch
    from sae_lens import SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=x.shape[1], d_sae=args.d_sae, k=args.k))
    cfg = SAETrainerConfig(
        total_training_samples=args.samples // BATCH * BATCH,
        train_batch_size_samples=BATCH,
        lr=args.lr,
        lr_end=args.lr,
    )
    # SAETrainer calls next() until it has its samples; the iterator ends exactly there
    stream = itertools.chain(batches(x, args.samples))
    sae = SAETrainer(cfg, sae, stream).fit()
    return sae.encode, sae.decode


def quality(encode, decode, x) -> dict:
    import torch

    with torch.no_grad():
        f = encode(x)
        resid = (decode(f) - x).pow(2).sum()
    total = (x - x.mean(0)).pow(2).sum()
    active = f > 0
    return {
        "fvu": float(resid / total),
        "l0": float(active.sum(1).float().mean()),
        "dead": float((~active.any(0)).float().mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--d-sae", type=int, default=512)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--samples", type=int, default=400_000, help="training rows seen by each trainer")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--sentences", type=int, default=8000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # SAETrainer draws a progress bar
    need_anchor("sae_lens")
    import torch

    from napkit.lm.models import load_tiny

    torch.set_num_threads(1)
    lm = load_tiny()
    site = f"blocks.{args.layer}.hook_resid_post"
    x = activations(lm, site, args.sentences, seed=1)
    held = activations(lm, site, 1000, seed=2)
    rows = {}
    for name, train in (
        ("napkit `train_sae` (TopK)", train_napkit),
        ("SAELens `TopKTrainingSAE` + `SAETrainer`", train_saelens),
    ):
        t = time.perf_counter()
        encode, decode = train(x, args)
        seconds = time.perf_counter() - t
        rows[name] = {"seconds": seconds, **quality(encode, decode, held)}
    (nap, ours), (lens, theirs) = rows.items()
    samples = args.samples // BATCH * BATCH
    dfvu = ours["fvu"] - theirs["fvu"]
    speed = theirs["seconds"] / ours["seconds"]
    cmd = (
        f"PYTHONPATH=src python benchmarks/lm_sae.py --layer {args.layer} --d-sae {args.d_sae} --k {args.k} "
        f"--samples {args.samples} --lr {args.lr:g} --sentences {args.sentences}"
    )
    lines = header("lm_sae: napkit TopK SAE vs SAELens TopKTrainingSAE + SAETrainer", cmd) + [
        f"`{site}` of the tiny model (d_in {x.shape[1]}): {len(x)} training rows from {args.sentences} grammar "
        f"sentences (shuffled, seed 1), cycled to {samples} samples in batches of {BATCH}; held-out: {len(held)} rows "
        f"of 1000 other sentences. d_sae {args.d_sae}, k {args.k}, Adam lr {args.lr:g} for both.",
        "",
        "| trainer | seconds | samples/s | FVU (held-out) | L0 | dead |",
        "|---|---|---|---|---|---|",
        *[
            f"| {n} | {r['seconds']:.1f} | {samples / r['seconds']:.0f} | {r['fvu']:.4f} | {r['l0']:.1f} | "
            f"{r['dead']:.3f} |"
            for n, r in rows.items()
        ],
        "",
        f"Targets: FVU within ±0.02 ({'met' if abs(dfvu) <= 0.02 else 'NOT met'}: napkit − SAELens = {dfvu:+.4f}); "
        f"throughput ≥1× ({'met' if speed >= 1 else 'NOT met'}: napkit {speed:.2f}× SAELens's samples per second).",
    ]
    finish_report(lines, args.out)


if __name__ == "__main__":
    main()

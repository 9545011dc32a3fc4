"""Sequence capture on SmolLM2-135M against a plain forward pass, in one run.

Times (a) the plain forward pass over the texts (HF, no hooks), (b) napkit's capture of one
middle residual layer streamed into an ActivationStore with ``stop_after`` (the forward pass
ends at that layer), and (c) the same capture without stopping early. Peak memory of (b)
is measured in fresh processes for two numbers of sequences: streaming keeps it flat.
TransformerLens and nnsight are not installed here (the ``bench-lm`` set); their columns
are absent rather than guessed.

    PYTHONPATH=src python benchmarks/lm_capture.py [--n 256] [--out benchmarks/results/lm_capture.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report, peak_rss_mb, run_worker  # noqa: E402

LAYER = 15  # of 30
BATCH = 32


def texts(n: int) -> list[str]:
    from napkit.lm.corpus import GRAMMAR

    return [s.text for s in GRAMMAR.corpus(n, seed=1)]


def plain_forward(lm, xs) -> float:
    import torch

    from napkit.lm.capture import encode

    enc = encode(lm, xs)
    t = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(xs), BATCH):
            lm.model(
                input_ids=enc["input_ids"][lo : lo + BATCH],
                attention_mask=enc["attention_mask"][lo : lo + BATCH],
                use_cache=False,
            )
    return time.perf_counter() - t


def napkit_capture(lm, xs, stop_after: bool) -> float:
    from napkit.lm.capture import capture_to_store

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        capture_to_store(
            lm,
            xs,
            [f"blocks.{LAYER}.hook_resid_post"],
            Path(d) / "s",
            batch_size=BATCH,
            stop_after=stop_after,
        )
        return time.perf_counter() - t


def worker(n: int) -> None:
    import torch

    from napkit.lm.models import load_smollm2

    torch.set_num_threads(1)
    lm = load_smollm2()
    napkit_capture(lm, texts(n), stop_after=True)
    print(json.dumps({"n": n, "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", type=int, default=None)
    args = ap.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return
    import torch

    from napkit.lm.models import load_smollm2

    torch.set_num_threads(1)
    lm = load_smollm2()
    xs = texts(args.n)
    plain_forward(lm, xs[:BATCH])  # warm-up
    rows = {
        "plain forward (HF, all 30 layers)": plain_forward(lm, xs),
        f"napkit capture, layer {LAYER}, stop_after": napkit_capture(lm, xs, True),
        f"napkit capture, layer {LAYER}, full forward": napkit_capture(lm, xs, False),
    }
    base = rows["plain forward (HF, all 30 layers)"]
    mem = [run_worker(Path(__file__), str(k)) for k in (args.n // 4, args.n)]
    lines = [
        "# lm_capture: one SmolLM2 layer, napkit capture vs a plain forward pass",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/lm_capture.py --n {args.n}`",
        "",
        f"{args.n} grammar sentences, batch {BATCH}, one torch thread, SmolLM2-135M-Instruct (Q4_1 dequantised to "
        "float32). Shared 2-core machine with other helpers' jobs running: compare ratios, not seconds.",
        "",
        "| run | seconds | ratio to plain |",
        "|---|---|---|",
        *[f"| {k} | {v:.2f} | {v / base:.2f}× |" for k, v in rows.items()],
        "",
        "Peak RSS of a fresh process capturing into a store (streaming, stop_after):",
        "",
        "| sequences | peak RSS MiB |",
        "|---|---|",
        *[f"| {m['n']} | {m['peak_rss_mb']:.0f} |" for m in mem],
        "",
        "TransformerLens `run_with_cache` and nnsight are not installed in this environment (the `bench-lm` extra); "
        "not measured.",
    ]
    finish_report(lines, args.out)


if __name__ == "__main__":
    main()

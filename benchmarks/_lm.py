"""Shared pieces of the LM benchmarks: the anchors' versions, the tiny model and SmolLM2 in TransformerLens,
memory sampling, and the results-file header.

The anchors (TransformerLens, SAELens, nnsight, pyvene) come from the ``bench-lm`` extra
(`make bench-lm`); napkit's library code never imports them, only these scripts do.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from datetime import UTC, datetime

ANCHORS = ("torch", "transformers", "transformer-lens", "sae-lens", "nnsight", "pyvene", "scikit-learn")


def need_anchor(module: str) -> None:
    """Leave with one line when an anchor of the bench-lm extra is missing."""
    try:
        __import__(module)
    except ImportError:
        sys.exit(f"skipped: {module} is not installed (run `make bench-lm`: the bench-lm extra)")


def versions() -> str:
    out = []
    for name in ANCHORS:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(out)


def header(title: str, command: str) -> list[str]:
    """Title, command, date, load and versions: the first lines of every results file."""
    return [
        f"# {title}",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Load average at the start: "
        f"{os.getloadavg()[0]:.1f} (shared 2-core machine: compare ratios from one run, not seconds "
        "across files). One torch thread.",
        "",
        f"Versions: {versions()}.",
        "",
    ]


def hooked_tiny(lm):
    """The HF tiny GPT-2 as a TransformerLens HookedTransformer with the same weights.

    Built from the config and ``convert_gpt2_weights`` without TL's weight processing
    (no LayerNorm folding, no centring), so its activations equal the HF model's; nothing
    is downloaded.
    """
    import transformer_lens as tl
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    c = lm.model.config
    cfg = tl.HookedTransformerConfig(
        n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head, d_mlp=c.n_inner,
        n_ctx=c.n_positions, d_vocab=c.vocab_size, act_fn="relu", normalization_type="LN",
        eps=c.layer_norm_epsilon,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TL 3.x: HookedTransformer goes in 4.0
        model = tl.HookedTransformer(cfg)
    _, unexpected = model.load_state_dict(convert_gpt2_weights(lm.model, cfg), strict=False)
    assert not unexpected, unexpected
    return model.eval()


def hooked_smollm2(lm):
    """napkit's SmolLM2 (an HF Llama model) as a TransformerLens HookedTransformer, offline.

    ``HookedTransformer.from_pretrained`` accepts only TL's official model names (a local
    folder is refused by ``get_official_model_name``), but TL's config and state-dict loaders
    take a local folder with ``config.json``: napkit's converted folder. The weights come from
    the loaded HF model; no weight processing (no norm folding, no centring), so activations
    equal the HF model's up to float rounding. Nothing is downloaded.
    """
    import torch
    import transformer_lens as tl
    from transformer_lens import loading_from_pretrained as loading

    folder = str(lm.model.name_or_path)
    cfg = loading.get_pretrained_model_config(
        folder, hf_cfg=lm.model.config.to_dict(), fold_ln=False, device="cpu", dtype=torch.float32
    )
    state = loading.get_pretrained_state_dict(folder, cfg, lm.model, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TL 3.x: HookedTransformer goes in 4.0
        model = tl.HookedTransformer(cfg, lm.tokenizer, move_to_device=False)
    model.load_and_process_state_dict(
        state, fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False
    )
    return model.eval()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def peak_rss_above_start(interval: float = 0.002):
    """Yield a dict whose ``mb`` becomes the peak resident memory above the block's start (sampled)."""
    out = {"mb": 0.0}
    start = _rss_mb()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        done.set()
        thread.join()
        out["mb"] = max(peak[0], _rss_mb()) - start


def measure_side(which: str, run_napkit, run_tl, n: int, keys: tuple[str, str]) -> None:
    """A worker process: the tiny model loaded, ``run_napkit`` or ``run_tl`` warmed up on 40
    inputs, then timed on ``n`` with the peak memory above that state; prints one JSON line
    (``seconds``, ``mb`` and the two arrays the function returns, under ``keys``)."""
    import json

    import torch

    from napkit.lm.models import load_tiny

    torch.set_num_threads(1)
    lm = load_tiny()
    if which == "tl":
        hooked_tiny(lm)  # TL imported and a model built once before the measurement
    fn = run_tl if which == "tl" else run_napkit
    fn(lm, 40)  # warm-up: one-time allocations (kernels, thread pools) are not what is compared
    with peak_rss_above_start() as mem:
        t = time.perf_counter()
        a, b = fn(lm, n)
        seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "mb": mem["mb"], keys[0]: a.tolist(), keys[1]: b.tolist()}))


def interleaved_sides(script, n: int, rounds: int) -> tuple[dict, dict]:
    """Fresh worker processes of ``script``, napkit and TL alternating first: (the fastest run
    per side, the largest peak memory per side)."""
    from pathlib import Path

    from _common import run_worker

    runs: dict[str, list[dict]] = {"napkit": [], "tl": []}
    for r in range(rounds):
        for which in ("napkit", "tl") if r % 2 == 0 else ("tl", "napkit"):
            runs[which].append(run_worker(Path(script), which, str(n)))
    best = {k: min(v, key=lambda m: m["seconds"]) for k, v in runs.items()}
    mb = {k: max(m["mb"] for m in v) for k, v in runs.items()}
    return best, mb

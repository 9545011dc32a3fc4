"""Capture of one SmolLM2 layer: napkit against a plain forward pass, TransformerLens and nnsight, in one run.

Rows, all on the same right-padded batches of grammar sentences (batch 32, one torch thread):

- the plain forward pass (HF, all 30 layers, no hooks): the baseline;
- napkit ``capture_to_store`` of ``blocks.15.hook_resid_post`` streamed into an ActivationStore,
  with ``stop_after`` (the pass ends at that layer) and without;
- TransformerLens ``run_with_cache(names_filter=...)`` on the same weights (the HF model turned into a
  HookedTransformer offline, see ``_lm.hooked_smollm2``), and ``stop_at_layer=16``;
- nnsight ``LanguageModel(hf_model).trace`` saving ``model.layers[15].output``, and the same with
  ``tracer.stop()``.

The anchors keep the real-token rows as numpy arrays in memory (napkit writes them to a store). Each
row is the best of ``--repeats`` rounds, the order alternating; wall and CPU seconds. Peak RSS of
napkit's streaming capture (stop_after) is measured in fresh processes at ``--mem-n`` sequences.

    PYTHONPATH=src python benchmarks/lm_capture.py [--n 256] [--repeats 2] [--mem-n 1000 4000]
        [--out benchmarks/results/lm_capture.md]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report, peak_rss_mb, run_worker  # noqa: E402
from _lm import header, hooked_smollm2, peak_rss_above_start  # noqa: E402

LAYER = 15  # of 30
BATCH = 32
TARGET = f"blocks.{LAYER}.hook_resid_post"
PLAIN = "plain forward (HF, all 30 layers)"


def texts(n: int) -> list[str]:
    from napkit.lm.corpus import GRAMMAR

    return [s.text for s in GRAMMAR.corpus(n, seed=1)]


def batches(enc):
    for lo in range(0, len(enc["input_ids"]), BATCH):
        yield enc["input_ids"][lo : lo + BATCH], enc["attention_mask"][lo : lo + BATCH]


def plain_forward(lm, enc, xs):
    for ids, mask in batches(enc):
        lm.model(input_ids=ids, attention_mask=mask, use_cache=False)


def napkit_capture(lm, enc, xs, stop_after: bool) -> None:
    from napkit.lm.capture import capture_to_store

    with tempfile.TemporaryDirectory() as d:
        capture_to_store(lm, xs, [TARGET], Path(d) / "s", batch_size=BATCH, stop_after=stop_after)


def tl_cache(tl_model, enc, xs, stop: bool):
    import numpy as np

    rows = []
    for ids, mask in batches(enc):
        if stop:  # the residual stream entering block 16 = blocks.15.hook_resid_post
            acts = tl_model(ids, attention_mask=mask, stop_at_layer=LAYER + 1)
        else:
            _, cache = tl_model.run_with_cache(ids, attention_mask=mask, names_filter=TARGET)
            acts = cache[TARGET]
        rows.append(acts[mask.bool()].numpy())
    return np.concatenate(rows)


def nnsight_trace(nn_model, enc, xs, stop: bool):
    import numpy as np

    rows = []
    for ids, mask in batches(enc):
        with nn_model.trace({"input_ids": ids, "attention_mask": mask}) as tracer:
            acts = nn_model.model.layers[LAYER].output.save()
            if stop:
                tracer.stop()
        acts = acts[0] if isinstance(acts, tuple) else acts
        rows.append(acts[mask.bool()].numpy())
    return np.concatenate(rows)


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict, dict]:
    """Best wall and CPU seconds of each function over ``repeats`` rounds, the order alternating."""
    wall = dict.fromkeys(fns, float("inf"))
    cpu = dict.fromkeys(fns, float("inf"))
    out = {}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t, c = time.perf_counter(), time.process_time()
            out[name] = fns[name]()
            wall[name] = min(wall[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.process_time() - c)
    return wall, cpu, out


def worker(n: int) -> None:
    import torch

    from napkit.lm.capture import capture_to_store
    from napkit.lm.models import load_smollm2

    torch.set_num_threads(1)
    lm = load_smollm2()
    xs = texts(n)
    with tempfile.TemporaryDirectory() as d, peak_rss_above_start() as mem:
        t = time.perf_counter()
        capture_to_store(lm, xs, [TARGET], Path(d) / "s", batch_size=BATCH, stop_after=True)
        seconds = time.perf_counter() - t
    print(json.dumps({"n": n, "peak_rss_mb": peak_rss_mb(), "above_load_mb": mem["mb"], "seconds": seconds}))


def anchors(lm) -> dict:
    """The anchors' models on napkit's weights; absent anchors leave their rows out."""
    out = {}
    try:
        out["tl"] = hooked_smollm2(lm)
    except ImportError:
        pass
    try:
        from nnsight import LanguageModel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nnsight 0.8: LanguageModel is deprecated for TransformersModel
            out["nnsight"] = LanguageModel(lm.model, tokenizer=lm.tokenizer)
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--mem-n", type=int, nargs="*", default=[1000, 4000])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", type=int, default=None)
    args = ap.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return
    import numpy as np
    import torch

    from napkit.lm.capture import capture, encode
    from napkit.lm.models import load_smollm2

    os.environ.setdefault("TQDM_DISABLE", "1")
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    cmd = (
        f"PYTHONPATH=src python benchmarks/lm_capture.py --n {args.n} --repeats {args.repeats} "
        f"--mem-n {' '.join(map(str, args.mem_n))}"
    )
    top = header(
        "lm_capture: one SmolLM2 layer, napkit capture vs plain forward, TransformerLens, nnsight", cmd
    )
    lm = load_smollm2()
    xs = texts(args.n)
    enc = encode(lm, xs)
    other = anchors(lm)
    fns = {
        PLAIN: lambda: plain_forward(lm, enc, xs),
        f"napkit capture_to_store, layer {LAYER}, stop_after": lambda: napkit_capture(lm, enc, xs, True),
        f"napkit capture_to_store, layer {LAYER}, full forward": lambda: napkit_capture(lm, enc, xs, False),
    }
    if "tl" in other:
        fns["TransformerLens run_with_cache(names_filter)"] = lambda: tl_cache(other["tl"], enc, xs, False)
        fns[f"TransformerLens forward(stop_at_layer={LAYER + 1})"] = lambda: tl_cache(
            other["tl"], enc, xs, True
        )
    if "nnsight" in other:
        fns[f"nnsight trace, layers[{LAYER}].output.save()"] = lambda: nnsight_trace(
            other["nnsight"], enc, xs, False
        )
        fns["nnsight trace + tracer.stop()"] = lambda: nnsight_trace(other["nnsight"], enc, xs, True)
    small = encode(lm, xs[:BATCH])  # warm-up of every path on one batch
    plain_forward(lm, small, xs[:BATCH])
    for key, m in other.items():
        (tl_cache if key == "tl" else nnsight_trace)(m, small, xs[:BATCH], False)
    wall, cpu, out = interleaved(fns, args.repeats)
    base = wall[PLAIN]
    ref = capture(lm, xs, [TARGET], batch_size=BATCH).acts[TARGET]
    diffs = {
        name: float(np.abs(v - ref).max())
        for name, v in out.items()
        if isinstance(v, np.ndarray) and v.shape == ref.shape
    }
    mem = [run_worker(Path(__file__), str(k)) for k in args.mem_n]
    full = f"napkit capture_to_store, layer {LAYER}, full forward"
    napkit_full, napkit_full_cpu = wall[full] / base, cpu[full] / cpu[PLAIN]
    lines = top + [
        f"{args.n} grammar sentences ({enc['input_ids'].shape[1]} tokens padded, {len(ref)} real-token rows), batch "
        f"{BATCH}, SmolLM2-135M-Instruct (Q4_1 dequantised to float32), target `{TARGET}` (576 wide). Best of "
        f"{args.repeats} rounds per row, order alternating. TransformerLens: the HF model made a HookedTransformer "
        "offline (TL's config and state-dict loaders on napkit's converted folder, no weight processing); "
        "nnsight: `LanguageModel(hf_model, tokenizer=...)`.",
        "",
        "| run | wall s | CPU s | ratio to plain (wall) | ratio to plain (CPU) | max abs diff to napkit rows |",
        "|---|---|---|---|---|---|",
        *[
            f"| {k} | {wall[k]:.2f} | {cpu[k]:.2f} | {wall[k] / base:.2f}× | {cpu[k] / cpu[PLAIN]:.2f}× | "
            f"{(f'{diffs[k]:.1e}' if k in diffs else '—')} |"
            for k in fns
        ],
        "",
        f"Target ≤1.10× plain for a capture that runs the whole model: napkit full forward {napkit_full:.2f}× wall, "
        f"{napkit_full_cpu:.2f}× CPU ({'met' if max(napkit_full, napkit_full_cpu) <= 1.10 else 'NOT met'}); with "
        "stop_after napkit runs 16 of 30 layers. napkit's rows include writing the store (zarr chunks).",
        "",
        "Memory of a fresh process running napkit `capture_to_store` with stop_after (streaming): the "
        "process's peak RSS (loading the model sets it) and the peak above the RSS once the model is loaded "
        "(sampled every 2 ms during the capture):",
        "",
        "| sequences | process peak RSS MiB | peak above loaded model MiB | seconds |",
        "|---|---|---|---|",
        *[
            f"| {m['n']} | {m['peak_rss_mb']:.0f} | {m['above_load_mb']:.0f} | {m['seconds']:.1f} |"
            for m in mem
        ],
    ]
    if len(mem) > 1:
        grow = mem[-1]["above_load_mb"] - mem[0]["above_load_mb"]
        lines += [
            "",
            f"Capture memory above the loaded model from {mem[0]['n']} to {mem[-1]['n']} sequences: {grow:+.0f} MiB "
            f"({'flat' if abs(grow) <= 0.05 * mem[0]['peak_rss_mb'] else 'NOT flat'}: within 5% of the process).",
        ]
    finish_report(lines, args.out)


if __name__ == "__main__":
    main()

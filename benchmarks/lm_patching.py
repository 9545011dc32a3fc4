"""Activation patching on the tiny model: napkit's batched sweeps against transformer_lens.patching.

Facts (``NAME lives in``, recall): the clean prompt's activations are patched into a
prompt with another name, and the score is the normalised logit difference
(LD − LD_corrupted) / (LD_clean − LD_corrupted) at the last token, LD = logit(clean
city) − logit(corrupted city), averaged over the prompts. Three sweeps, both tools, one run:

- residual stream before each block × position (TL ``get_act_patch_resid_pre``);
- each head's output z over all positions (TL ``get_act_patch_attn_head_out_all_pos``);
- MLP output × position (TL ``get_act_patch_mlp_out``).

napkit runs ``patching.patch`` on the HF model: one clean pass, then one forward pass whose
batch grows layer by layer (the corrupted prompts run from the embedding, each variant joins at
its first patched layer); sites that provably change nothing (positions of the common prefix,
equal embeddings, last-layer outputs at positions whose logits are not read) are not run, and
the table counts the variants that ran. TL runs one ``run_with_hooks`` per patch on the same
weights as a HookedTransformer. Both times include the clean cache and the baseline runs. The
scores must agree to 1e-5; the target is napkit ≥2× faster.

    PYTHONPATH=src python benchmarks/lm_patching.py [--n 16 64] [--repeats 5] [--out benchmarks/results/lm_patching.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report  # noqa: E402
from _lm import header, hooked_tiny, need_anchor  # noqa: E402

SWEEPS = {  # napkit component -> (TL function, TL axes)
    "resid_pre": ("get_act_patch_resid_pre", "layer × position"),
    "head": ("get_act_patch_attn_head_out_all_pos", "layer × head"),
    "mlp": ("get_act_patch_mlp_out", "layer × position"),
}


def fact_pairs(tokenizer, n: int, seed: int = 0):
    """Clean and corrupted fact prompts (names with different cities) and both answers."""
    import numpy as np
    import torch

    from napkit.lm.corpus import GRAMMAR

    rng = np.random.default_rng(seed)
    names = list(GRAMMAR.facts)
    pairs = [
        (a, b)
        for a, b in (rng.choice(names, 2, replace=False) for _ in range(4 * n))
        if GRAMMAR.facts[a] != GRAMMAR.facts[b]
    ][:n]
    clean = [GRAMMAR.fact(rng, a) for a, _ in pairs]
    corrupt = [GRAMMAR.fact(rng, b) for _, b in pairs]
    enc_c = tokenizer([s.prompt for s in clean], return_tensors="pt", padding=True)
    enc_x = tokenizer([s.prompt for s in corrupt], return_tensors="pt", padding=True)
    assert bool(enc_c["attention_mask"].all()) and enc_c["input_ids"].shape == enc_x["input_ids"].shape
    answer = torch.tensor(tokenizer.convert_tokens_to_ids([s.answer for s in clean]))
    wrong = torch.tensor(tokenizer.convert_tokens_to_ids([s.answer for s in corrupt]))
    return enc_c["input_ids"], enc_x["input_ids"], answer, wrong


def napkit_sweep(model, clean, corrupt, answer, wrong, component: str):
    from napkit.lm.patching import Site, patch, patch_sweep

    if component != "mlp":
        return patch_sweep(model, clean, corrupt, answer, wrong, component).scores
    # napkit's own MLP sweep is per layer over all positions; TL's is per layer × position
    n, t = model.config.n_layer, clean.shape[1]
    variants = [[Site("mlp", layer, position=p)] for layer in range(n) for p in range(t)]
    return patch(model, clean, corrupt, answer, wrong, variants).scores.reshape(n, t)


def variants_run(model, clean, corrupt, component: str) -> int:
    """How many of the sweep's variants napkit runs (the others provably change nothing)."""
    from napkit.lm._parts import model_parts
    from napkit.lm.patching import Site, _equal_values, _reaches_logits, sweep_variants

    n, t = model.config.n_layer, clean.shape[1]
    if component == "mlp":
        variants = [[Site("mlp", layer, position=p)] for layer in range(n) for p in range(t)]
    else:
        variants = sweep_variants(model, component, t)[0]
    same, parts, last = _equal_values(clean, corrupt), model_parts(model), {t - 1}
    return sum(any(not same(s) and _reaches_logits(parts, s, last) for s in v) for v in variants)


def tl_sweep(model, clean, corrupt, answer, wrong, component: str):
    import torch
    from transformer_lens import patching

    rows = torch.arange(len(clean))

    def ld(logits):
        last = logits[:, -1]
        return (last[rows, answer].double() - last[rows, wrong].double()).mean()

    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(clean)
        ld_clean, ld_corr = float(ld(clean_logits)), float(ld(model(corrupt)))

        def metric(logits):
            return (ld(logits) - ld_corr) / (ld_clean - ld_corr)

        fn = getattr(patching, SWEEPS[component][0])
        return fn(model, corrupt, cache, metric).double().numpy()


def interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Best time of each function over ``repeats`` rounds, the order alternating per round."""
    best = dict.fromkeys(fns, float("inf"))
    out = {}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            out[name] = fns[name]()
            best[name] = min(best[name], time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--n", type=int, nargs="+", default=[16, 64], help="prompt pairs (one table row set each)"
    )
    ap.add_argument("--repeats", type=int, default=5, help="best of this many rounds per tool")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # TL's patching loop draws a bar per sweep
    need_anchor("transformer_lens")
    import numpy as np
    import torch

    from napkit.lm.models import load_tiny

    torch.set_num_threads(1)
    lm = load_tiny()
    tl_model = hooked_tiny(lm)
    rows = []
    for n in args.n:
        data = fact_pairs(lm.tokenizer, n)
        for component in SWEEPS:
            best, out = interleaved(
                {
                    "napkit": lambda c=component, d=data: napkit_sweep(lm.model, *d, c),
                    "tl": lambda c=component, d=data: tl_sweep(tl_model, *d, c),
                },
                args.repeats,
            )
            assert out["napkit"].shape == out["tl"].shape, (out["napkit"].shape, out["tl"].shape)
            diff = float(np.abs(out["napkit"] - out["tl"]).max())
            ran = variants_run(lm.model, data[0], data[1], component)
            rows.append((n, component, out["napkit"].shape, best["napkit"], best["tl"], diff, ran))
    worst_diff = max(r[5] for r in rows)
    worst_speed = min(r[4] / r[3] for r in rows)
    at_demo = min(r[4] / r[3] for r in rows if r[0] == max(args.n))
    cmd = f"PYTHONPATH=src python benchmarks/lm_patching.py --n {' '.join(map(str, args.n))} --repeats {args.repeats}"
    lines = header("lm_patching: napkit patching vs transformer_lens.patching (tiny model)", cmd) + [
        f"Fact prompt pairs (`NAME lives in` → city; corrupted: another name with another city), "
        f"{data[0].shape[1]} tokens each, all prompts in one batch. Best of {args.repeats} rounds per tool (order "
        "alternating); each time includes the clean cache and the baseline runs. napkit: `patching.patch` on the "
        "HF model (one clean pass, then one pass whose batch grows layer by layer: the corrupted prompts run from "
        "the embedding, each variant joins at its first patched layer; variants that provably change nothing are "
        "not run: positions of the common prefix `<bos>`, equal embeddings at layer 0, last-layer outputs at "
        "positions whose logits are not read); TL: `transformer_lens.patching` (one `run_with_hooks` per patch) on "
        "the same weights as an unprocessed HookedTransformer.",
        "",
        "| prompts | sweep | grid | variants napkit ran | napkit s | TL s | TL / napkit | max abs score difference |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {n} | {c} ({SWEEPS[c][1]}) | {'×'.join(map(str, shape))} | {ran} | {tn:.3f} | {tt:.3f} | "
            f"{tt / tn:.1f}× | {d:.1e} |"
            for n, c, shape, tn, tt, d, ran in rows
        ],
        "",
        f"Targets: scores equal ≤1e-5 ({'met' if worst_diff <= 1e-5 else 'NOT met'}: largest difference "
        f"{worst_diff:.1e}); napkit ≥2× faster ({'met' if worst_speed >= 2 else 'NOT met'}: smallest speed-up "
        f"{worst_speed:.1f}×; {at_demo:.1f}× at {max(args.n)} prompts, the demo's size).",
    ]
    finish_report(lines, args.out)


if __name__ == "__main__":
    main()

"""Activation patching on the tiny model: napkit's batched sweeps against transformer_lens.patching.

Facts (``NAME lives in``, recall): the clean prompt's activations are patched into a
prompt with another name, and the score is the normalised logit difference
(LD − LD_corrupted) / (LD_clean − LD_corrupted) at the last token, LD = logit(clean
city) − logit(corrupted city), averaged over the prompts. Three sweeps, both tools, one run:

- residual stream before each block × position (TL ``get_act_patch_resid_pre``);
- each head's output z over all positions (TL ``get_act_patch_attn_head_out_all_pos``);
- MLP output × position (TL ``get_act_patch_mlp_out``).

napkit runs ``patching.patch`` on the HF model (variants batched into a few forward
passes); TL runs one ``run_with_hooks`` per patch on the same weights as a
HookedTransformer. Both times include the clean cache and the two baseline runs. The
scores must agree to 1e-5; the target is napkit ≥2× faster.

    PYTHONPATH=src python benchmarks/lm_patching.py [--n 64] [--repeats 3] [--out benchmarks/results/lm_patching.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64, help="prompt pairs")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs per tool")
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
    data = fact_pairs(lm.tokenizer, args.n)
    rows = []
    for component in SWEEPS:
        t_nap, s_nap = timed(lambda c=component: napkit_sweep(lm.model, *data, c), args.repeats)
        t_tl, s_tl = timed(lambda c=component: tl_sweep(tl_model, *data, c), args.repeats)
        assert s_nap.shape == s_tl.shape, (s_nap.shape, s_tl.shape)
        diff = float(np.abs(s_nap - s_tl).max())
        rows.append((component, s_nap.shape, t_nap, t_tl, diff, s_nap.size))
    cmd = f"PYTHONPATH=src python benchmarks/lm_patching.py --n {args.n} --repeats {args.repeats}"
    lines = header("lm_patching: napkit patching vs transformer_lens.patching (tiny model)", cmd) + [
        f"{args.n} fact prompt pairs (`NAME lives in` → city; corrupted: another name with another city), "
        f"{data[0].shape[1]} tokens each, batch of all {args.n} prompts. Best of {args.repeats} runs per tool; "
        "each time includes the clean cache and both baseline runs. napkit: `patching.patch_sweep` on the HF "
        "model; TL: `transformer_lens.patching` on the same weights as an unprocessed HookedTransformer.",
        "",
        "| sweep | grid | patches | napkit s | TL s | TL / napkit | max abs score difference |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {c} ({SWEEPS[c][1]}) | {'×'.join(map(str, shape))} | {size} | {tn:.3f} | {tt:.3f} | "
            f"{tt / tn:.1f}× | {d:.1e} |"
            for c, shape, tn, tt, d, size in rows
        ],
        "",
        f"Targets: scores equal ≤1e-5 ({'met' if max(r[4] for r in rows) <= 1e-5 else 'NOT met'}: largest "
        f"difference {max(r[4] for r in rows):.1e}); napkit ≥2× faster "
        f"({'met' if min(r[3] / r[2] for r in rows) >= 2 else 'NOT met'}: smallest speed-up "
        f"{min(r[3] / r[2] for r in rows):.1f}×).",
        f"Load average at the end: {os.getloadavg()[0]:.1f}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

"""SAE sibling study on the tiny model: fragility map and sibling confusion (cat/dog/bird/horse).

    python benchmarks/lm_sae_fragility.py [--model DIR] [--layer 2] [--steps 2000] [--sentences 1500]
                                          [--contexts 12] [--plot PATH] [--out results.json]

A TopK SAE (d_sae 512, k 32) on the residual stream after one layer of the committed
tiny model (or --model), trained on grammar tokens; per animal noun the feature that
reads it best against its siblings (input selection) and the one whose decoder row
raises its logit most over its siblings' (output selection). Each direction is added at
every layer, at α = 0.25..8 × the layer's median residual norm, in four context kinds
(noun, verb, city and colour slots); success = the steered top next token is the word,
sibling confusion = it is another animal. Baselines from the same run: the difference of
means of the word's rows and its siblings' rows, the word's unembedding row (a positive
control: what the output layer reads) and random directions. Prints the
summary table and one JSON object as its last line; writes the heat map PNG.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="local HF folder (default: the shipped tiny model)")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--sentences", type=int, default=1500)
    ap.add_argument("--contexts", type=int, default=12, help="prompts per context kind")
    ap.add_argument("--plot", default="sae_fragility.png")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from napkit.lm.models import load, load_tiny
    from napkit.lm.sae_siblings import sibling_study

    t0 = time.perf_counter()
    lm = load(args.model) if args.model else load_tiny()
    fig, _ = sibling_study(
        lm,
        layer=args.layer,
        n_sentences=args.sentences,
        steps=args.steps,
        n_contexts=args.contexts,
        plot=args.plot,
    )
    fig["seconds"] = time.perf_counter() - t0
    print(f"SAE at layer {fig['sae_layer']}: FVU {fig['sae_fvu']:.4f}, dead {fig['sae_dead_frac']:.3f}")
    print("method    success  confusion  confusion share  cells>=0.5  clean success/confusion  best cell")
    for m in ("sae_in", "sae_out", "dom", "unembed", "random"):
        b = fig[f"{m}_best_cell"]
        print(
            f"{m:8s}  {fig[f'{m}_success_mean']:.3f}    {fig[f'{m}_confusion_mean']:.3f}      "
            f"{fig[f'{m}_confusion_share']:.3f}            {fig[f'{m}_cells_success_ge_half']:.3f}       "
            f"{fig[f'{m}_clean_success']:.3f}/{fig[f'{m}_clean_confusion']:.3f}              "
            f"layer {b['layer']} x{b['scale']:g} {b['context']}: {b['success']:.2f}"
        )
    line = json.dumps(fig)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

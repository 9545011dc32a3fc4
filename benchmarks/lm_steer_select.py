"""Regime steering on the tiny model: the layer and position rule chosen on training prompts, and its ceiling.

Three parts, one run (one torch thread):

1. ``steer_regime`` with selection: the training ratio of every layer × take rule × add rule
   (25 training pairs, 8 random controls, seed 1), then the held-out ratio of the chosen one
   (50 held-out pairs, 20 random controls, seed 0) at each KL target;
2. a reference direction at the last block: the unembedding difference (W_U[bad] − W_U[good])
   scaled by the final LayerNorm's weight (the log-odds' gradient through the norm's weight,
   its centring and scale left out), as a steering vector with the same held-out controls.
   A first-order choice, not a proven ceiling: at equal KL a direction that also spares the
   other tokens' logits could move the log-odds further;
3. a pure log-odds shift (log p(bad) raised by δ, renormalised; no model involved) on the
   held-out prompts' clean next-token distributions: the mean log-odds change it buys at
   each mean KL, an upper bound for any intervention that moves every prompt's log-odds alike;
4. how far the ratio moves with the draw of its controls: the chosen vector against
   ``--controls`` random vectors (seed 0; its first 20 are the reported ones), the ratio to
   their overall median and to the median of each disjoint group of 20.

    PYTHONPATH=src python benchmarks/lm_steer_select.py [--kl 0.25 0.5 3.0] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report  # noqa: E402
from _lm import header  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kl", type=float, nargs="+", default=[0.5, 0.25, 3.0])
    ap.add_argument(
        "--controls", type=int, default=200, help="random controls for part 4 (below 20: skip it)"
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import numpy as np
    import torch

    from napkit.lm.corpus import OUTCOME
    from napkit.lm.models import load_tiny
    from napkit.lm.regime_steering import contrast_pair_prompts, steer_regime
    from napkit.lm.steering import mean_kl, next_token_logprobs, steering_effect

    torch.set_num_threads(1)
    cmd = (
        f"PYTHONPATH=src python benchmarks/lm_steer_select.py --kl {' '.join(map(str, args.kl))} "
        f"--controls {args.controls}"
    )
    lines = header("Regime steering on the tiny model: site selection on training prompts, and the ceiling", cmd)
    lm = load_tiny()
    t = time.perf_counter()
    res = steer_regime(lm, kl=args.kl[0], extra_kls=tuple(args.kl[1:]))
    secs = time.perf_counter() - t
    table = res["steer_selection_train_ratio"]
    lines += [
        f"Selection at KL {args.kl[0]} (training ratio, 25 pairs, 8 random controls; 0 = wrong sign or "
        f"unreachable), {secs:.0f} s including the held-out figures:",
        "",
        "| layer | take | add | training ratio |",
        "|---|---|---|---|",
    ]
    for key, r in sorted(table.items(), key=lambda kv: (kv[0].split()[0], kv[0])):
        layer, rule = key.split()
        take, add = rule.split("->")
        lines.append(f"| {layer[1:]} | {take} | {add} | {r:.2f} |")
    lines += [
        "",
        f"Chosen: `{res['steer_site']}`, take `{res['steer_take']}`, add `{res['steer_add']}`. Held out "
        f"(50 pairs, 20 random controls): α {res['steer_alpha']:.4g}, KL {res['steer_kl_reached']:.3f}, "
        f"effect {res['steer_effect']:+.2f}, reversed {res['steer_reversed_effect']:+.2f}, random median "
        f"{res['steer_random_median']:.2f} ({res['steer_random_unreached']} unreached), ratio "
        f"**{res['steer_effect_ratio']:.2f}**; by KL: "
        + ", ".join(f"{k}: {v:.2f}" for k, v in res["steer_effect_ratio_by_kl"].items()),
        "",
    ]
    texts = contrast_pair_prompts(50)
    ib, ig = (lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (OUTCOME[1], OUTCOME[0]))
    last = lm.model.config.num_hidden_layers - 1
    unembed = lm.model.lm_head.weight.detach()
    u = lm.model.transformer.ln_f.weight.detach() * (unembed[ib] - unembed[ig])
    lines += ["| KL target | difference of means (held out) | unembedding direction, last block |", "|---|---|---|"]
    for kl in args.kl:
        reference = steering_effect(
            lm, texts, f"blocks.{last}.hook_resid_post", u, OUTCOME[0], OUTCOME[1], kl, n_random=20
        )
        lines.append(
            f"| {kl} | {res['steer_effect_ratio_by_kl'][str(kl)]:.2f} | {reference.ratio:.2f} (effect "
            f"{reference.effect:+.2f}, random median {np.median(reference.random_effects):.2f}) |"
        )
    base = next_token_logprobs(lm, texts)
    lines += ["", "Pure log-odds shift δ on the held-out clean distributions:", "",
              "| δ (nats) | mean KL | mean log-odds change |", "|---|---|---|"]  # fmt: skip
    for d in (6.0, 8.0, 9.0, 9.5, 10.0, 12.0, 14.0):
        s = base.clone()
        s[:, ib] += d
        s = torch.log_softmax(s, -1)
        change = ((s[:, ib] - s[:, ig]) - (base[:, ib] - base[:, ig])).mean()
        lines.append(f"| {d:g} | {mean_kl(base, s):.3f} | {float(change):.2f} |")
    if args.controls >= 20:
        lines += controls_spread(lm, texts, res, args.kl, args.controls)
    finish_report(lines, args.out)


def controls_spread(lm, texts, res: dict, kls, n: int) -> list[str]:
    """Part 4: the ratio against ``n`` controls and against each disjoint group of 20 of them."""
    import numpy as np

    from napkit.lm.corpus import OUTCOME
    from napkit.lm.regime_steering import regime_vector
    from napkit.lm.steering import steering_effect

    v = regime_vector(lm, res["steer_site"], res["steer_take"])
    where = res["steer_add_positions"]
    lines = [
        "",
        f"The chosen vector against {n} equal-KL random controls (seed 0; the first 20 are the "
        "reported ones when all of them reach the KL):",
        "",
        f"| KL target | effect | ratio to the median of {n} | ratio to each group of 20: first; min, median, max |",
        "|---|---|---|---|",
    ]
    for kl in kls:
        e = steering_effect(lm, texts, res["steer_site"], v, OUTCOME[0], OUTCOME[1], kl, n, 0, where)
        r = np.asarray(e.random_effects)  # the reached ones: groups shift when some were not
        groups = [abs(e.effect) / np.median(r[i : i + 20]) for i in range(0, len(r) - 19, 20)]
        spread = (
            f"{groups[0]:.2f}; {min(groups):.2f}, {np.median(groups):.2f}, {max(groups):.2f}" if groups else "-"
        )
        lines.append(
            f"| {kl} | {e.effect:+.2f} | {e.ratio:.2f} ({e.random_unreached} unreached) | {spread} |"
        )
    return lines


if __name__ == "__main__":
    main()

"""The LM experiments on the grammar's contrast set, as the CLI and the demo run them.

Each function takes a loaded model and returns a flat dict of figures named as in the
issue's demo contract (``probe_best_acc``, ``steer_effect_ratio``, ...).
"""

from __future__ import annotations

import numpy as np

from napkit.lm.corpus import GRAMMAR, OUTCOME
from napkit.lm.models import load, random_init_like
from napkit.lm.probes import probe
from napkit.lm.steering import mean_difference, steering_effect

CONTRAST_SEED = 20_011
DEFAULT_KL = 0.5
CUE_POSITION = 2  # <bos> DET CUE ...


def contrast_prompts(n: int, seed: int = CONTRAST_SEED):
    """``n`` contrast sentences cut before their outcome word: (prompts, regimes, cue words)."""
    sents = GRAMMAR.sample("contrast", n, seed)
    return [s.prompt for s in sents], np.array([s.meta["regime"] for s in sents]), [s.words[1] for s in sents]


def resid_sites(lm) -> list[str]:
    return [f"blocks.{i}.hook_resid_post" for i in range(lm.model.config.num_hidden_layers)]


def probe_regime(lm, n: int = 400, seed: int = 0) -> dict:
    """Probe the contrast regime from every layer at each position after the cue word.

    Control keys: the cue word.
    The control task gives each cue word a random regime, so a probe that merely reads the
    word's identity scores well on both; selectivity is reported as the largest gap.
    """
    lm = load(lm)
    prompts, regimes, cues = contrast_prompts(n)
    n_pos = len(lm.tokenizer(prompts[0])["input_ids"])
    sites = resid_sites(lm)
    # positions after the cue word (<bos> is position 0, the cue 2): there the regime is no
    # longer the identity of the current word but something attention had to carry
    after = range(CUE_POSITION + 1, n_pos)
    trained = probe(lm, prompts, regimes, sites, after, control_keys=cues, seed=seed)
    fresh = probe(random_init_like(lm, seed), prompts, regimes, sites, after, control_keys=cues, seed=seed)
    module, position, acc = trained.best
    return {
        "probe_best_acc": acc,
        "probe_best_site": f"{module}@{position}",
        "probe_selectivity": trained.max_selectivity,
        "probe_random_init_best_acc": fresh.best_acc,
        "probe_accuracy": trained.accuracy.tolist(),
        "probe_random_init_accuracy": fresh.accuracy.tolist(),
        "probe_sites": sites,
        "probe_positions": list(after),
    }


def steer_regime(
    lm, layer: int | None = None, kl: float = DEFAULT_KL, n: int = 200, n_random: int = 20
) -> dict:
    """Steer regime 0 prompts towards regime 1 along the difference of means at one layer.

    The effect is the mean change of log p(bad) − log p(good) at the chosen KL; the
    controls are equal-norm random vectors brought to the same KL.
    """
    lm = load(lm)
    layer = lm.model.config.num_hidden_layers // 2 if layer is None else layer
    site = f"blocks.{layer}.hook_resid_post"
    prompts, regimes, _ = contrast_prompts(n)
    pos = [p for p, r in zip(prompts, regimes, strict=True) if r == 0]
    neg = [p for p, r in zip(prompts, regimes, strict=True) if r == 1]
    v = mean_difference(lm, pos, neg, site, positions=-1)
    res = steering_effect(lm, pos, site, v, OUTCOME[0], OUTCOME[1], kl, n_random=n_random)
    return {
        "steer_site": site,
        "steer_alpha": res.alpha,
        "steer_kl_target": kl,
        "steer_kl_reached": res.kl,
        "steer_effect": res.effect,
        "steer_reversed_effect": res.reversed_effect,
        "steer_random_median": float(np.median(res.random_effects)) if res.random_effects else None,
        "steer_random_unreached": res.random_unreached,
        "steer_effect_ratio": res.ratio,
    }

"""The LM experiments on the grammar's contrast set, as the CLI and the demo run them.

Each function takes a loaded model and returns a flat dict of figures named as in the
issue's demo contract (``probe_best_acc``, ``steer_effect_ratio``, ...).
"""

from __future__ import annotations

import numpy as np

from napkit.lm.corpus import GRAMMAR, LEXICON, OUTCOME
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


BINDING_SEED = 20_012


def probe_binding(lm, n: int = 400, seed: int = 0) -> dict:
    """Probe the colour a binding prompt asks for, at the positions from ``so`` to the last.

    ``A is red and B is blue so A is``: the label (one of 8 colours) is the colour bound to
    the queried variable, which no single token holds: the model has to match the query
    with a variable and fetch its colour. Control task: each ordered pair of colours in the
    prompt gets a fixed random colour (with the task's class proportions), so a probe that
    reads which colours the prompt holds, rather than which one is bound to the query, can
    score on it too. Baseline: the same probes on the architecture at random init.
    """
    lm = load(lm)
    sents = GRAMMAR.sample("binding", n, BINDING_SEED)
    prompts = [s.prompt for s in sents]
    labels = np.array([LEXICON["COLOR"].index(s.answer) for s in sents])
    pairs = [" ".join(s.meta["colors"]) for s in sents]
    n_pos = len(lm.tokenizer(prompts[0])["input_ids"])
    positions = range(n_pos - 3, n_pos)  # "so", the queried variable, the last "is"
    sites = resid_sites(lm)
    trained, fresh = (
        probe(m, prompts, labels, sites, positions, control_keys=pairs, seed=seed)
        for m in (lm, random_init_like(lm, seed))
    )
    module, position, acc = trained.best
    i, j = trained.modules.index(module), trained.positions.index(position)
    return {
        "probe_task": "binding: the colour bound to the queried variable",
        "probe_best_acc": acc,
        "probe_best_site": f"{module}@{position}",
        "probe_selectivity": float(trained.selectivity[i, j]),
        "probe_max_selectivity": trained.max_selectivity,
        "probe_random_init_best_acc": fresh.best_acc,
        "probe_chance": 1 / len(LEXICON["COLOR"]),
        "probe_accuracy": trained.accuracy.tolist(),
        "probe_control_accuracy": trained.control.tolist(),
        "probe_random_init_accuracy": fresh.accuracy.tolist(),
        "probe_sites": sites,
        "probe_positions": list(positions),
    }


def contrast_pair_prompts(n_pairs: int, seed: int = CONTRAST_SEED + 1) -> list[str]:
    """A balanced contrast set: ``n_pairs`` sentences, each cut before its outcome in both regimes."""
    rng = np.random.default_rng(seed)
    pairs = [GRAMMAR.contrast_pair(rng) for _ in range(n_pairs)]
    return [s0.prompt for s0, _ in pairs] + [s1.prompt for _, s1 in pairs]


def steer_regime(
    lm,
    layer: int | None = None,
    kl: float = DEFAULT_KL,
    n: int = 200,
    n_random: int = 20,
    n_pairs: int = 50,
    extra_kls: tuple[float, ...] = (),
) -> dict:
    """Steer the contrast set towards regime 1 along the difference of means at one layer.

    The vector is mean(regime 1) − mean(regime 0) of the residual stream at the last prompt
    position over ``n`` contrast prompts; it is added at every position of ``layer``
    (default: the last block, whose output the unembedding reads). The effect is the mean
    change of log p(bad) − log p(good) over a held-out *balanced* contrast set (``n_pairs``
    sentences, each in both regimes) at the KL target; the controls are equal-norm random
    vectors, each brought to the same KL by its own bisection. On one regime alone the
    model is saturated (p(good) ≈ 0.9995), so any vector that costs KL moves the log-odds
    towards the runner-up word: the balanced set cancels that loss of confidence and keeps
    the directional part. ``extra_kls`` repeats the comparison at other KL targets.
    """
    lm = load(lm)
    layer = lm.model.config.num_hidden_layers - 1 if layer is None else layer
    site = f"blocks.{layer}.hook_resid_post"
    prompts, regimes, _ = contrast_prompts(n)
    pos = [p for p, r in zip(prompts, regimes, strict=True) if r == 0]
    neg = [p for p, r in zip(prompts, regimes, strict=True) if r == 1]
    v = mean_difference(lm, pos, neg, site, positions=-1)
    texts = contrast_pair_prompts(n_pairs)
    res = steering_effect(lm, texts, site, v, OUTCOME[0], OUTCOME[1], kl, n_random=n_random)
    by_kl = {str(kl): res.ratio}
    for other in extra_kls:
        by_kl[str(other)] = steering_effect(
            lm, texts, site, v, OUTCOME[0], OUTCOME[1], other, n_random=n_random
        ).ratio
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
        "steer_effect_ratio_by_kl": by_kl,
    }

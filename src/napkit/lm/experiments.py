"""The LM experiments on the grammar's contrast set, as the CLI and the demo run them.

Each function takes a loaded model and returns a flat dict of figures named as in the
issue's demo contract (``probe_best_acc``, ``steer_effect_ratio``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napkit.lm.corpus import GRAMMAR, LEXICON
from napkit.lm.models import load, random_init_like
from napkit.lm.probes import C_GRID, probe
from napkit.lm.regime_steering import (  # noqa: F401  (the steering experiment lives there)
    CONTRAST_SEED,
    CUE_POSITION,
    DEFAULT_KL,
    contrast_pair_prompts,
    contrast_prompts,
    steer_regime,
)


def resid_sites(lm) -> list[str]:
    return [f"blocks.{i}.hook_resid_post" for i in range(lm.model.config.num_hidden_layers)]


def probe_regime(lm, n: int = 400, seed: int = 0, c_grid: Sequence[float] = C_GRID) -> dict:
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
    trained = probe(lm, prompts, regimes, sites, after, control_keys=cues, seed=seed, c_grid=c_grid)
    fresh = probe(
        random_init_like(lm, seed), prompts, regimes, sites, after, seed=seed, control_draws=0, c_grid=c_grid
    )
    module, position, acc = trained.best
    i, j = trained.best_index
    return {
        "probe_best_acc": acc,
        "probe_best_site": f"{module}@{position}",
        "probe_best_c": float(trained.c[i, j]),
        "probe_selectivity": trained.max_selectivity,
        "probe_random_init_best_acc": fresh.best_acc,
        "probe_accuracy": trained.accuracy.tolist(),
        "probe_random_init_accuracy": fresh.accuracy.tolist(),
        "probe_sites": sites,
        "probe_positions": list(after),
    }


BINDING_SEED = 20_012


def probe_binding(lm, n: int = 400, seed: int = 0, c_grid: Sequence[float] = C_GRID) -> dict:
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
    trained = probe(lm, prompts, labels, sites, positions, control_keys=pairs, seed=seed, c_grid=c_grid)
    # the baseline's accuracy is what is reported: no control task fitted on it
    fresh = probe(
        random_init_like(lm, seed), prompts, labels, sites, positions,
        seed=seed, control_draws=0, c_grid=c_grid,
    )
    module, position, acc = trained.best
    i, j = trained.best_index
    return {
        "probe_task": "binding: the colour bound to the queried variable",
        "probe_best_acc": acc,
        "probe_best_site": f"{module}@{position}",
        "probe_best_c": float(trained.c[i, j]),
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

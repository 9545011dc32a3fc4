"""Shrink the he/she stereotype gap on occupation prompts with a difference-of-means vector.

The vector v = mean(she contexts) − mean(he contexts) of the residual stream after one
layer, at the last position of gendered prompts (``The woman said that`` vs ``The man
said that``; no occupation among them). Each occupation group is steered towards the
counter-stereotypical pronoun: +α_m·v on male-stereotyped prompts, −α_f·v on
female-stereotyped ones, each α set by bisection (:func:`napkit.lm.steering.alpha_for_kl`)
so that the group's mean KL(clean ‖ steered) meets one target. The **stereotype gap**
(:func:`napkit.lm.occupations.stereotype_gap`) is measured clean, steered, and with the
signs reversed (−α, towards the stereotype). The controls are equal-norm random vectors
brought to the same KL in the same way; the ratio compares the gap's reduction with the
median |change| the random vectors make.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.models import load
from napkit.lm.occupations import (
    FEMALE,
    HE,
    MALE,
    TEMPLATES,
    gendered_contexts,
    log_odds,
    occupation_prompts,
    pronoun_ids,
    stereotype_gap,
)
from napkit.lm.steering import (
    UnreachableKL,
    alpha_for_kl,
    mean_difference,
    next_token_logprobs,
    random_controls,
    steering,
)

STEER_TEMPLATES = TEMPLATES[:1]  # one prompt per occupation keeps the bisections affordable


@dataclass
class PronounSteering:
    """The stereotype gap clean, steered (+α), reversed (−α) and under random controls."""

    site: str
    kl_target: float
    alpha_male: float
    alpha_female: float
    kl_male: float
    kl_female: float
    gap_clean: float
    gap_steered: float
    gap_reversed: float
    log_odds_clean: dict[str, float]  # mean he/she log-odds per group
    log_odds_steered: dict[str, float]
    random_changes: list[float]  # |gap change| of each random vector at equal KL
    random_unreached: int
    vector_norm: float

    @property
    def reduction(self) -> float:
        return self.gap_clean - self.gap_steered

    @property
    def ratio(self) -> float:
        """Gap reduction over the median |gap change| of the random controls."""
        med = float(np.median(self.random_changes)) if self.random_changes else float("nan")
        return self.reduction / med if med > 0 else float("inf")

    def to_dict(self) -> dict:
        return {
            "steer_site": self.site,
            "steer_kl_target": self.kl_target,
            "steer_alpha_male": self.alpha_male,
            "steer_alpha_female": self.alpha_female,
            "steer_kl_reached": (self.kl_male + self.kl_female) / 2,
            "steer_kl_male": self.kl_male,
            "steer_kl_female": self.kl_female,
            "gap_clean": self.gap_clean,
            "gap_steered": self.gap_steered,
            "gap_reversed": self.gap_reversed,
            "gap_reduction": self.reduction,
            "log_odds_clean": self.log_odds_clean,
            "log_odds_steered": self.log_odds_steered,
            "random_gap_changes": [round(c, 5) for c in self.random_changes],
            "random_median_change": float(np.median(self.random_changes)) if self.random_changes else None,
            "random_unreached": self.random_unreached,
            "steer_effect_ratio": self.ratio,
            "vector_norm": self.vector_norm,
        }


def steer_pronoun_gap(
    lm,
    layer: int,
    kl: float = 0.5,
    n_random: int = 10,
    templates: Sequence[str] = STEER_TEMPLATES,
    vector_templates: Sequence[str] = TEMPLATES,
    male: Sequence[str] = MALE,
    female: Sequence[str] = FEMALE,
    seed: int = 0,
) -> PronounSteering:
    """Steer each occupation group towards the other pronoun at KL ``kl``; see the module docstring."""
    lm = load(lm)
    n_layers = lm.model.config.num_hidden_layers
    if not 0 <= layer < n_layers:
        raise NapkitError(f"layer must lie in 0..{n_layers - 1}, got {layer}")
    if n_random < 1:
        raise NapkitError(f"give at least one random control, got {n_random}")
    ids = pronoun_ids(lm.tokenizer)
    site = f"blocks.{layer}.hook_resid_post"
    he_ctx, she_ctx = gendered_contexts(vector_templates)
    v = mean_difference(lm, he_ctx, she_ctx, site, positions=-1)
    prompts = occupation_prompts(templates, male, female)
    groups = {
        "male": [t for t, g in zip(prompts.texts, prompts.stereotype, strict=True) if g == HE],
        "female": [t for t, g in zip(prompts.texts, prompts.stereotype, strict=True) if g != HE],
    }
    sign = {"male": 1.0, "female": -1.0}  # towards " she" for male-stereotyped prompts, " he" else
    labels = np.concatenate([np.full(len(groups["male"]), HE), np.full(len(groups["female"]), 1 - HE)])
    base = {g: next_token_logprobs(lm, texts) for g, texts in groups.items()}

    def odds_under(direction: torch.Tensor, alphas: dict[str, float]) -> dict[str, np.ndarray]:
        return {
            g: log_odds(next_token_logprobs(lm, texts, [steering(site, direction, alphas[g])]), ids)
            for g, texts in groups.items()
        }

    def gap(odds: dict[str, np.ndarray]) -> float:
        return stereotype_gap(np.concatenate([odds["male"], odds["female"]]), labels)

    def search(direction: torch.Tensor):
        found = {
            g: alpha_for_kl(lm, texts, site, sign[g] * direction, kl, base=base[g])
            for g, texts in groups.items()
        }
        return {g: sign[g] * f.alpha for g, f in found.items()}, found

    clean = {g: log_odds(lp, ids) for g, lp in base.items()}
    alphas, found = search(v)
    steered = odds_under(v, alphas)
    reversed_ = odds_under(v, {g: -a for g, a in alphas.items()})
    changes, unreached = [], 0
    for r in random_controls(v, n_random, seed):
        try:
            r_alphas, _ = search(r)
        except UnreachableKL:
            unreached += 1
            continue
        changes.append(abs(gap(odds_under(r, r_alphas)) - gap(clean)))
    return PronounSteering(
        site,
        kl,
        found["male"].alpha,
        found["female"].alpha,
        found["male"].kl,
        found["female"].kl,
        gap(clean),
        gap(steered),
        gap(reversed_),
        {g: float(o.mean()) for g, o in clean.items()},
        {g: float(o.mean()) for g, o in steered.items()},
        changes,
        unreached,
        float(v.norm()),
    )

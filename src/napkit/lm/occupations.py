"""Templated occupation prompts and the he/she log-odds a model gives after them.

A prompt such as ``The nurse said that`` is followed by a pronoun in natural text; the
model's **he/she log-odds** is log p(" he") − log p(" she") at the last position. Each
occupation carries a *stereotyped* gender, the majority gender of the occupation in
labour statistics as used by coreference-bias sets (WinoBias, Zhao et al. 2018); the
lists here are napkit's own, 18 per side. The **stereotype gap** of a set of prompts is
the mean log-odds of the stereotyped pronoun over the other one: how strongly the model
follows the stereotype (0 when it is indifferent on average).

Gendered contexts (``The man said that`` / ``The woman said that``) give a he-vs-she
difference of means for steering without using any occupation prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.tokenizer import known_token_id

MALE = (
    "engineer", "mechanic", "carpenter", "plumber", "electrician", "firefighter", "pilot", "surgeon",
    "janitor", "farmer", "sheriff", "programmer", "architect", "driver", "guard", "laborer", "CEO",
    "soldier",
)  # fmt: skip
FEMALE = (
    "nurse", "secretary", "receptionist", "hairdresser", "librarian", "housekeeper", "nanny",
    "babysitter", "cashier", "dancer", "midwife", "stylist", "florist", "maid", "dietitian",
    "hygienist", "beautician", "seamstress",
)  # fmt: skip
TEMPLATES = (
    "The {} said that",
    "The {} told the customer that",
    "The {} was late because",
    "The {} went home early because",
    "The {} finished the work, and then",
    "I asked the {} whether",
    "The {} smiled because",
    "After the meeting, the {} said that",
)
# (he, she) subject pairs for the steering vector; none is an occupation above
GENDERED = (
    ("man", "woman"), ("boy", "girl"), ("father", "mother"), ("brother", "sister"),
    ("husband", "wife"), ("king", "queen"), ("son", "daughter"), ("uncle", "aunt"),
    ("gentleman", "lady"), ("grandfather", "grandmother"),
)  # fmt: skip
PRONOUNS = (" he", " she")
HE, SHE = 0, 1  # label values: the stereotyped (or preferred) pronoun


@dataclass(frozen=True)
class OccupationPrompts:
    """Prompts with their occupation and its stereotyped pronoun (0 he, 1 she)."""

    texts: list[str]
    occupations: list[str]
    stereotype: np.ndarray


def occupation_prompts(
    templates: Sequence[str] = TEMPLATES, male: Sequence[str] = MALE, female: Sequence[str] = FEMALE
) -> OccupationPrompts:
    """Every template filled with every occupation (occupation-major order)."""
    if not templates or not male or not female:
        raise NapkitError("give at least one template and one occupation per side")
    for t in templates:
        if t.count("{}") != 1:
            raise NapkitError(f"a template needs exactly one '{{}}' for the occupation: {t!r}")
    occ = [(o, HE) for o in male] + [(o, SHE) for o in female]
    texts = [t.format(o) for o, _ in occ for t in templates]
    names = [o for o, _ in occ for _ in templates]
    labels = np.array([g for _, g in occ for _ in templates])
    return OccupationPrompts(texts, names, labels)


def gendered_contexts(templates: Sequence[str] = TEMPLATES, pairs=GENDERED) -> tuple[list[str], list[str]]:
    """(he contexts, she contexts): the templates filled with gendered nouns."""
    he = [t.format(a) for a, _ in pairs for t in templates]
    she = [t.format(b) for _, b in pairs for t in templates]
    return he, she


def pronoun_ids(tokenizer, pronouns: Sequence[str] = PRONOUNS) -> list[int]:
    """The token id of each pronoun; refuses a pronoun that is not exactly one known token."""
    return [known_token_id(tokenizer, p, "pronoun") for p in pronouns]


def log_odds(logprobs: torch.Tensor, ids: Sequence[int]) -> np.ndarray:
    """log p(ids[0]) − log p(ids[1]) per row of next-token log-probabilities."""
    return (logprobs[:, ids[0]] - logprobs[:, ids[1]]).double().numpy()


def stereotype_gap(he_she_log_odds: np.ndarray, stereotype: np.ndarray) -> float:
    """Mean log-odds of the stereotyped pronoun over the other (he/she log-odds, sign by label)."""
    sign = np.where(np.asarray(stereotype) == HE, 1.0, -1.0)
    return float(np.mean(sign * np.asarray(he_she_log_odds)))

"""Steering vectors: difference-of-means directions or per-position deltas, added as α·v.

The strength α is chosen by the divergence it causes, not by hand: :func:`alpha_for_kl`
brackets and bisects α until the mean KL(base ‖ steered) of the next-token distributions
is within a relative tolerance of a target, and reports a target it cannot reach instead of
returning a bound. :func:`steering_effect` compares the change a vector makes to a target
log-odds with that of random vectors of equal norm at the same KL (the controls), and
with the reversed vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.capture import capture, encode
from napkit.lm.interventions import Intervention, applied
from napkit.lm.models import load
from napkit.lm.tokenizer import known_token_id

RATIO_LEVEL = 0.9  # the bootstrap interval reported with an effect ratio
RATIO_DRAWS = 2000  # bootstrap resamples of the random controls


class UnreachableKL(NapkitError):
    """No α up to the search limit reaches the KL target; carries the largest KL reached."""

    def __init__(self, target: float, reached: float, alpha: float) -> None:
        self.target, self.reached, self.alpha = target, reached, alpha
        super().__init__(f"KL target {target:g} is unreachable: α = {alpha:g} reaches only KL {reached:.4g}")


def mean_difference(
    lm, texts_a: Sequence[str], texts_b: Sequence[str], module: str, positions=-1
) -> torch.Tensor:
    """mean(activations on ``texts_b``) − mean(on ``texts_a``) at ``module`` and ``positions``."""
    lm = load(lm)
    a = capture(lm, list(texts_a), [module], positions).acts[module]
    b = capture(lm, list(texts_b), [module], positions).acts[module]
    return torch.from_numpy(b.mean(0) - a.mean(0))


def position_deltas(lm, texts_a: Sequence[str], texts_b: Sequence[str], module: str) -> torch.Tensor:
    """Per-position mean differences (positions × width) over aligned texts of one length."""
    lm = load(lm)
    ga = capture(lm, list(texts_a), [module])
    gb = capture(lm, list(texts_b), [module])
    lengths = {int(n) for n in np.bincount(ga.sequence)} | {int(n) for n in np.bincount(gb.sequence)}
    if len(lengths) != 1:
        raise NapkitError(
            f"per-position deltas need texts of one token length; got lengths {sorted(lengths)}"
        )
    n = lengths.pop()
    da = ga.acts[module].reshape(-1, n, ga.acts[module].shape[1]).mean(0)
    db = gb.acts[module].reshape(-1, n, gb.acts[module].shape[1]).mean(0)
    return torch.from_numpy(db - da)


def steering(module: str, vector: torch.Tensor, alpha: float, positions: Sequence[int] | None = None):
    """The ``add`` intervention α·v at ``module`` (all positions by default)."""
    return Intervention(module, "add", vector, alpha, positions)


@torch.no_grad()
def next_token_logprobs(lm, texts: Sequence[str], interventions: Sequence[Intervention] = ()) -> torch.Tensor:
    """log p(next token) after each text (its last real position), shape (n, vocab)."""
    lm = load(lm)
    enc = encode(lm, list(texts))
    last = enc["attention_mask"].sum(1) - 1
    with applied(lm, interventions):
        logits = lm.model(**enc, use_cache=False).logits
    if not bool(torch.isfinite(logits).all()):
        raise NapkitError("the steered forward pass produced NaN or infinite logits")
    return torch.log_softmax(logits[torch.arange(len(last)), last].double(), -1)


def mean_kl(base: torch.Tensor, steered: torch.Tensor) -> float:
    """Mean KL(base ‖ steered) of log-probability rows."""
    return float((base.exp() * (base - steered)).sum(-1).mean())


@dataclass
class AlphaSearch:
    alpha: float
    kl: float
    evaluations: int


def alpha_for_kl(
    lm,
    texts: Sequence[str],
    module: str,
    vector: torch.Tensor,
    target: float,
    positions: Sequence[int] | None = None,
    rel_tol: float = 0.05,
    alpha_max: float = 1e4,
    max_evaluations: int = 60,
    base: torch.Tensor | None = None,
) -> AlphaSearch:
    """α ≥ 0 with mean KL within ``rel_tol`` of ``target``, by doubling then bisection."""
    if not (math.isfinite(target) and target > 0):
        raise NapkitError(f"the KL target must be a positive number, got {target}")
    lm = load(lm)
    base = next_token_logprobs(lm, texts) if base is None else base
    evals = 0

    def kl(alpha: float) -> float:
        nonlocal evals
        evals += 1
        return mean_kl(base, next_token_logprobs(lm, texts, [steering(module, vector, alpha, positions)]))

    lo, hi = 0.0, 1.0
    k_hi = kl(hi)
    while k_hi < target * (1 - rel_tol):
        if hi >= alpha_max:
            raise UnreachableKL(target, k_hi, hi)
        lo, hi = hi, min(2 * hi, alpha_max)
        k_hi = kl(hi)
    k = k_hi
    mid = hi
    while abs(k - target) > rel_tol * target:
        if evals >= max_evaluations:
            raise NapkitError(
                f"bisection for KL {target:g} stopped at KL {k:.4g} (α {mid:g}) after {evals} steps"
            )
        mid = 0.5 * (lo + hi)
        k = kl(mid)
        lo, hi = (mid, hi) if k < target else (lo, mid)
    return AlphaSearch(mid, k, evals)


def random_controls(vector: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random Gaussian directions with the norm of ``vector`` (shape n × width)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, vector.shape[-1], generator=g, dtype=torch.float64)
    return (r / r.norm(dim=1, keepdim=True) * float(vector.norm())).float()


@dataclass
class SteeringEffect:
    """Target log-odds changes at one KL: the vector, its reverse and the random controls."""

    alpha: float
    kl: float
    effect: float  # mean change of log p(b) − log p(a) under +α·v
    reversed_effect: float  # the same under −α·v
    random_effects: list[float]  # |change| for each equal-norm random vector at equal KL
    random_unreached: int  # random vectors that could not reach the KL target

    @property
    def ratio(self) -> float:
        """|effect| over the median |effect| of the random controls."""
        med = float(np.median(self.random_effects)) if self.random_effects else float("nan")
        return abs(self.effect) / med if med > 0 else float("inf")

    def ratio_interval(
        self, level: float = RATIO_LEVEL, draws: int = RATIO_DRAWS, seed: int = 0
    ) -> tuple[float, float]:
        """Percentile-bootstrap interval of :attr:`ratio` over the draw of its random controls.

        The median of 20 controls is itself an estimate: resampling the controls (with
        replacement, ``draws`` times) shows how far the ratio would move with another draw.
        Controls that never reached the KL target are not among them (as for :attr:`ratio`);
        with none left the interval is (NaN, NaN).
        """
        if not 0 < level < 1:
            raise NapkitError(f"the interval's level must lie in (0, 1), got {level}")
        if not self.random_effects:
            return float("nan"), float("nan")
        r = np.asarray(self.random_effects, dtype=float)
        idx = np.random.default_rng(seed).integers(0, len(r), size=(draws, len(r)))
        med = np.median(r[idx], axis=1)
        with np.errstate(divide="ignore"):
            ratios = np.where(med > 0, abs(self.effect) / med, np.inf)
        tail = 100 * (1 - level) / 2
        lo, hi = np.percentile(ratios, [tail, 100 - tail])
        return float(lo), float(hi)


def steering_effect(
    lm,
    texts: Sequence[str],
    module: str,
    vector: torch.Tensor,
    token_a: str,
    token_b: str,
    kl_target: float,
    n_random: int = 20,
    seed: int = 0,
    positions: Sequence[int] | None = None,
) -> SteeringEffect:
    """How far α·v moves log p(token_b) − log p(token_a) at KL ``kl_target``, against controls."""
    if n_random < 1:
        raise NapkitError(f"give at least one random control, got {n_random}")
    lm = load(lm)
    ia, ib = (known_token_id(lm.tokenizer, t) for t in (token_a, token_b))
    base = next_token_logprobs(lm, texts)
    odds0 = base[:, ib] - base[:, ia]

    def change(v: torch.Tensor, alpha: float) -> float:
        lp = next_token_logprobs(lm, texts, [steering(module, v, alpha, positions)])
        return float((lp[:, ib] - lp[:, ia] - odds0).mean())

    found = alpha_for_kl(lm, texts, module, vector, kl_target, positions, base=base)
    effect = change(vector, found.alpha)
    reverse = change(vector, -found.alpha)
    randoms, unreached = [], 0
    for r in random_controls(vector, n_random, seed):
        try:
            a = alpha_for_kl(lm, texts, module, r, kl_target, positions, base=base).alpha
        except UnreachableKL:
            unreached += 1
            continue
        randoms.append(abs(change(r, a)))
    return SteeringEffect(found.alpha, found.kl, effect, reverse, randoms, unreached)


@torch.no_grad()
def generate(
    lm, prompt: str, interventions: Sequence[Intervention] = (), max_new_tokens: int = 8, use_cache=True
):
    """Greedy continuation of ``prompt`` with the interventions active (KV cache by default)."""
    lm = load(lm)
    enc = encode(lm, [prompt])
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    with applied(lm, interventions):
        out = lm.model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=use_cache, pad_token_id=pad
        )
    return out[0, enc["input_ids"].shape[1] :]

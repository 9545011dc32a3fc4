"""Ablation: replace components by zero, their mean, or their values on other prompts.

Knocking out the components that patching ranks highest for one task and measuring the
accuracy of every task says whether tasks share machinery (recall vs in-context binding).
Runs through ``patching.run_variants``: one forward pass for the reference statistics,
one for the ablated prompts. :func:`ablation_scores` ranks single components (every head
and MLP neuron at one position, :func:`position_components`) by what ablating each alone
costs one task, so that components specific to one task can be chosen by score differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from napkit.errors import NapkitError
from napkit.lm._parts import check_ids, model_parts
from napkit.lm.patching import Site, capture, run_variants

ABLATIONS = ("zero", "mean", "resample")


@torch.no_grad()
def ablate(
    model: nn.Module,
    input_ids: torch.Tensor,
    sites: Sequence[Site],
    method: str = "mean",
    reference_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    reference_mask: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Logits at the last real token [batch, vocab] with ``sites`` ablated.

    zero: replaced by 0; mean: by the mean over the reference prompts' real tokens at
    the same position (over all their tokens where a position has none); resample: by
    the values of randomly drawn reference prompts (``seed``). The reference prompts
    default to ``input_ids`` and must have the same length.
    """
    if method not in ABLATIONS:
        raise NapkitError(f"unknown ablation {method!r}; choose one of {', '.join(ABLATIONS)}")
    ids = check_ids(input_ids, model)
    ref = ids if reference_ids is None else check_ids(reference_ids, model)
    ref_mask = attention_mask if reference_ids is None else reference_mask
    if ref.shape[1] != ids.shape[1]:
        raise NapkitError(f"reference prompts are {ref.shape[1]} tokens, the ablated ones {ids.shape[1]}")
    acts = capture(model, ref, ref_mask, sites)
    if method == "zero":
        sources = {k: torch.zeros_like(v[:1]) for k, v in acts.items()}
    elif method == "mean":
        w = (torch.ones(ref.shape) if ref_mask is None else ref_mask.float())[..., None]
        overall = {k: (v * w).sum((0, 1)) / w.sum() for k, v in acts.items()}
        counts = w.sum(0)
        per_position = {k: (v * w).sum(0) / counts.clamp(min=1) for k, v in acts.items()}
        sources = {k: torch.where(counts > 0, per_position[k], overall[k])[None] for k in acts}
    else:
        pick = torch.randint(0, len(ref), (len(ids),), generator=torch.Generator().manual_seed(seed))
        sources = {k: v[pick] for k, v in acts.items()}
    return run_variants(model, ids, attention_mask, [list(sites)], sources)[0]


def position_components(model: nn.Module, position: int) -> list[Site]:
    """Every head and every MLP neuron at one position (the finest components ablation takes)."""
    parts = model_parts(model)
    heads = [Site("head", lay, h, position) for lay in range(parts.n_layers) for h in range(parts.n_heads)]
    neurons = [Site("neuron", lay, j, position) for lay in range(parts.n_layers) for j in range(parts.d_mlp)]
    return heads + neurons


@torch.no_grad()
def ablation_scores(
    model: nn.Module,
    input_ids: torch.Tensor,
    answers: torch.Tensor,
    sites: Sequence[Site],
    attention_mask: torch.Tensor | None = None,
) -> np.ndarray:
    """Mean drop of log p(answer) at the last real token when each site alone is mean-ablated.

    The mean is over the prompts' own real tokens at the site's position (as :func:`ablate`);
    all single-site variants run batched through ``run_variants``.
    """
    ids = check_ids(input_ids, model)
    answers = torch.as_tensor(answers).long()
    if answers.shape != (len(ids),):
        raise NapkitError(f"{len(ids)} prompts but answers of shape {tuple(answers.shape)}")
    acts = capture(model, ids, attention_mask, sites)
    w = (torch.ones(ids.shape) if attention_mask is None else attention_mask.float())[..., None]
    counts = w.sum(0)
    sources = {k: ((v * w).sum(0) / counts.clamp(min=1))[None] for k, v in acts.items()}
    logits = run_variants(model, ids, attention_mask, [[]] + [[s] for s in sites], sources)
    logp = torch.log_softmax(logits.double(), -1)[:, torch.arange(len(ids)), answers]
    return (logp[0] - logp[1:]).mean(-1).numpy()

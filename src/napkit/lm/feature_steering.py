"""Steering along one feature direction over a layer × α × context grid.

SAE features are fragile steering handles: the same decoder row added at another layer,
with another strength or in another context can do little or something else. The grid
measures, for each (module, α, context), the change of the target token's log-probability
at the last real position and the KL divergence of the steered next-token distribution
from the clean one; all α of one module run as one batched forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from napkit.errors import NapkitError
from napkit.lm._parts import check_ids, hooked, last_positions


@dataclass
class SteeringGrid:
    modules: list[str]
    alphas: list[float]
    delta_logprob: np.ndarray  # [modules, alphas, contexts]
    kl: np.ndarray  # [modules, alphas, contexts]: KL(steered || clean) at the last position
    top_token: np.ndarray | None = None  # [modules, alphas, contexts]: the steered argmax next token


def _last_logprobs(model, ids, mask, last) -> torch.Tensor:
    logits = model(input_ids=ids, attention_mask=mask).logits
    return torch.log_softmax(logits[torch.arange(len(ids)), last].double(), -1)


@torch.no_grad()
def steering_grid(
    model: nn.Module,
    direction: torch.Tensor,
    modules: Sequence[str],
    alphas: Sequence[float],
    input_ids: torch.Tensor,
    target_ids: torch.Tensor | int,
    attention_mask: torch.Tensor | None = None,
) -> SteeringGrid:
    """Add α·direction to each named module's output (every position) and measure the effect."""
    ids = check_ids(input_ids, model)
    v = torch.as_tensor(direction).float().flatten()
    a = torch.as_tensor(list(alphas), dtype=torch.float32)
    if not torch.isfinite(v).all() or not torch.isfinite(a).all():
        raise NapkitError("the steering direction and every α must be finite (no NaN or infinity)")
    if len(a) == 0 or len(modules) == 0:
        raise NapkitError("give at least one module and one α")
    n_ctx = len(ids)
    targets = torch.as_tensor(target_ids).long().flatten().expand(n_ctx) if np.ndim(target_ids) == 0 else (
        torch.as_tensor(target_ids).long()
    )
    if targets.shape != (n_ctx,):
        raise NapkitError(f"give one target token per context ({n_ctx}), got {tuple(targets.shape)}")
    last = last_positions(attention_mask, ids)
    clean = _last_logprobs(model, ids, attention_mask, last)
    rep_ids = ids.repeat(len(a), 1)
    rep_mask = None if attention_mask is None else attention_mask.repeat(len(a), 1)
    rep_last = last.repeat(len(a))
    row_alpha = a.repeat_interleave(n_ctx)[:, None, None]
    delta = np.empty((len(modules), len(a), n_ctx))
    kl = np.empty_like(delta)
    top = np.empty(delta.shape, dtype=np.int64)
    for i, name in enumerate(modules):
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise NapkitError(f"the model has no module {name!r}") from None

        def add(out: torch.Tensor, name: str = name) -> torch.Tensor:
            if out.shape[-1] != v.shape[0]:
                raise NapkitError(f"{name} outputs width {out.shape[-1]}, the direction has {v.shape[0]}")
            return out + (row_alpha * v).to(out.dtype)

        with hooked([(module, "post", add)]):
            steered = _last_logprobs(model, rep_ids, rep_mask, rep_last).view(len(a), n_ctx, -1)
        delta[i] = (steered[:, torch.arange(n_ctx), targets] - clean[torch.arange(n_ctx), targets]).numpy()
        kl[i] = (steered.exp() * (steered - clean)).sum(-1).clamp(min=0).numpy()
        top[i] = steered.argmax(-1).numpy()
    return SteeringGrid(list(modules), a.tolist(), delta, kl, top)

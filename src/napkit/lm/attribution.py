"""Direct logit attribution, attention patterns and output nodes.

The residual stream at the last layer is a sum: embeddings + every attention output +
every MLP output, and each attention output is a sum over heads (z_h W_O[h]) plus the
output bias. With the final norm's scale frozen at its value on the actual input, the
norm is affine, so the logit difference logit(correct) − logit(wrong) splits exactly into
one term per head, per MLP, per attention bias, the embeddings and the norm's bias
(Lieberum et al. 2023 use this to find the "output nodes" of multiple-choice answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from napkit.errors import NapkitError
from napkit.lm._parts import check_ids, hooked, last_positions, model_parts, out_bias, out_matrix
from napkit.lm.patching import Site, patch
from napkit.staging import save_png


@dataclass
class DirectLogitAttribution:
    """Per-prompt terms (float64); their sum is the logit difference up to rounding."""

    heads: np.ndarray  # [batch, layers, heads]
    attn_bias: np.ndarray  # [batch, layers]
    mlps: np.ndarray  # [batch, layers]
    embed: np.ndarray  # [batch]
    final_bias: np.ndarray  # [batch]
    logit_diff: np.ndarray  # [batch], from the model's own logits

    def total(self) -> np.ndarray:
        return (
            self.heads.sum((1, 2)) + self.attn_bias.sum(1) + self.mlps.sum(1) + self.embed + self.final_bias
        )

    def sum_error(self) -> float:
        """Largest |sum of terms − logit difference| over the prompts."""
        return float(np.abs(self.total() - self.logit_diff).max())


def _frozen_norm(norm: nn.Module, x: torch.Tensor) -> tuple[callable, torch.Tensor]:
    """The final norm as (linear map with the scale frozen at x, its constant term)."""
    weight = norm.weight.double()
    if isinstance(norm, nn.LayerNorm):
        scale = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + norm.eps)
        bias = torch.zeros_like(weight) if norm.bias is None else norm.bias.double()
        return (
            lambda c: (c - c.mean(-1, keepdim=True)) / scale.view(-1, *[1] * (c.ndim - 2), 1) * weight
        ), bias
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))  # RMSNorm (Llama)
    scale = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return (lambda c: c / scale.view(-1, *[1] * (c.ndim - 2), 1) * weight), torch.zeros_like(weight)


@torch.no_grad()
def direct_logit_attribution(
    model: nn.Module,
    input_ids: torch.Tensor,
    correct: torch.Tensor,
    wrong: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> DirectLogitAttribution:
    """Split logit(correct) − logit(wrong) at each prompt's last real token into components."""
    parts = model_parts(model)
    ids = check_ids(input_ids, model)
    correct, wrong = torch.as_tensor(correct).long().flatten(), torch.as_tensor(wrong).long().flatten()
    if correct.shape != (len(ids),) or wrong.shape != (len(ids),):
        raise NapkitError(f"give one correct and one wrong token per prompt ({len(ids)})")
    last = last_positions(attention_mask, ids)
    rows = torch.arange(len(ids))
    got: dict[str, torch.Tensor] = {}

    def keep(name):
        return lambda t: got.__setitem__(name, t[rows, last].double())

    hooks = [(parts.layers[0].block, "pre", keep("embed")), (parts.final_norm, "pre", keep("final"))]
    for i, layer in enumerate(parts.layers):
        hooks += [(layer.attn_out, "pre", keep(f"z{i}")), (layer.mlp, "post", keep(f"mlp{i}"))]
    with hooked(hooks):
        logits = model(input_ids=ids, attention_mask=attention_mask).logits[rows, last].double()
    unembed = out_matrix(parts.unembed).double()  # [d_model, vocab]
    u = unembed[:, correct].T - unembed[:, wrong].T  # [batch, d_model]
    norm, const = _frozen_norm(parts.final_norm, got["final"])
    heads, biases, mlps = [], [], []
    for i, layer in enumerate(parts.layers):
        w_o = out_matrix(layer.attn_out).double().view(parts.n_heads, parts.d_head, -1)
        z = got[f"z{i}"].view(len(ids), parts.n_heads, parts.d_head)
        per_head = torch.einsum("bhd,hdm->bhm", z, w_o)
        heads.append((norm(per_head) * u[:, None]).sum(-1))
        b = out_bias(layer.attn_out).double().expand(len(ids), -1)
        biases.append((norm(b) * u).sum(-1))
        mlps.append((norm(got[f"mlp{i}"]) * u).sum(-1))
    return DirectLogitAttribution(
        heads=torch.stack(heads, 1).numpy(),
        attn_bias=torch.stack(biases, 1).numpy(),
        mlps=torch.stack(mlps, 1).numpy(),
        embed=(norm(got["embed"]) * u).sum(-1).numpy(),
        final_bias=(const * u).sum(-1).numpy(),
        logit_diff=(logits[rows, correct] - logits[rows, wrong]).numpy(),
    )


def output_nodes(dla: DirectLogitAttribution, k: int) -> list[Site]:
    """The k heads and MLPs with the largest mean direct effect on the logit difference."""
    heads = dla.heads.mean(0)
    mlps = dla.mlps.mean(0)
    n_layers, n_heads = heads.shape
    scores = np.concatenate([heads.ravel(), mlps])
    if not 1 <= k <= len(scores):
        raise NapkitError(f"output nodes: k (--top) must lie in [1, {len(scores)}] (heads and MLPs), got {k}")
    top = np.argsort(-scores, kind="stable")[:k]
    return [
        Site("head", int(j) // n_heads, int(j) % n_heads)
        if j < n_layers * n_heads
        else Site("mlp", int(j) - heads.size)
        for j in top
    ]


def output_node_recovery(
    model, clean_ids, corrupted_ids, correct, wrong, nodes: list[Site], attention_mask=None
):
    """Normalised logit-difference recovery when only ``nodes`` are patched clean → corrupted."""
    return float(patch(model, clean_ids, corrupted_ids, correct, wrong, [nodes], attention_mask).scores[0])


@torch.no_grad()
def attention_patterns(model: nn.Module, input_ids: torch.Tensor, attention_mask=None) -> torch.Tensor:
    """Attention weights [layers, batch, heads, query, key] (computed with eager attention)."""
    ids = check_ids(input_ids, model)
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        out = model(input_ids=ids, attention_mask=attention_mask, output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
    return torch.stack([a.float() for a in out.attentions])


def plot_attention(patterns: torch.Tensor, tokens: list[str], path: str | Path, title: str = "") -> Path:
    """One heat map per head ([heads, query, key] for one prompt and layer) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = torch.as_tensor(patterns)
    p = p[None] if p.ndim == 2 else p
    if p.ndim != 3 or p.shape[1] != p.shape[2] or p.shape[1] != len(tokens):
        raise NapkitError(f"patterns of shape {tuple(p.shape)} do not match {len(tokens)} tokens")
    n = p.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 0.5, 3.6), squeeze=False)
    for h, ax in enumerate(axes[0]):
        ax.imshow(p[h].numpy(), vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
        ax.set_yticks(range(len(tokens)), tokens if h == 0 else [""] * len(tokens), fontsize=6)
        ax.set_title(f"head {h}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, dpi=120)

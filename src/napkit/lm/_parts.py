"""Where the pieces of a decoder-only transformer live, and hooks that always come off.

The analysis methods (patching, attribution, SAE splicing, word classes) need the same
handful of modules per layer: the block, the attention output projection (its input is
the concatenation of the heads' outputs ``z``), the MLP, the MLP's output projection
(its input is the neuron activations), the final norm and the unembedding. This module
finds them for GPT-2 (``transformer.h``) and Llama-style models (``model.layers``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from napkit.errors import NapkitError


@dataclass(frozen=True)
class LayerParts:
    block: nn.Module
    attn: nn.Module
    attn_out: nn.Module  # input: concatenated head outputs z [..., n_heads * d_head]
    mlp: nn.Module
    mlp_out: nn.Module  # input: neuron activations [..., d_mlp]


@dataclass(frozen=True)
class ModelParts:
    layers: tuple[LayerParts, ...]
    final_norm: nn.Module
    unembed: nn.Module
    n_heads: int
    d_head: int
    d_mlp: int
    d_model: int

    @property
    def n_layers(self) -> int:
        return len(self.layers)


def model_parts(model: nn.Module) -> ModelParts:
    """The per-layer modules of a GPT-2 or Llama-style causal LM (HF transformers)."""
    cfg = getattr(model, "config", None)
    if hasattr(model, "transformer") and hasattr(model.transformer, "h"):
        layers = tuple(
            LayerParts(b, b.attn, b.attn.c_proj, b.mlp, b.mlp.c_proj) for b in model.transformer.h
        )
        norm, n_heads, d_model = model.transformer.ln_f, cfg.n_head, cfg.n_embd
    elif hasattr(model, "model") and hasattr(model.model, "layers"):
        layers = tuple(
            LayerParts(b, b.self_attn, b.self_attn.o_proj, b.mlp, b.mlp.down_proj) for b in model.model.layers
        )
        norm, n_heads, d_model = model.model.norm, cfg.num_attention_heads, cfg.hidden_size
    else:
        name = type(model).__name__
        raise NapkitError(f"unsupported model {name}: expected a GPT-2 or Llama-style causal LM")
    d_mlp = out_matrix(layers[0].mlp_out).shape[0]
    d_head = out_matrix(layers[0].attn_out).shape[0] // n_heads
    return ModelParts(layers, norm, model.lm_head, n_heads, d_head, d_mlp, d_model)


def out_matrix(proj: nn.Module) -> torch.Tensor:
    """The weight of a projection as [in, out] (HF Conv1D stores it so, nn.Linear transposed)."""
    w = proj.weight
    return w.T if isinstance(proj, nn.Linear) else w


def out_bias(proj: nn.Module) -> torch.Tensor:
    """The bias of a projection, zeros when it has none."""
    b = getattr(proj, "bias", None)
    return torch.zeros(out_matrix(proj).shape[1], dtype=proj.weight.dtype) if b is None else b


def first(output):
    """Element 0 of a module output that is a tuple (HF attention returns (out, weights))."""
    return output[0] if isinstance(output, tuple) else output


def replace_first(output, new: torch.Tensor):
    return (new, *output[1:]) if isinstance(output, tuple) else new


def model_fingerprint(model: nn.Module) -> str:
    """sha256 of a model's parameters by name: the identity an SAE file is checked against.

    The bytes are hashed in place (the buffer protocol), not copied out first.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy())
    return h.hexdigest()


Hook = tuple[nn.Module, str, Callable]  # (module, "pre" | "post", fn(tensor) -> tensor | None)


@contextmanager
def hooked(hooks: Sequence[Hook]) -> Iterator[None]:
    """Apply tensor hooks for the duration of a block; they come off even on exceptions.

    A "pre" hook sees the module's first positional input, a "post" hook its output
    (element 0 of a tuple); returning a tensor replaces it, returning None keeps it.
    """
    handles = []

    def pre_hook(fn):
        def run(module, args, kwargs):
            if args:
                new = fn(args[0])
                return None if new is None else ((new, *args[1:]), kwargs)
            key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
            new = fn(kwargs[key])
            return None if new is None else (args, {**kwargs, key: new})

        return run

    def post_hook(fn):
        def run(module, args, output):
            new = fn(first(output))
            return None if new is None else replace_first(output, new)

        return run

    try:
        for module, kind, fn in hooks:
            if kind == "pre":
                handles.append(module.register_forward_pre_hook(pre_hook(fn), with_kwargs=True))
            elif kind == "post":
                handles.append(module.register_forward_hook(post_hook(fn)))
            else:
                raise ValueError(f"hook kind {kind!r}")
        yield
    finally:
        for h in handles:
            h.remove()


def last_positions(attention_mask: torch.Tensor | None, input_ids: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each (right-padded) sequence."""
    if attention_mask is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, dtype=torch.long)
    return attention_mask.long().sum(1) - 1


def check_ids(input_ids: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Token ids as a [batch, seq] long tensor within the model's vocabulary."""
    ids = torch.as_tensor(input_ids)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or ids.dtype not in (torch.int32, torch.int64):
        raise NapkitError(
            f"token ids must be an integer [batch, seq] array, got {tuple(ids.shape)} {ids.dtype}"
        )
    vocab = model.get_output_embeddings().weight.shape[0]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise NapkitError(f"token ids must lie in [0, {vocab}), got {int(ids.min())}..{int(ids.max())}")
    # learned absolute positions (GPT-2's n_positions) end there; rotary ones have no hard end
    context = getattr(getattr(model, "config", None), "n_positions", None)
    if isinstance(context, int) and ids.shape[1] > context:
        raise NapkitError(
            f"sequences of {ids.shape[1]} tokens exceed the model's context of {context} positions"
        )
    return ids.long()

"""Where to read an activation: HF module names or TransformerLens-style aliases, per architecture.

A target is a module plus what to read there: its ``input`` (first positional argument,
else the ``hidden_states`` keyword), its ``output``, the attention ``pattern``, or a norm's
input ``normalized`` without its affine part.

**Tuple rule.** HF decoder layers and attention modules may return tuples whose element 0
is the hidden state (attention modules return ``(attn_output, attn_weights)``); napkit reads
element 0 of a tuple output, and requires it to be a ``(batch, seq, ...)`` tensor, else the
output is ambiguous and refused. The ``pattern`` read takes element 1 of an attention
module's output under eager attention, shape ``(batch, heads, query, key)``.

Aliases (``{i}`` a layer index), GPT-2 (``gpt2``) | Llama family (``llama``, ``mistral``, ``qwen2``):

- ``blocks.{i}.hook_resid_pre``: input of ``transformer.h.{i}`` | of ``model.layers.{i}``;
- ``blocks.{i}.hook_resid_mid``: input of ``transformer.h.{i}.ln_2`` |
  of ``model.layers.{i}.post_attention_layernorm``; an intervention there also adds its change
  to the block's output, so the residual stream carries it, as in TransformerLens;
- ``blocks.{i}.hook_resid_post``: output of ``transformer.h.{i}`` | of ``model.layers.{i}``;
- ``blocks.{i}.mlp.hook_pre``: input of ``transformer.h.{i}.mlp.act`` | of ``model.layers.{i}.mlp.act_fn``
  (the gate);
- ``blocks.{i}.mlp.hook_post``: output of ``transformer.h.{i}.mlp.act`` |
  input of ``model.layers.{i}.mlp.down_proj`` (act(gate) * up, as TL's gated MLPs);
- ``blocks.{i}.attn.hook_z``: input of ``transformer.h.{i}.attn.c_proj`` |
  of ``model.layers.{i}.self_attn.o_proj``;
- ``blocks.{i}.attn.hook_pattern``: pattern of ``transformer.h.{i}.attn`` | of ``model.layers.{i}.self_attn``;
- ``blocks.{i}.hook_attn_out``: output of ``transformer.h.{i}.attn`` | of ``model.layers.{i}.self_attn``;
- ``blocks.{i}.hook_mlp_out``: output of ``transformer.h.{i}.mlp`` | of ``model.layers.{i}.mlp``;
- ``ln_final.hook_normalized``: input of ``transformer.ln_f`` | of ``model.norm``, normalised
  without the norm's weight and bias (as TL's hook: ``(x − mean) / √(var + eps)`` for
  LayerNorm, ``x / √(mean(x²) + eps)`` for RMSNorm); HF's last hidden state is this times
  the weight plus the bias (the ``output`` of the module name ``transformer.ln_f``).

``hook_z`` is flattened over heads (``heads × d_head`` columns, head-major as TL's
``[..., head, d_head]``). For a TransformerLens model every hook point is a module:
its name is read as an ``output``, except ``hook_pattern`` and ``hook_attn_scores``
(``(batch, heads, query, key)``), read as patterns.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from torch import nn

from napkit.errors import NapkitError

GPT2 = {
    "hook_resid_pre": ("transformer.h.{i}", "input"),
    "hook_resid_mid": ("transformer.h.{i}.ln_2", "input"),
    "hook_resid_post": ("transformer.h.{i}", "output"),
    "mlp.hook_pre": ("transformer.h.{i}.mlp.act", "input"),
    "mlp.hook_post": ("transformer.h.{i}.mlp.act", "output"),
    "attn.hook_z": ("transformer.h.{i}.attn.c_proj", "input"),
    "attn.hook_pattern": ("transformer.h.{i}.attn", "pattern"),
    "hook_attn_out": ("transformer.h.{i}.attn", "output"),
    "hook_mlp_out": ("transformer.h.{i}.mlp", "output"),
}
LLAMA = {
    "hook_resid_pre": ("model.layers.{i}", "input"),
    "hook_resid_mid": ("model.layers.{i}.post_attention_layernorm", "input"),
    "hook_resid_post": ("model.layers.{i}", "output"),
    "mlp.hook_pre": ("model.layers.{i}.mlp.act_fn", "input"),
    "mlp.hook_post": ("model.layers.{i}.mlp.down_proj", "input"),
    "attn.hook_z": ("model.layers.{i}.self_attn.o_proj", "input"),
    "attn.hook_pattern": ("model.layers.{i}.self_attn", "pattern"),
    "hook_attn_out": ("model.layers.{i}.self_attn", "output"),
    "hook_mlp_out": ("model.layers.{i}.mlp", "output"),
}
ARCHITECTURES = {"gpt2": (GPT2, "transformer.ln_f"), "llama": (LLAMA, "model.norm")}
for _family in ("mistral", "qwen2", "qwen3", "smollm3"):
    ARCHITECTURES[_family] = ARCHITECTURES["llama"]
# An alias read at the input of a module beside the residual stream: a write there reaches only
# that module (the MLP's norm), so an intervention also adds its change to the output of the
# alias given here, the block's (TransformerLens semantics: resid_mid itself changes, and so
# resid_post; the MLP's output stays the MLP's).
RESIDUAL_CARRIERS = {"hook_resid_mid": "hook_resid_post"}
FINAL_NORM_ALIAS = "ln_final.hook_normalized"
TL_PATTERN_HOOKS = ("hook_pattern", "hook_attn_scores")  # TransformerLens: (batch, heads, query, key)
_BLOCK_ALIAS = re.compile(r"^blocks\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class Target:
    """A resolved capture target: the name asked for, the module, and what to read there."""

    name: str
    module_name: str
    module: nn.Module
    read: str  # "input", "output", "pattern" or "normalized"
    # for an input read beside the residual stream: the module whose output must also carry a
    # write's change, so that the residual stream sees it (see RESIDUAL_CARRIERS)
    carrier: nn.Module | None = None


def n_layers(model: nn.Module) -> int:
    cfg = getattr(model, "config", None)
    for attr in ("n_layer", "num_hidden_layers", "n_layers"):
        if cfg is not None and isinstance(getattr(cfg, attr, None), int):
            return int(getattr(cfg, attr))
    raise NapkitError(f"cannot tell the number of layers of {type(model).__name__}")


def alias_names(model: nn.Module, kind: str = "hf") -> list[str]:
    """Every TL-style alias this model's architecture knows (empty for TL models and others)."""
    table = _table(model, kind)
    if table is None:
        return []
    per_block, _ = table
    names = [f"blocks.{i}.{a}" for i in range(n_layers(model)) for a in per_block]
    return names + [FINAL_NORM_ALIAS]


def final_norm_name(model: nn.Module) -> str:
    """The HF module name of the final norm, whose output times the unembedding gives the logits."""
    table = _table(model, "hf")
    if table is None or table[1] not in dict(model.named_modules()):
        arch = str(getattr(getattr(model, "config", None), "model_type", type(model).__name__))
        known = ", ".join(sorted(ARCHITECTURES))
        raise NapkitError(f"no known final norm for a {arch} model (architectures: {known})")
    return table[1]


def _table(model: nn.Module, kind: str):
    if kind == "tl":
        return None
    return ARCHITECTURES.get(str(getattr(getattr(model, "config", None), "model_type", "")))


def resolve(model: nn.Module, name: str, kind: str = "hf") -> Target:
    """The target a module name or alias stands for; an unknown one names the nearest."""
    modules = dict(model.named_modules())
    if name in modules and name:
        pattern = kind == "tl" and name.endswith(TL_PATTERN_HOOKS)
        return Target(name, name, modules[name], "pattern" if pattern else "output")
    table = _table(model, kind)
    if table is not None:
        per_block, final_norm = table
        m = _BLOCK_ALIAS.match(name)
        spec, carrier = None, None
        if m and m.group(2) in per_block and int(m.group(1)) < n_layers(model):
            template, read = per_block[m.group(2)]
            spec = (template.format(i=int(m.group(1))), read)
            if m.group(2) in RESIDUAL_CARRIERS:
                carrier = modules.get(per_block[RESIDUAL_CARRIERS[m.group(2)]][0].format(i=int(m.group(1))))
        elif name == FINAL_NORM_ALIAS:
            spec = (final_norm, "normalized")
        if spec is not None and spec[0] in modules:
            return Target(name, spec[0], modules[spec[0]], spec[1], carrier)
    candidates = [n for n in modules if n] + alias_names(model, kind)
    near = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    hint = f"; nearest: {', '.join(near)}" if near else ""
    arch = str(getattr(getattr(model, "config", None), "model_type", type(model).__name__))
    if not near and table is None and _BLOCK_ALIAS.match(name):  # an alias, on an architecture without them
        hint = f"; aliases are defined for {', '.join(sorted(ARCHITECTURES))} models: name a module instead"
    raise NapkitError(f"unknown module or alias {name!r} for this {arch} model{hint}")

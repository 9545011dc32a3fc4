"""Activation patching and ablation: which components carry the answer from a clean prompt?

A *site* names one activation (a residual stream, an attention or MLP output, one head's
output z, one MLP neuron) at one position or at all. A *variant* is a set of sites whose
values are replaced in one forward pass of the corrupted prompts: by the clean run's
values (patching) or by zero, the mean over reference prompts, or the values of other
reference prompts (``ablation`` reuses this machinery). Many variants run as one batched
pass (the corrupted batch repeated, each copy with its own mask), so a layer × position or
per-neuron sweep costs a few forward passes. The score is the normalised logit difference
(LD − LD_corrupted) / (LD_clean − LD_corrupted), LD = logit(correct) − logit(wrong) at the
last real token, averaged over prompts: 0 when nothing is patched, 1 when everything is.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from napkit.errors import NapkitError
from napkit.lm._parts import ModelParts, check_ids, hooked, last_positions, model_parts

COMPONENTS = ("resid_pre", "resid_post", "attn", "head", "mlp", "neuron")
MAX_ROWS = 4096  # rows (variants × prompts) per batched forward pass


@dataclass(frozen=True)
class Site:
    """One activation: ``component`` at ``layer`` (head or neuron ``index``), at ``position`` or all."""

    component: str
    layer: int
    index: int | None = None
    position: int | None = None


def _hook_point(parts: ModelParts, site: Site) -> tuple[tuple[int, str], nn.Module, str, slice]:
    """(key, module, pre|post, feature slice) where the site's activation lives."""
    n = parts.n_layers
    if site.component not in COMPONENTS:
        raise NapkitError(f"unknown component {site.component!r}; choose one of {', '.join(COMPONENTS)}")
    top = n if site.component == "resid_pre" else n - 1  # resid_pre at n_layers is the final norm's input
    if not 0 <= site.layer <= top:
        raise NapkitError(f"layer {site.layer} is outside [0, {top}] for {site.component}")
    everything = slice(None)
    if site.component == "resid_pre":
        if site.layer == n:
            return (n, "final_in"), parts.final_norm, "pre", everything
        return (site.layer, "block_in"), parts.layers[site.layer].block, "pre", everything
    layer = parts.layers[site.layer]
    if site.component == "resid_post":
        return (site.layer, "block_out"), layer.block, "post", everything
    if site.component == "attn":
        return (site.layer, "attn_out"), layer.attn, "post", everything
    if site.component == "mlp":
        return (site.layer, "mlp_out"), layer.mlp, "post", everything
    width = parts.n_heads if site.component == "head" else parts.d_mlp
    if site.index is None or not 0 <= site.index < width:
        raise NapkitError(f"{site.component} index {site.index} is outside [0, {width})")
    if site.component == "head":
        lo = site.index * parts.d_head
        return (site.layer, "z"), layer.attn_out, "pre", slice(lo, lo + parts.d_head)
    return (site.layer, "neurons"), layer.mlp_out, "pre", slice(site.index, site.index + 1)


@torch.no_grad()
def capture(
    model: nn.Module, input_ids, attention_mask, sites: Sequence[Site]
) -> dict[tuple[int, str], torch.Tensor]:
    """The activations [batch, seq, width] at the hook points of ``sites``, from one forward pass."""
    return _capture_logits(model, input_ids, attention_mask, sites)[0]


@torch.no_grad()
def _capture_logits(model: nn.Module, input_ids, attention_mask, sites: Sequence[Site]):
    """The activations at ``sites`` and the logits at the last real token, from one forward pass."""
    parts = model_parts(model)
    points = {key: (mod, kind) for key, mod, kind, _ in (_hook_point(parts, s) for s in sites)}
    store: dict = {}

    def keep(key):
        return lambda t: store.__setitem__(key, t.detach().clone())

    ids = torch.as_tensor(input_ids)
    with hooked([(mod, kind, keep(key)) for key, (mod, kind) in points.items()]):
        logits = _last_logits(model, ids, attention_mask, last_positions(attention_mask, ids), 1)
    return store, logits[0]


def _last_logits(model, ids, attention_mask, last, copies: int) -> torch.Tensor:
    """Logits [copies, batch, vocab] at each row's last real token of a forward pass on ``ids``.

    The unembedding runs at those positions only (``logits_to_keep``) where the model takes it.
    """
    kw = {}
    keep = torch.unique(last)
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        kw["logits_to_keep"] = keep
    logits = model(input_ids=ids, attention_mask=attention_mask, **kw).logits
    b = len(last)
    if logits.shape[0] != copies * b:
        raise NapkitError(f"the forward pass returned batch {logits.shape[0]}, expected {copies * b}")
    col = torch.searchsorted(keep, last) if kw else last
    rows = torch.arange(copies * b)
    return logits[rows, col.repeat(copies)].view(copies, b, -1)


def _first_layer(parts: ModelParts, sites: Sequence[Site]) -> int:
    """The first block a variant changes (n_layers: only the final norm's input, or nothing)."""
    return min((s.layer for s in sites), default=parts.n_layers)


def _widen(value, b: int, copies: int):
    """Repeat batch-``b`` tensors (in tuples too) ``copies`` times along the batch axis."""
    if torch.is_tensor(value):
        if value.ndim >= 2 and value.shape[0] == b and b > 1:
            return value.repeat(copies, *([1] * (value.ndim - 1)))
        return value
    if isinstance(value, tuple):
        return tuple(_widen(v, b, copies) for v in value)
    return value


def _fan_out_hooks(parts: ModelParts, start: int, b: int, copies: int) -> list:
    """Pre-hooks that run layers before ``start`` once, at batch ``b``, and fan out after.

    At block ``start`` (or the final norm) the hidden state is repeated ``copies`` times
    (variant-major, as ``ids.repeat``); every block from there on also gets its other
    batch-``b`` inputs (masks, positions, rotary tables) repeated alike.
    """
    modules = [layer.block for layer in parts.layers[start:]] or [parts.final_norm]

    def widen(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        if hidden.shape[0] == b:
            hidden = hidden.repeat(copies, *([1] * (hidden.ndim - 1)))
        rest = tuple(_widen(a, b, copies) for a in args[1:])
        kwargs = {k: _widen(v, b, copies) for k, v in kwargs.items() if k != "hidden_states"}
        if args:
            return (hidden, *rest), kwargs
        return rest, {**kwargs, "hidden_states": hidden}

    return [m.register_forward_pre_hook(widen, with_kwargs=True) for m in modules]


@torch.no_grad()
def run_variants(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    variants: Sequence[Sequence[Site]],
    sources: dict[tuple[int, str], torch.Tensor],
    max_rows: int = MAX_ROWS,
) -> torch.Tensor:
    """Logits at the last real token [variants, batch, vocab], each variant's sites replaced.

    ``sources[key]`` gives the replacement values, broadcastable to [batch, seq, width].
    Variants are grouped by the first layer they change; the layers before it run once per
    group at the prompts' batch size, and only the rest runs once per variant.
    """
    parts = model_parts(model)
    ids = check_ids(input_ids, model)
    b, t = ids.shape
    last = last_positions(attention_mask, ids)
    per_chunk = max(1, max_rows // b)
    groups: dict[int, list[int]] = {}
    for v, sites in enumerate(variants):
        groups.setdefault(_first_layer(parts, sites), []).append(v)
    out = torch.empty(len(variants), b, model.get_output_embeddings().weight.shape[0])
    for start, members in sorted(groups.items()):
        for lo in range(0, len(members), per_chunk):
            rows = members[lo : lo + per_chunk]
            chunk = [variants[v] for v in rows]
            out[rows] = _run_chunk(model, parts, ids, attention_mask, last, chunk, sources, start)
    return out


def _run_chunk(model, parts, ids, attention_mask, last, chunk, sources, start) -> torch.Tensor:
    """One forward pass for variants that all leave the layers before ``start`` alone."""
    b, t = ids.shape
    n_var = len(chunk)
    masks: dict[tuple[int, str], tuple[nn.Module, str, torch.Tensor]] = {}
    for v, sites in enumerate(chunk):
        for site in sites:
            key, mod, kind, feats = _hook_point(parts, site)
            if site.position is not None and not 0 <= site.position < t:
                raise NapkitError(f"position {site.position} is outside the sequence [0, {t})")
            if key not in masks:
                width = sources[key].shape[-1]
                masks[key] = (mod, kind, torch.zeros(n_var, t, width, dtype=torch.bool))
            pos = slice(None) if site.position is None else site.position
            masks[key][2][v, pos, feats] = True

    def replace(key):
        mask, src = masks[key][2], sources[key]

        def fn(x: torch.Tensor) -> torch.Tensor:
            xs = x.view(n_var, b, *x.shape[1:])
            return torch.where(mask[:, None], src.to(x.dtype), xs).view(x.shape)

        return fn

    hooks = [(mod, kind, replace(key)) for key, (mod, kind, _) in masks.items()]
    fan_out = _fan_out_hooks(parts, start, b, n_var) if n_var > 1 else []  # before the sites' hooks
    try:
        with hooked(hooks):
            return _last_logits(model, ids, attention_mask, last, n_var)
    finally:
        for h in fan_out:
            h.remove()


def logit_diff(logits: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """logit(correct) − logit(wrong) per prompt, in float64; logits [..., batch, vocab]."""
    idx = torch.arange(logits.shape[-2])
    return logits[..., idx, correct].double() - logits[..., idx, wrong].double()


@dataclass
class PatchResult:
    scores: np.ndarray  # normalised recovery per variant, in the shape of the sweep
    ld_clean: float
    ld_corrupted: float


def check_pair(clean_ids, corrupted_ids, clean_mask=None, corrupted_mask=None) -> None:
    """Clean and corrupted prompts must align token for token."""
    c, x = torch.as_tensor(clean_ids), torch.as_tensor(corrupted_ids)
    if c.shape != x.shape:
        raise NapkitError(
            f"clean and corrupted token arrays differ: clean {tuple(c.shape)}, corrupted {tuple(x.shape)}"
        )
    if clean_mask is not None or corrupted_mask is not None:
        lc = last_positions(clean_mask, c) + 1
        lx = last_positions(corrupted_mask, x) + 1
        bad = (lc != lx).nonzero().flatten()
        if len(bad):
            i = int(bad[0])
            raise NapkitError(
                f"prompt {i}: clean is {int(lc[i])} tokens, corrupted {int(lx[i])}; "
                "patching needs equal lengths"
            )


def patch(
    model: nn.Module,
    clean_ids: torch.Tensor,
    corrupted_ids: torch.Tensor,
    correct: torch.Tensor,
    wrong: torch.Tensor,
    variants: Sequence[Sequence[Site]],
    attention_mask: torch.Tensor | None = None,
    max_rows: int = MAX_ROWS,
) -> PatchResult:
    """Normalised logit-difference recovery of each variant (clean values patched into corrupted runs)."""
    check_pair(clean_ids, corrupted_ids)
    clean_ids, corrupted_ids = check_ids(clean_ids, model), check_ids(corrupted_ids, model)
    correct, wrong = torch.as_tensor(correct).long(), torch.as_tensor(wrong).long()
    sites = [s for v in variants for s in v]
    # one pass over clean and corrupted prompts: the clean values to patch in and both baselines
    both, base = _capture_logits(model, torch.cat([clean_ids, corrupted_ids]), _cat(attention_mask), sites)
    sources = {key: value[: len(clean_ids)] for key, value in both.items()}
    ld = logit_diff(base.view(2, len(clean_ids), -1), correct, wrong).mean(-1)
    ld_clean, ld_corr = float(ld[0]), float(ld[1])
    if ld_clean == ld_corr:
        raise NapkitError("clean and corrupted prompts give the same logit difference: nothing to recover")
    patched = run_variants(model, corrupted_ids, attention_mask, variants, sources, max_rows)
    scores = (logit_diff(patched, correct, wrong).mean(-1) - ld_corr) / (ld_clean - ld_corr)
    return PatchResult(scores.numpy(), ld_clean, ld_corr)


def _cat(mask):
    return None if mask is None else torch.cat([mask, mask])


def sweep_variants(
    model: nn.Module, component: str, seq_len: int | None = None
) -> tuple[list[list[Site]], tuple]:
    """All single-site variants of a component: per layer × position for residual streams,
    per layer × head, per layer (attn, mlp), per layer × neuron; with the grid shape."""
    parts = model_parts(model)
    n = parts.n_layers
    if component in ("resid_pre", "resid_post"):
        if seq_len is None:
            raise NapkitError("a residual-stream sweep needs the sequence length")
        grid = (n, seq_len)
        return [[Site(component, lay, position=p)] for lay in range(n) for p in range(seq_len)], grid
    if component in ("attn", "mlp"):
        return [[Site(component, lay)] for lay in range(n)], (n,)
    width = {"head": parts.n_heads, "neuron": parts.d_mlp}.get(component)
    if width is None:
        raise NapkitError(f"unknown component {component!r}; choose one of {', '.join(COMPONENTS)}")
    return [[Site(component, lay, j)] for lay in range(n) for j in range(width)], (n, width)


def patch_sweep(
    model, clean_ids, corrupted_ids, correct, wrong, component: str, attention_mask=None
) -> PatchResult:
    """``patch`` over every single site of a component, scores shaped as the sweep's grid."""
    variants, grid = sweep_variants(model, component, torch.as_tensor(clean_ids).shape[-1])
    res = patch(model, clean_ids, corrupted_ids, correct, wrong, variants, attention_mask)
    res.scores = res.scores.reshape(grid)
    return res


def answer_token(tokenizer, word: str) -> int:
    """The id of an answer word, refused unless it is exactly one token."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise NapkitError(f"answer word {word!r} is {len(ids)} tokens ({ids}), not one")
    return int(ids[0])


def encode_pair(tokenizer, clean: Sequence[str], corrupted: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """Token ids of clean and corrupted prompts and their attention mask; lengths must agree."""
    if len(clean) != len(corrupted) or not clean:
        raise NapkitError(f"give as many clean as corrupted prompts (got {len(clean)} and {len(corrupted)})")
    c = tokenizer(list(clean), return_tensors="pt", padding=True)
    x = tokenizer(list(corrupted), return_tensors="pt", padding=True)
    lc, lx = c["attention_mask"].sum(1), x["attention_mask"].sum(1)
    bad = (lc != lx).nonzero().flatten()
    if len(bad) or c["input_ids"].shape != x["input_ids"].shape:
        i = int(bad[0]) if len(bad) else 0
        raise NapkitError(
            f"clean and corrupted prompts differ in length: {clean[i]!r} is {int(lc[i])} tokens, "
            f"{corrupted[i]!r} is {int(lx[i])}"
        )
    return c["input_ids"], x["input_ids"], c["attention_mask"]

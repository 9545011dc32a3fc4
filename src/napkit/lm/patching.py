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
from napkit.lm.tokenizer import known_token_id, refuse_unknown_words

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
    params = inspect.signature(model.forward).parameters
    if "logits_to_keep" in params:
        kw["logits_to_keep"] = keep
    if "use_cache" in params:
        kw["use_cache"] = False  # no key/value cache: nothing is generated
    logits = model(input_ids=ids, attention_mask=attention_mask, **kw).logits
    b = len(last)
    if logits.shape[0] != copies * b:
        raise NapkitError(f"the forward pass returned batch {logits.shape[0]}, expected {copies * b}")
    col = torch.searchsorted(keep, last) if "logits_to_keep" in kw else last
    rows = torch.arange(copies * b)
    return logits[rows, col.repeat(copies)].view(copies, b, -1)


def _first_layer(parts: ModelParts, sites: Sequence[Site]) -> int:
    """The first block a variant changes (n_layers: only the final norm's input)."""
    return min(s.layer for s in sites)


def _check_site(parts: ModelParts, site: Site, seq_len: int) -> None:
    _hook_point(parts, site)
    if site.position is not None and not 0 <= site.position < seq_len:
        raise NapkitError(f"position {site.position} is outside the sequence [0, {seq_len})")


def _reaches_logits(parts: ModelParts, site: Site, last: set[int]) -> bool:
    """False when the site's values cannot reach the logits read at the last real tokens.

    An output of the last block (attention, heads, MLP, neurons, the block itself) or the
    final norm's input at a position no prompt reads logits at only changes the residual
    stream there, which nothing after it reads.
    """
    if site.position is None or site.position in last:
        return True
    n = parts.n_layers
    if site.component == "resid_pre":
        return site.layer < n
    return site.layer < n - 1


def _widen(value, b: int, copies: int):
    """Repeat batch-``b`` tensors (in tuples too) ``copies`` times along the batch axis."""
    if torch.is_tensor(value):
        if value.ndim >= 2 and value.shape[0] == b and b > 1:
            return value.repeat(copies, *([1] * (value.ndim - 1)))
        return value
    if isinstance(value, tuple):
        return tuple(_widen(v, b, copies) for v in value)
    return value


def _growing_batch_hooks(parts: ModelParts, b: int, enter: Sequence[int]) -> list:
    """Pre-hooks for one pass whose batch grows layer by layer.

    Rows ``[0, b)`` run the prompts unchanged through every layer (the base). At block ``L``
    (``L = n_layers``: the final norm) ``enter[L]`` copies of the base rows' hidden state join
    at the end of the batch, so a variant runs only the layers from its first site on and the
    layers before it are shared by all. Each block's other batch-``b`` inputs (masks,
    positions, rotary tables) are repeated to the batch there.
    """
    modules = [layer.block for layer in parts.layers] + [parts.final_norm]
    handles = []
    copies = 1
    for layer, module in enumerate(modules):
        if copies == 1 and enter[layer] == 0:
            continue  # nothing joined yet: the block runs at the prompts' batch
        before, copies = copies, copies + enter[layer]

        def widen(module, args, kwargs, before=before, copies=copies, layer=layer):
            hidden = args[0] if args else kwargs["hidden_states"]
            if hidden.shape[0] != before * b:
                got = hidden.shape[0]
                raise NapkitError(
                    f"layer {layer} got batch {got}, expected {before * b} (does a block run twice?)"
                )
            if copies > before:
                extra = hidden[:b].repeat(copies - before, *([1] * (hidden.ndim - 1)))
                hidden = torch.cat([hidden, extra])
            rest = tuple(_widen(a, b, copies) for a in args[1:])
            kwargs = {k: _widen(v, b, copies) for k, v in kwargs.items() if k != "hidden_states"}
            if args:
                return (hidden, *rest), kwargs
            return rest, {**kwargs, "hidden_states": hidden}

        handles.append(module.register_forward_pre_hook(widen, with_kwargs=True))
    return handles


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
    One forward pass per chunk of variants: the prompts run unchanged from the embedding, and
    each variant joins the batch at the first layer it changes (see ``_growing_batch_hooks``).
    """
    return _run_variants(model, input_ids, attention_mask, variants, sources, max_rows)[0]


@torch.no_grad()
def _run_variants(model, input_ids, attention_mask, variants, sources, max_rows=MAX_ROWS):
    """(logits per variant [variants, batch, vocab], the unchanged prompts' logits [batch, vocab])."""
    parts = model_parts(model)
    ids = check_ids(input_ids, model)
    b, t = ids.shape
    last = last_positions(attention_mask, ids)
    read = {int(p) for p in last}
    for sites in variants:
        for site in sites:
            _check_site(parts, site, t)
    # sites that cannot reach the logits read change nothing; a variant left without sites is the base
    live = [[s for s in sites if _reaches_logits(parts, s, read)] for sites in variants]
    order = sorted((v for v in range(len(variants)) if live[v]), key=lambda v: _first_layer(parts, live[v]))
    per_chunk = max(1, max_rows // b - 1)  # one copy of the prompts is the base
    out = torch.empty(len(variants), b, model.get_output_embeddings().weight.shape[0])
    base = None
    for lo in range(0, max(len(order), 1), per_chunk):
        rows = order[lo : lo + per_chunk]
        logits = _run_chunk(model, parts, ids, attention_mask, last, [live[v] for v in rows], sources)
        base = logits[0] if base is None else base
        out[rows] = logits[1:]
    idle = [v for v in range(len(variants)) if not live[v]]
    out[idle] = base
    return out, base


def _run_chunk(model, parts, ids, attention_mask, last, chunk, sources) -> torch.Tensor:
    """Logits [1 + len(chunk), batch, vocab]: the base, then the variants (sorted by first layer)."""
    b, t = ids.shape
    n = parts.n_layers
    starts = [_first_layer(parts, sites) for sites in chunk]
    enter = [starts.count(layer) for layer in range(n + 1)]
    masks: dict[tuple[int, str], tuple[nn.Module, str, torch.Tensor]] = {}
    for v, sites in enumerate(chunk):
        for site in sites:
            key, mod, kind, feats = _hook_point(parts, site)
            if key not in masks:
                # rows there: the base and the variants that joined at or before the key's layer
                rows = 1 + sum(1 for s in starts if s <= key[0])
                masks[key] = (mod, kind, torch.zeros(rows, t, sources[key].shape[-1], dtype=torch.bool))
            pos = slice(None) if site.position is None else site.position
            masks[key][2][1 + v, pos, feats] = True

    def replace(key):
        mask, src = masks[key][2], sources[key]

        def fn(x: torch.Tensor) -> torch.Tensor:
            xs = x.view(len(mask), b, *x.shape[1:])
            return torch.where(mask[:, None], src.to(x.dtype), xs).view(x.shape)

        return fn

    hooks = [(mod, kind, replace(key)) for key, (mod, kind, _) in masks.items()]
    grow = _growing_batch_hooks(parts, b, enter)  # registered before the sites' hooks: they run first
    try:
        with hooked(hooks):
            return _last_logits(model, ids, attention_mask, last, 1 + len(chunk))
    finally:
        for h in grow:
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
    # one pass over the clean prompts: the values to patch in and the clean baseline
    sources, clean_logits = _capture_logits(model, clean_ids, attention_mask, sites)
    ld_clean = float(logit_diff(clean_logits, correct, wrong).mean())
    same = _equal_values(clean_ids, corrupted_ids)
    parts = model_parts(model)
    for site in sites:
        _check_site(parts, site, clean_ids.shape[1])
    # a site whose clean values equal the corrupted ones patches nothing; the base row is the corrupted run
    differing = [[s for s in v if not same(s)] for v in variants]
    patched, base = _run_variants(model, corrupted_ids, attention_mask, differing, sources, max_rows)
    ld_corr = float(logit_diff(base, correct, wrong).mean())
    if ld_clean == ld_corr:
        raise NapkitError("clean and corrupted prompts give the same logit difference: nothing to recover")
    scores = (logit_diff(patched, correct, wrong).mean(-1) - ld_corr) / (ld_clean - ld_corr)
    return PatchResult(scores.numpy(), ld_clean, ld_corr)


def _equal_values(clean_ids: torch.Tensor, corrupted_ids: torch.Tensor):
    """A test: are a site's clean values those of the corrupted run, by the tokens alone?

    Both runs share the attention mask. At a position before the first token where any
    prompt pair differs, every activation is the same (the models are causal); the
    embeddings (``resid_pre`` of layer 0) are the same wherever the tokens are.
    """
    equal = (clean_ids == corrupted_ids).all(0)
    shared = int(equal.long().cumprod(0).sum())  # length of the common prefix

    def same(site: Site) -> bool:
        if site.position is None:
            return bool(equal.all())
        if site.position < shared:
            return True
        return site.component == "resid_pre" and site.layer == 0 and bool(equal[site.position])

    return same


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
    """The id of an answer word, refused unless it is exactly one known token."""
    return known_token_id(tokenizer, word, "answer word")


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
    refuse_unknown_words(tokenizer, clean, c["input_ids"], c["attention_mask"])
    refuse_unknown_words(tokenizer, corrupted, x["input_ids"], x["attention_mask"])
    return c["input_ids"], x["input_ids"], c["attention_mask"]

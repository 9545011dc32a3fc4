"""Sequence capture: one row per real token (or per chosen position) at named modules or aliases.

Inputs are texts (tokenised with right padding) or token ids with an attention mask. Hooks
keep the batch's tensors at the targets (see :mod:`napkit.lm.targets` for names and the
tuple rule); rows are gathered at the wanted (sequence, position) pairs, so memory is
bounded by the batch. Every batch keeps the inputs' padded width (kernels may round a
narrower batch differently), so rows equal those of one forward pass over all inputs,
bit for bit. With ``stop_after`` the forward pass ends as soon as every target
has been read (after the first batch, which runs whole to catch a module that runs twice
per forward pass). :func:`capture_to_store` streams the rows into an
:class:`~napkit.capture.ActivationStore` with the next token as label.

Positions count the tokenizer's special tokens (the tiny model's ``<bos>`` is position 0);
negative positions count back from each sequence's last real token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.models import LanguageModel, load
from napkit.lm.targets import Target, resolve
from napkit.progress import progress_bar

Positions = int | Sequence[int] | Sequence[Sequence[int]] | None


class _Stop(Exception):
    """Raised inside the forward pass once every target has been read."""


@dataclass
class CaptureBatch:
    """Rows ``start:start+n``: activations per target and each row's (sequence, position)."""

    start: int
    acts: dict[str, np.ndarray]
    sequence: np.ndarray
    position: np.ndarray
    token: np.ndarray
    next_token: np.ndarray  # -1 at a sequence's last real token
    prediction: np.ndarray  # argmax next token; -1 when the forward pass stopped early


def encode(lm: LanguageModel, inputs) -> dict[str, torch.Tensor]:
    """Token ids and a right-padded attention mask from texts or from an encoding."""
    if isinstance(inputs, str):
        inputs = [inputs]
    if isinstance(inputs, list | tuple) and all(isinstance(t, str) for t in inputs):
        tok = lm.tokenizer
        if tok is None:
            raise NapkitError("this model has no tokenizer; pass input_ids and attention_mask")
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        enc = tok(list(inputs), return_tensors="pt", padding=True, padding_side="right")
        ids, mask = enc["input_ids"], enc["attention_mask"]
    else:
        try:
            ids = torch.as_tensor(inputs["input_ids"])
            mask = torch.as_tensor(inputs.get("attention_mask", torch.ones_like(ids)))
        except (TypeError, KeyError, AttributeError):
            raise NapkitError("inputs must be texts or a mapping with input_ids and attention_mask") from None
    if ids.ndim != 2 or mask.shape != ids.shape:
        raise NapkitError(
            f"input_ids {tuple(ids.shape)} and attention_mask {tuple(mask.shape)} must be 2-D alike"
        )
    mask = mask.long()
    lengths = mask.sum(1)
    if bool((lengths == 0).any()):
        raise NapkitError(f"sequence {int((lengths == 0).nonzero()[0])} has no real token")
    right = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    if not torch.equal(right.long(), mask):
        raise NapkitError("attention masks must be right-padded (ones, then zeros)")
    return {"input_ids": ids.long(), "attention_mask": mask}


def select_positions(positions: Positions, lengths: np.ndarray, width: int) -> list[np.ndarray]:
    """Per sequence, the positions to keep; refuses one outside a sequence or in its padding."""
    n = len(lengths)
    if positions is None:
        return [np.arange(k) for k in lengths]
    if isinstance(positions, int | np.integer):
        per = [[int(positions)]] * n
    elif len(positions) > 0 and all(isinstance(p, int | np.integer) for p in positions):
        per = [list(positions)] * n
    else:
        if len(positions) != n:
            raise NapkitError(f"positions list one entry per sequence: {len(positions)} for {n} sequences")
        per = [[int(p) for p in ([q] if isinstance(q, int | np.integer) else q)] for q in positions]
    out = []
    for s, (wanted, k) in enumerate(zip(per, lengths, strict=True)):
        p = np.asarray(wanted, dtype=np.int64)
        p = np.where(p < 0, p + k, p)
        bad = (p < 0) | (p >= width)
        if bad.any():
            raise NapkitError(f"position {wanted[int(bad.argmax())]} is outside sequence {s} (length {k})")
        pad = p >= k
        if pad.any():
            raise NapkitError(f"position {wanted[int(pad.argmax())]} of sequence {s} is padding (length {k})")
        out.append(p)
    return out


def _as_rows(value, target: Target, b: int, s: int) -> torch.Tensor:
    """(b, s, width) from a read tensor (tuple rule for outputs; patterns flattened over heads)."""
    if target.read == "pattern":
        # HF attention returns (output, weights); a TransformerLens hook point the tensor itself
        pat = value[1] if isinstance(value, tuple | list) and len(value) > 1 else value
        if not torch.is_tensor(pat) or pat.ndim != 4 or pat.shape[0] != b:
            raise NapkitError(f"{target.name}: the attention module returned no pattern")
        # (b, heads, q, k)
        pat = torch.nn.functional.pad(pat, (0, s - pat.shape[-1]))
        return pat.permute(0, 2, 1, 3).reshape(b, pat.shape[2], -1)
    if target.read == "normalized":
        value = _normalized(value, target)
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    if not torch.is_tensor(value) or value.ndim < 2 or tuple(value.shape[:2]) != (b, s):
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise NapkitError(
            f"ambiguous output at {target.name} ({target.module_name}): element 0 is {shape}, "
            f"not a (batch {b}, seq {s}, ...) tensor; name a submodule instead"
        )
    return value.reshape(b, s, -1)


def _normalized(x, target: Target) -> torch.Tensor:
    """A norm module's input normalised without its weight and bias (TL's ``hook_normalized``)."""
    mod = target.module
    eps = getattr(mod, "eps", None)
    eps = getattr(mod, "variance_epsilon", None) if eps is None else eps
    if not torch.is_tensor(x) or eps is None:
        raise NapkitError(f"{target.name}: {target.module_name} is not a LayerNorm or RMSNorm")
    x = x.float()
    if isinstance(mod, torch.nn.LayerNorm):
        x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()


@contextmanager
def hooks_on(targets: list[Target], sink: dict, stop: bool):
    """Hooks that put each target's (b, s, w) tensor into ``sink``; removed on exit, always."""
    calls: dict[str, int] = {}
    handles = []

    def store(t: Target, value, shape):
        calls[t.module_name + t.read] = calls.get(t.module_name + t.read, 0) + 1
        if calls[t.module_name + t.read] > 1:
            raise NapkitError(
                f"module {t.module_name} runs more than once in one forward pass; capture {t.name} elsewhere"
            )
        sink[t.name] = _as_rows(value, t, *shape)
        if stop and len(sink) == len(targets) + 1:  # the targets and "__shape__"
            raise _Stop

    for t in targets:
        if t.read in ("input", "normalized"):

            def pre(mod, args, kwargs, t=t):
                x = args[0] if args else kwargs.get("hidden_states")
                store(t, x, sink["__shape__"])

            handles.append(t.module.register_forward_pre_hook(pre, with_kwargs=True))
        else:

            def post(mod, args, output, t=t):
                store(t, output, sink["__shape__"])

            handles.append(t.module.register_forward_hook(post))
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


@contextmanager
def _eager_attention(model, needed: bool):
    """Eager attention while patterns are read (fused kernels return no weights)."""
    cfg = getattr(model, "config", None)
    before = getattr(cfg, "_attn_implementation", None)
    if not needed or before in (None, "eager"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def iter_capture(
    lm,
    inputs,
    targets: Sequence[str],
    positions: Positions = None,
    batch_size: int = 64,
    stop_after: bool = True,
    progress: bool = False,
) -> Iterator[CaptureBatch]:
    """Yield rows batch by batch; see the module docstring for names, positions and rules."""
    lm = load(lm)
    if not targets:
        raise NapkitError("name at least one module or alias to capture")
    resolved = [resolve(lm.model, name, lm.kind) for name in targets]
    enc = encode(lm, inputs)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    lengths = mask.sum(1).numpy()
    keep = select_positions(positions, lengths, ids.shape[1])
    pattern = any(t.read == "pattern" for t in resolved)
    start = 0
    with torch.no_grad(), _eager_attention(lm.model, pattern):
        with progress_bar(len(ids), "capturing", enabled=progress) as advance:
            for lo in range(0, len(ids), batch_size):
                hi = min(lo + batch_size, len(ids))
                width = ids.shape[1]  # one padded width for all: rows bitwise as in one big forward
                b_ids, b_mask = ids[lo:hi, :width], mask[lo:hi, :width]
                sink: dict = {"__shape__": (hi - lo, width)}
                logits = None
                # the first batch runs to the end, so a module that runs twice is caught
                with hooks_on(resolved, sink, stop_after and lo > 0):
                    try:
                        logits = _forward(lm, b_ids, b_mask)
                    except _Stop:
                        pass
                missing = [t.name for t in resolved if t.name not in sink]
                if missing:
                    raise NapkitError(f"targets never ran in the forward pass: {', '.join(missing)}")
                seq = np.concatenate([np.full(len(keep[i]), i) for i in range(lo, hi)])
                pos = np.concatenate(keep[lo:hi])
                si, pi = torch.from_numpy(seq - lo), torch.from_numpy(pos)
                acts = {t.name: sink[t.name][si, pi].float().numpy() for t in resolved}
                nxt = np.where(
                    pos + 1 < lengths[seq], b_ids[si, torch.from_numpy(np.minimum(pos + 1, width - 1))], -1
                )
                pred = _predictions(logits, si, pi) if logits is not None else np.full(len(seq), -1)
                yield CaptureBatch(start, acts, seq, pos, b_ids[si, pi].numpy(), nxt.astype(np.int64), pred)
                start += len(seq)
                advance(hi - lo)


def _predictions(logits: torch.Tensor, si: torch.Tensor, pi: torch.Tensor) -> np.ndarray:
    """The argmax next token at the kept (sequence, position) rows.

    numpy's argmax over the whole batch's logits is about 5x faster than torch's on one CPU
    thread, and arg-maxing before the gather avoids copying vocabulary-wide rows; both
    return the first maximal index. Dtypes numpy lacks (bfloat16) take torch's path.
    """
    if logits.dtype in (torch.float16, torch.float32, torch.float64):
        return logits.numpy().argmax(-1)[si.numpy(), pi.numpy()]
    return logits.argmax(-1)[si, pi].numpy()


def _forward(lm: LanguageModel, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if lm.kind == "tl":
        return lm.model(ids, attention_mask=mask)
    return lm.model(input_ids=ids, attention_mask=mask, use_cache=False).logits


def capture(lm, inputs, targets: Sequence[str], positions: Positions = None, **kw) -> CaptureBatch:
    """All rows in memory at once (for small inputs; stream with :func:`iter_capture`)."""
    parts = list(iter_capture(lm, inputs, targets, positions, **kw))
    return CaptureBatch(
        0,
        {name: np.concatenate([p.acts[name] for p in parts]) for name in parts[0].acts},
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("sequence", "position", "token", "next_token", "prediction")
        ),
    )


def capture_to_store(
    lm,
    inputs,
    targets: Sequence[str],
    path: str | Path,
    positions: Positions = None,
    batch_size: int = 64,
    stop_after: bool = True,
    progress: bool = False,
):
    """Stream rows into a new ActivationStore (labels = next tokens, plus ``sequence``/``position``)."""
    from napkit.capture import ActivationStore

    lm = load(lm)
    enc = encode(lm, inputs)
    lengths = enc["attention_mask"].sum(1).numpy()
    n_total = int(sum(len(p) for p in select_positions(positions, lengths, enc["input_ids"].shape[1])))
    store = None
    for batch in iter_capture(lm, enc, targets, positions, batch_size, stop_after, progress):
        if store is None:
            widths = {name: a.shape[1] for name, a in batch.acts.items()}
            store = ActivationStore.create(
                path, widths, n_total, lm.fingerprint, chunk_rows=max(1, len(batch.sequence))
            )
            for extra in ("sequence", "position"):
                store.group.create_array(
                    extra, shape=(n_total,), chunks=store.group["labels"].chunks, dtype="int64"
                )
        lo, hi = batch.start, batch.start + len(batch.sequence)
        store.group["sequence"][lo:hi] = batch.sequence
        store.group["position"][lo:hi] = batch.position
        store.append(batch.acts, batch.next_token, batch.prediction)
    return store

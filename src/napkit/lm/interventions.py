"""Interventions on a module's activations, as files and as a hook context that always cleans up.

An :class:`Intervention` changes the tensor a target reads (see :mod:`napkit.lm.targets`)
at chosen positions of every forward pass:

- ``add``: ``h + alpha * v`` (``v`` of shape ``(width,)``, or ``(len(positions), width)``
  per-position deltas);
- ``replace``: ``h = v``;
- ``project_out``: ``h - (h · v̂) v̂``;
- ``ablate``: ``h = v`` if a vector is given (mean ablation), else ``h = 0``.

Positions index the sequence axis of each forward call (``None``: all of them, which in
KV-cached generation means the prompt and every new token). ``alpha = 0`` leaves the
forward pass untouched (bitwise). :func:`applied` installs hooks for a list of
interventions, counts how often each fired, removes the hooks however the block ends,
and calls an intervention that never fired an error. The file format is JSON
``napkit.intervention/1`` beside a safetensors vector file; it names the model's
fingerprint, and loading it for another model is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from napkit.errors import NapkitError
from napkit.lm.models import LanguageModel, load
from napkit.lm.targets import Target, resolve
from napkit.staging import replacing

FORMAT = "napkit.intervention/1"
OPS = ("add", "replace", "project_out", "ablate")


@dataclass
class Intervention:
    """What to do to one target's activations; see the module docstring for each op."""

    module: str
    op: str = "add"
    vector: torch.Tensor | None = None
    alpha: float = 1.0
    positions: Sequence[int] | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise NapkitError(f"intervention op must be one of {OPS}, not {self.op!r}")
        if not math.isfinite(float(self.alpha)):
            raise NapkitError(f"alpha must be finite, got {self.alpha}")
        if self.vector is None and self.op != "ablate":
            raise NapkitError(f"a {self.op} intervention needs a vector")
        if self.vector is not None:
            self.vector = torch.as_tensor(self.vector, dtype=torch.float32).detach()
            if not bool(torch.isfinite(self.vector).all()):
                raise NapkitError(f"the vector for {self.module} holds NaN or infinity")
            if self.vector.ndim == 2 and (self.positions is None or len(self.positions) != len(self.vector)):
                raise NapkitError("per-position deltas need one row per listed position")
            if self.op == "project_out" and float(self.vector.norm()) == 0.0:
                raise NapkitError("project_out needs a non-zero vector")

    def check_width(self, width: int) -> None:
        if self.vector is not None and self.vector.shape[-1] != width:
            raise NapkitError(
                f"vector width {self.vector.shape[-1]} does not match {self.module} (width {width})"
            )

    def apply(self, h: torch.Tensor) -> torch.Tensor | None:
        """The changed tensor (b, s, w), or None to leave the forward pass untouched."""
        if self.op == "add" and self.alpha == 0:
            return None
        self.check_width(h.shape[-1])
        idx = slice(None) if self.positions is None else _positions(self.positions, h.shape[1])
        if idx is None:  # none of the positions exist in this call (e.g. one cached token)
            return None
        h = h.clone()
        v = None if self.vector is None else self.vector.to(h.dtype)
        if self.op == "add":
            h[:, idx] += self.alpha * v
        elif self.op == "replace" or (self.op == "ablate" and v is not None):
            h[:, idx] = v
        elif self.op == "ablate":
            h[:, idx] = 0
        else:
            u = v / v.norm()
            part = h[:, idx]
            h[:, idx] = part - (part @ u)[..., None] * u
        return h

    # ---- files ----------------------------------------------------------------------------
    def save(self, path: str | Path, lm) -> Path:
        """Write ``path`` (JSON) and its vector file beside it; both replaced atomically."""
        from safetensors.torch import save_file

        lm = load(lm)
        path = Path(path)
        vec_name = None
        if self.vector is not None:
            vec_name = path.with_suffix(".safetensors").name
            if vec_name == path.name:
                raise NapkitError(f"{path}: give the intervention a .json name; its vector goes beside it")
            with replacing(path.with_name(vec_name)) as tmp:
                save_file({"vector": self.vector.contiguous()}, str(tmp))
        doc = {
            "format": FORMAT,
            "module": self.module,
            "op": self.op,
            "alpha": float(self.alpha),
            "positions": None if self.positions is None else [int(p) for p in self.positions],
            "vector": vec_name,
            "model_fingerprint": lm.fingerprint,
        }
        with replacing(path) as tmp:
            tmp.write_text(json.dumps(doc, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, lm) -> Intervention:
        """Read an intervention file, refusing one made for another model or of the wrong width."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        lm = load(lm)
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NapkitError(f"cannot read intervention {path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise NapkitError(f"{path} is not a {FORMAT} file")
        if doc.get("model_fingerprint") != lm.fingerprint:
            raise NapkitError(f"{path} was made for another model (fingerprint differs)")
        missing = [k for k in ("module", "op") if k not in doc]
        if missing:
            raise NapkitError(f"{path} lacks {', '.join(missing)}")
        vec = None
        if doc.get("vector"):
            vec_path = path.with_name(doc["vector"])
            try:
                vec = load_file(str(vec_path))["vector"]
            except (OSError, KeyError, SafetensorError) as exc:
                raise NapkitError(f"cannot read the vector {vec_path} of {path}: {exc}") from None
        iv = cls(doc["module"], doc["op"], vec, doc.get("alpha", 1.0), doc.get("positions"))
        iv.check_width(target_width(lm, iv.module))
        return iv


def _positions(positions: Sequence[int], s: int):
    idx = [p + s if p < 0 else p for p in positions]
    if any(p < 0 or p >= s for p in idx):
        if s == 1:
            return None
        raise NapkitError(f"intervention positions {list(positions)} are outside a sequence of length {s}")
    return torch.tensor(idx)


def target_width(lm: LanguageModel, name: str) -> int:
    """The width of a target's rows, from one forward pass on a single token."""
    from napkit.lm.capture import capture

    ids = torch.tensor([[lm.tokenizer.bos_token_id or 0]]) if lm.tokenizer is not None else torch.zeros(1, 1)
    got = capture(lm, {"input_ids": ids.long(), "attention_mask": torch.ones_like(ids)}, [name])
    return got.acts[name].shape[1]


@contextmanager
def applied(
    lm, interventions: Sequence[Intervention], require_fired: bool = True
) -> Iterator[dict[int, int]]:
    """Hooks for the interventions while the block runs; yields firing counts per index.

    The hooks are removed on exit, also after an exception. With ``require_fired`` an
    intervention that never fired raises :class:`NapkitError` at exit.
    """
    lm = load(lm)
    counts = {i: 0 for i in range(len(interventions))}
    handles = []
    try:
        for i, iv in enumerate(interventions):
            t = resolve(lm.model, iv.module, lm.kind)
            handles.extend(_hooks(t, iv, counts, i))
        yield counts
    finally:
        for h in handles:
            h.remove()
    never = [interventions[i].module for i, c in counts.items() if c == 0]
    if require_fired and never:
        raise NapkitError(
            f"intervention at {', '.join(never)} never fired (is the module on the forward path?)"
        )


def _hooks(t: Target, iv: Intervention, counts: dict[int, int], i: int) -> list:
    """The hook handles that apply ``iv`` at ``t`` (two when a carrier passes the change on)."""
    if t.read in ("pattern", "normalized"):
        what = "attention patterns" if t.read == "pattern" else "a norm's normalised input"
        raise NapkitError(f"{t.name}: interventions on {what} are not supported; name the module instead")

    if t.read == "input":
        pending: list[torch.Tensor] = []  # this pass's change at the input, for the carrier

        def changed_input(old):
            pending.clear()  # a change left by a pass that stopped early is not this pass's
            new = _changed(iv, old, t)
            if t.carrier is not None and new is not None:
                pending.append(new - old)
            return new

        def pre(mod, args, kwargs):
            counts[i] += 1
            if args:
                new = changed_input(args[0])
                return None if new is None else ((new, *args[1:]), kwargs)
            new = changed_input(kwargs["hidden_states"])
            return None if new is None else (args, {**kwargs, "hidden_states": new})

        handles = [t.module.register_forward_pre_hook(pre, with_kwargs=True)]
        if t.carrier is not None:

            def carry(mod, args, output):
                if not pending:
                    return None
                delta = pending.pop()
                if isinstance(output, tuple | list):
                    return type(output)((output[0] + delta, *output[1:]))
                return output + delta

            # first among the carrier's hooks: captures and interventions there see its output
            # with the change, whatever the order they were registered in
            handles.append(t.carrier.register_forward_hook(carry, prepend=True))
        return handles

    def post(mod, args, output):
        counts[i] += 1
        if isinstance(output, tuple | list):
            new = _changed(iv, output[0], t)
            return None if new is None else type(output)((new, *output[1:]))
        return _changed(iv, output, t)

    return [t.module.register_forward_hook(post)]


def _changed(iv: Intervention, h: torch.Tensor, t: Target) -> torch.Tensor | None:
    if not torch.is_tensor(h) or h.ndim < 3:
        raise NapkitError(f"{t.name}: cannot intervene on a {type(h).__name__} of this shape")
    if h.ndim == 3:
        return iv.apply(h)
    shape = h.shape  # e.g. (b, s, heads, d_head): intervene on the flattened rows
    new = iv.apply(h.reshape(shape[0], shape[1], -1))
    return None if new is None else new.reshape(shape)

"""What a verification query asks: an input box, an output violation, optional phases.

A query is "does some x in the box, following the phases (closed: active z >= 0,
inactive z <= 0), reach the violation region of the outputs?". The violation region is a
disjunction of polytopes ``C y <= d`` (VNN-LIB's form); robustness of label c is the
disjunction over j != c of ``y_c - y_j <= 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napkit.arrays import real_numbers
from napkit.errors import NapkitError

Phases = list[np.ndarray]


def real_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array; strings, objects and complex numbers are refused by name."""
    return real_numbers(x, name).astype(np.float64)


def whole_number(x, name: str) -> int:
    """``x`` as an int when it is a whole number (3, 3.0, np.int64(3), a 0-d array or tensor);
    else a NapkitError."""
    if not isinstance(x, bool) and hasattr(x, "item") and np.ndim(x) == 0:  # 0-d array or tensor
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, int | np.integer | float | np.floating):
        raise NapkitError(f"{name} must be a whole number, got {x!r}")
    if not float(x).is_integer():
        raise NapkitError(f"{name} must be a whole number, got {x!r}")
    return int(x)


@dataclass(frozen=True)
class InputBox:
    """Axis-aligned input region ``lower <= x <= upper`` (flat float64 vectors)."""

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lo = real_array(self.lower, "the box's lower bound").reshape(-1).copy()
        hi = real_array(self.upper, "the box's upper bound").reshape(-1).copy()
        if lo.shape != hi.shape or lo.size == 0:
            raise NapkitError(f"box bounds of sizes {lo.size} and {hi.size} do not match")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise NapkitError("box bounds must be finite numbers")
        if (lo > hi).any():
            i = int(np.argmax(lo > hi))
            raise NapkitError(f"empty input box: lower {lo[i]} > upper {hi[i]} at input {i}")
        lo.flags.writeable = False
        hi.flags.writeable = False
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def n(self) -> int:
        return int(self.lower.size)

    @property
    def center(self) -> np.ndarray:
        return (self.lower + self.upper) / 2

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Boolean per row of ``x`` (n, inputs): inside the closed box, exactly."""
        x = np.atleast_2d(x)
        if x.shape[-1] != self.n:
            raise NapkitError(f"points of {x.shape[-1]} inputs do not fit a box of {self.n} inputs")
        return ((x >= self.lower) & (x <= self.upper)).all(axis=1)

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lower, self.upper)


def domain_box(n_inputs: int, lo: float = 0.0, hi: float = 1.0) -> InputBox:
    """The whole input domain ``[lo, hi]^n``."""
    n = whole_number(n_inputs, "the number of inputs")
    if n < 1:
        raise NapkitError(f"the number of inputs must be at least 1, got {n_inputs}")
    return InputBox(np.full(n, real_array(lo, "lo")), np.full(n, real_array(hi, "hi")))


def linf_ball(x0: np.ndarray, eps: float, lo: float = 0.0, hi: float = 1.0) -> InputBox:
    """The L-infinity ball of radius ``eps`` around ``x0``, clipped to ``[lo, hi]``."""
    x0 = real_array(x0, "the centre point").reshape(-1)
    eps = real_array(eps, "the radius eps")
    if eps.ndim or not eps >= 0:
        raise NapkitError(f"the radius eps must be >= 0, got {eps}")
    if (x0 < lo).any() or (x0 > hi).any():
        raise NapkitError(f"the centre point lies outside the domain [{lo}, {hi}]")
    return InputBox(np.clip(x0 - eps, lo, hi), np.clip(x0 + eps, lo, hi))


@dataclass(frozen=True)
class OutputSpec:
    """Violation region: the union over k of ``{y : C_k y <= d_k}``.

    ``label`` is set when the spec is robustness of that label (then disjunct k is the
    competitor ``competitors[k]``).
    """

    disjuncts: tuple[tuple[np.ndarray, np.ndarray], ...]
    n_outputs: int
    label: int | None = None

    def __post_init__(self) -> None:
        out = []
        for c, d in self.disjuncts:
            c = np.atleast_2d(real_array(c, "an output constraint's matrix"))
            d = real_array(d, "an output constraint's bound").reshape(-1)
            if c.ndim != 2 or c.shape[1] != self.n_outputs or c.shape[0] != d.size:
                raise NapkitError(
                    f"output constraint of shape {c.shape} does not fit {self.n_outputs} outputs"
                )
            if not (np.isfinite(c).all() and np.isfinite(d).all()):
                raise NapkitError("output constraints must be finite numbers (no NaN or infinity)")
            out.append((c, d))
        if not out:
            raise NapkitError("an output specification needs at least one disjunct")
        if self.label is not None and not 0 <= whole_number(self.label, "label") < self.n_outputs:
            raise NapkitError(f"label {self.label} is not one of the {self.n_outputs} outputs")
        object.__setattr__(self, "disjuncts", tuple(out))

    @property
    def competitors(self) -> list[int]:
        if self.label is None:
            return []
        return [j for j in range(self.n_outputs) if j != self.label]

    def slack(self, y: np.ndarray) -> np.ndarray:
        """(n, disjuncts): max_i (C y - d)_i per disjunct; <= 0 means that disjunct holds."""
        y = np.atleast_2d(y)
        return np.stack([(y @ c.T - d).max(axis=1) for c, d in self.disjuncts], axis=1)

    def violated(self, y: np.ndarray, strict: bool = False) -> np.ndarray:
        s = self.slack(y).min(axis=1)
        return s < 0 if strict else s <= 0


def robustness_spec(label: int, n_outputs: int) -> OutputSpec:
    """Violation of "y_label > y_j for all j != label": some y_j >= y_label."""
    label = whole_number(label, "label")
    n_outputs = whole_number(n_outputs, "the number of outputs")
    if not 0 <= label < n_outputs:
        raise NapkitError(f"label {label} is not one of the {n_outputs} outputs")
    dis = []
    for j in range(n_outputs):
        if j != label:
            c = np.zeros((1, n_outputs))
            c[0, label], c[0, j] = 1.0, -1.0
            dis.append((c, np.zeros(1)))
    return OutputSpec(tuple(dis), n_outputs, int(label))


def check_phases(layer_sizes: Sequence[int], phases: Sequence | None) -> Phases | None:
    """Validate phases (+1 active, -1 inactive, 0 free per hidden unit); None if all free."""
    if phases is None:
        return None
    if isinstance(phases, np.ndarray) and phases.ndim == 2:  # one row per layer (equal widths)
        phases = list(phases)
    if isinstance(phases, str | bytes | np.ndarray) or not isinstance(phases, Sequence):
        raise NapkitError(
            f"phases must be a list of one array per hidden layer, not {type(phases).__name__}"
        )
    if len(phases) != len(layer_sizes):
        raise NapkitError(
            f"phases give {len(phases)} layers but the network has {len(layer_sizes)} hidden layers"
        )
    out = []
    for k, (p, n) in enumerate(zip(phases, layer_sizes, strict=True)):
        a = real_array(p, f"phases of layer {k}").reshape(-1)
        if a.size != n:
            raise NapkitError(f"phases of layer {k} have {a.size} units, the layer has {n}")
        if not np.isin(a, (-1, 0, 1)).all():
            raise NapkitError(f"phases of layer {k} must be -1, 0 or +1")
        out.append(a.astype(np.int8))
    return out if any((a != 0).any() for a in out) else None


def merge_phases(pi: Phases, pj: Phases) -> tuple[Phases, bool]:
    """Both sets of constraints at once; the flag says they conflict on some neuron."""
    if len(pi) != len(pj) or any(np.shape(a) != np.shape(b) for a, b in zip(pi, pj, strict=False)):
        raise NapkitError(
            f"phases to merge cover different layers: {[np.shape(a) for a in pi]} "
            f"and {[np.shape(b) for b in pj]}"
        )
    merged, conflict = [], False
    for a, b in zip(pi, pj, strict=True):
        conflict |= bool(((a * b) < 0).any())
        merged.append(np.where(a != 0, a, b).astype(np.int8))
    return merged, conflict


def follows_phases(pre: Sequence[np.ndarray], phases: Phases | None, strict: bool = False) -> np.ndarray:
    """Per input: does it follow the phases? closed (z >= 0 / z <= 0) or strict (> 0 / <= 0).

    ``strict`` is the paper's definition (active iff z > 0); closed is what proofs use.
    """
    n = pre[0].shape[0] if len(pre) else 0
    ok = np.ones(n, dtype=bool)
    if phases is None:
        return ok
    if len(pre) != len(phases) or any(
        np.ndim(z) != 2 or np.shape(z)[1] != np.size(p) for z, p in zip(pre, phases, strict=False)
    ):
        raise NapkitError(
            f"pre-activations of widths {[np.shape(z)[1:] for z in pre]} do not fit phases of sizes "
            f"{[np.size(p) for p in phases]}"
        )
    for z, p in zip(pre, phases, strict=True):
        act, ina = p > 0, p < 0
        if strict:
            ok &= (z[:, act] > 0).all(axis=1) & (z[:, ina] <= 0).all(axis=1)
        else:
            ok &= (z[:, act] >= 0).all(axis=1) & (z[:, ina] <= 0).all(axis=1)
    return ok


def first_follower(net, phases: Phases | None, x: np.ndarray, box: InputBox | None = None,
                   batch: int = 4096) -> np.ndarray | None:
    """The first row of ``x`` (inside ``box``) that follows ``phases`` strictly, or None.

    Data that a NAP was mined from is the cheapest proof that the NAP's region is not
    empty: pass the result as ``witness`` to ``verify_property`` (it is re-checked there).
    """
    x = net.flatten_inputs(x)
    phases = check_phases(net.layer_sizes, phases)
    if whole_number(batch, "batch") < 1:
        raise NapkitError(f"batch must be at least 1, got {batch}")
    if box is not None and box.n != net.n_inputs:
        raise NapkitError(f"the input box has {box.n} inputs, the network {net.n_inputs}")
    for start in range(0, len(x), batch):
        part = x[start:start + batch]
        _, pre = net.forward(part)
        ok = follows_phases(pre, phases, strict=True)
        if box is not None:
            ok &= box.contains(part)
        if ok.any():
            return part[int(np.argmax(ok))].copy()
    return None


@dataclass(frozen=True)
class Property:
    """One query: some x in ``box`` following ``phases`` with outputs in ``output``'s region."""

    box: InputBox
    output: OutputSpec
    phases: Phases | None = None

    def check(self, layer_sizes: Sequence[int], n_inputs: int, n_outputs: int) -> Property:
        if not isinstance(self.box, InputBox):
            raise NapkitError(f"a property's box must be an InputBox, not {type(self.box).__name__}")
        if not isinstance(self.output, OutputSpec):
            raise NapkitError(
                f"a property's output must be an OutputSpec, not {type(self.output).__name__}"
            )
        if self.box.n != n_inputs:
            raise NapkitError(f"the input box has {self.box.n} inputs, the network {n_inputs}")
        if self.output.n_outputs != n_outputs:
            raise NapkitError(
                f"the output spec has {self.output.n_outputs} outputs, the network {n_outputs}"
            )
        return Property(self.box, self.output, check_phases(layer_sizes, self.phases))

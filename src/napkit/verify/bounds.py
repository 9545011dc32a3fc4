"""Phase-aware bound propagation: interval, then symbolic (CROWN/DeepPoly-style) bounds.

For every hidden layer the pre-activation bounds are computed, then the phases applied
(fixed active: lower raised to 0; fixed inactive: upper lowered to 0) before the next
layer is bounded, so the phases shrink everything after them. An empty interval proves
that no input of the box follows the phases (vacuous region).

Symbolic bounds back-substitute a linear function of a layer through the ReLU
relaxations of the layers before it down to the input box. The bounds hold for every x
of the box that follows the phases (a phase-fixed neuron is exactly linear there). Float64
round-off is covered by padding every bound by a relative ``BOUND_PAD`` (``tolerances.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.properties import InputBox, OutputSpec, Phases, check_phases, whole_number
from napkit.verify.tolerances import BOUND_PAD


def _pad(v: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    return BOUND_PAD * (1.0 + np.abs(v) + scale)


@dataclass
class Bounds:
    """Per hidden layer: pre-activation (lower, upper) with the phases applied."""

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    box: InputBox
    phases: Phases | None
    vacuous: bool = False
    reason: str = ""
    relax: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def active(self) -> list[np.ndarray]:
        """Neurons whose pre-activation is >= 0 on the whole region (relu is the identity)."""
        return [lo >= 0 for lo in self.lower]

    @property
    def inactive(self) -> list[np.ndarray]:
        return [~(lo >= 0) & (up <= 0) for lo, up in zip(self.lower, self.upper, strict=True)]

    @property
    def unstable(self) -> list[np.ndarray]:
        return [(lo < 0) & (up > 0) for lo, up in zip(self.lower, self.upper, strict=True)]

    @property
    def n_unstable(self) -> int:
        return int(sum(int(m.sum()) for m in self.unstable))


def apply_phases(lo: np.ndarray, up: np.ndarray, p: np.ndarray | None) -> None:
    """In place: active phase raises lower to 0, inactive phase lowers upper to 0."""
    if p is None:
        return
    lo[p > 0] = np.maximum(lo[p > 0], 0.0)
    up[p < 0] = np.minimum(up[p < 0], 0.0)


def relaxation(lo: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear ReLU relaxation: ``sl z <= relu(z) <= su z + tu`` on ``[lo, up]``."""
    act = lo >= 0
    unst = (lo < 0) & (up > 0)
    sl = act.astype(np.float64)
    su = act.astype(np.float64)
    tu = np.zeros_like(lo)
    if unst.any():
        lu, uu = lo[unst], up[unst]
        s = uu / (uu - lu)
        su[unst] = s
        tu[unst] = -lu * s
        sl[unst] = (uu > -lu).astype(np.float64)  # CROWN's adaptive lower slope
    return sl, su, tu


def backsub_lower(
    net: ReluNetwork,
    relax: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    k: int,
    a: np.ndarray,
    a0: np.ndarray,
    box: InputBox,
) -> np.ndarray:
    """Lower bound of ``a @ z_k + a0`` over the box (layer ``k``; k = n_hidden means logits)."""
    const = a0 + a @ net.biases[k]
    a = a @ net.weights[k]
    scale = np.abs(const)
    for j in range(k - 1, -1, -1):
        sl, su, tu = relax[j]
        ap, an = np.maximum(a, 0.0), np.minimum(a, 0.0)
        const = const + an @ tu
        a = ap * sl + an * su
        const = const + a @ net.biases[j]
        scale = scale + np.abs(const)
        a = a @ net.weights[j]
    val = const + np.maximum(a, 0.0) @ box.lower + np.minimum(a, 0.0) @ box.upper
    mag = np.abs(a) @ np.maximum(np.abs(box.lower), np.abs(box.upper))
    return val - _pad(val, scale + mag)


def propagate(
    net: ReluNetwork, box: InputBox, phases: Phases | None = None, symbolic: bool = True
) -> Bounds:
    """Pre-activation bounds of every hidden layer over ``box`` restricted to ``phases``."""
    _check_box(net, box)
    check_phases(net.layer_sizes, phases)  # refuses, never rewrites: the phases go on as given
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []
    relax: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    out = Bounds(lowers, uppers, box, phases, relax=relax)
    al, au = box.lower, box.upper
    for k in range(len(net.layer_sizes)):
        w, b = net.weights[k], net.biases[k]
        wp, wn = np.maximum(w, 0.0), np.minimum(w, 0.0)
        lo = wp @ al + wn @ au + b
        up = wp @ au + wn @ al + b
        mag = np.abs(w) @ np.maximum(np.abs(al), np.abs(au)) + np.abs(b)
        lo, up = lo - _pad(lo, mag), up + _pad(up, mag)
        if symbolic and k > 0:
            n = w.shape[0]
            eye = np.eye(n)
            both = backsub_lower(net, relax, k, np.vstack([eye, -eye]), np.zeros(2 * n), box)
            lo = np.maximum(lo, both[:n])
            up = np.minimum(up, -both[n:])
        if not (np.isfinite(lo).all() and np.isfinite(up).all()):
            # NaN compares false both ways and would pass for a stable neuron: never go on
            raise NapkitError(
                f"bound propagation overflowed float64 in layer {net.layer_names[k]!r}: the weights "
                "or the input region are too large to verify soundly"
            )
        apply_phases(lo, up, None if phases is None else phases[k])
        lowers.append(lo)
        uppers.append(up)
        if (lo > up).any():
            i = int(np.argmax(lo > up))
            out.vacuous = True
            out.reason = (
                f"bounds show neuron ({net.layer_names[k]}, {i}) cannot take its fixed phase"
            )
            return out
        relax.append(relaxation(lo, up))
        al, au = np.maximum(lo, 0.0), np.maximum(up, 0.0)
    return out


def output_lower(
    net: ReluNetwork, bounds: Bounds, g: np.ndarray, g0: np.ndarray | None = None
) -> np.ndarray:
    """Sound lower bounds of ``g @ y + g0`` (rows of ``g``) over the region of ``bounds``."""
    check_bounds_of(net, bounds)
    g = np.atleast_2d(np.asarray(g, dtype=np.float64))
    g0 = np.zeros(g.shape[0]) if g0 is None else np.asarray(g0, dtype=np.float64).reshape(-1)
    if g.ndim != 2 or g.shape[1] != net.n_outputs or g0.shape != (g.shape[0],):
        raise NapkitError(
            f"output rows of shape {g.shape} (offsets {g0.shape}) do not fit {net.n_outputs} outputs"
        )
    if not (np.isfinite(g).all() and np.isfinite(g0).all()):
        raise NapkitError("output rows contain NaN or infinity")
    if bounds.vacuous:
        return np.full(g.shape[0], np.inf)
    return backsub_lower(net, bounds.relax, len(net.layer_sizes), g, g0, bounds.box)


def spec_lower(net: ReluNetwork, bounds: Bounds, spec: OutputSpec) -> list[np.ndarray]:
    """Per disjunct, lower bounds of ``C y - d``; a positive entry refutes the disjunct."""
    return [output_lower(net, bounds, c, -d) for c, d in spec.disjuncts]


def margin_lower(net: ReluNetwork, bounds: Bounds, label: int) -> np.ndarray:
    """Lower bounds of ``y_label - y_j`` for every j (``inf`` at j = label)."""
    n = net.n_outputs
    label = whole_number(label, "label")
    if not 0 <= label < n:
        raise NapkitError(f"label {label} is not one of the {n} outputs")
    g = -np.eye(n)
    g[:, label] += 1.0
    out = output_lower(net, bounds, g)
    out[label] = np.inf
    return out


def _check_box(net: ReluNetwork, box: InputBox) -> None:
    if not isinstance(box, InputBox):
        raise NapkitError(f"the region must be an InputBox, not {type(box).__name__}")
    if box.n != net.n_inputs:
        raise NapkitError(f"the input box has {box.n} inputs, the network {net.n_inputs}")


def check_bounds_of(net: ReluNetwork, bounds: Bounds) -> None:
    """``bounds`` must come from ``propagate`` on this network (same box width, layer sizes)."""
    if not isinstance(bounds, Bounds):
        raise NapkitError(f"bounds must come from propagate(), not {type(bounds).__name__}")
    _check_box(net, bounds.box)
    sizes = tuple(int(np.size(lo)) for lo in bounds.lower)
    if sizes != net.layer_sizes[: len(sizes)] or (not bounds.vacuous and len(sizes) != len(net.layer_sizes)):
        raise NapkitError(
            f"these bounds cover layers of sizes {list(sizes)}, the network has {list(net.layer_sizes)}"
        )

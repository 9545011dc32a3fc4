"""Falsification: projected gradient descent in the box, with the phases as a penalty.

Restarts (the box centre, given starting points and uniform random points) are split
among the disjuncts of the violation. Each step moves by the sign of the gradient of
``violation + lam * phase_penalty`` and projects back onto the box. Every iterate is
checked in float64; a candidate counts only after the exact ``ReluNetwork.forward``
confirms it follows the phases (closed) and reaches the violation region (closed).
Points that also follow strictly and violate strictly are preferred.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.properties import (
    InputBox,
    OutputSpec,
    Phases,
    check_phases,
    follows_phases,
    real_array,
    whole_number,
)


@dataclass
class Counterexample:
    x: np.ndarray
    logits: np.ndarray
    strict: bool  # follows the phases strictly (active z > 0) and violates strictly


def check_point(
    net: ReluNetwork, box: InputBox, spec: OutputSpec | None, phases: Phases | None, x: np.ndarray
) -> Counterexample | None:
    """Exact float64 re-check of one candidate; None when it is not a counterexample."""
    _check_region(net, box, spec)
    x = real_array(x, "the candidate point").reshape(1, -1)
    if x.shape[1] != net.n_inputs:
        raise NapkitError(f"a candidate of {x.shape[1]} inputs does not fit a network of {net.n_inputs}")
    if not box.contains(x)[0]:
        return None
    y, pre = net.forward(x)
    if not follows_phases(pre, phases)[0]:
        return None
    if spec is not None and not spec.violated(y)[0]:
        return None
    strict = bool(follows_phases(pre, phases, strict=True)[0])
    if spec is not None:
        strict &= bool(spec.violated(y, strict=True)[0])
    return Counterexample(x[0].copy(), y[0].copy(), strict)


def _first_hits(net, box, spec, phases, xs: np.ndarray) -> list[Counterexample]:
    y, pre = net.forward(xs)
    ok = follows_phases(pre, phases) & box.contains(xs)
    if spec is not None:
        ok &= spec.violated(y)
    return [c for i in np.flatnonzero(ok)[:8] if (c := check_point(net, box, spec, phases, xs[i]))]


def pgd_attack(
    net: ReluNetwork,
    box: InputBox,
    spec: OutputSpec | None,
    phases: Phases | None = None,
    restarts: int = 32,
    steps: int = 150,
    starts: np.ndarray | None = None,
    deadline: float | None = None,
    seed: int = 0,
    keep: list | None = None,
) -> Counterexample | None:
    """Search a counterexample; with ``spec=None`` any point following the phases.

    ``keep``: a list that receives the last iterates, best (lowest loss) first, when no
    counterexample is found (starting points for ``patternlp``).
    """
    import torch

    from napkit.verify.threads import torch_pinned

    torch_pinned()
    _check_region(net, box, spec)
    for name, v in (("restarts", restarts), ("steps", steps)):
        if whole_number(v, name) < 0:
            raise NapkitError(f"{name} must be >= 0, got {v}")
    check_phases(net.layer_sizes, phases)  # refuses, never rewrites
    if starts is not None:
        starts = real_array(starts, "starts")
        if starts.ndim > 2 or np.atleast_2d(starts).shape[1] != net.n_inputs:
            raise NapkitError(f"starts of shape {starts.shape} do not fit a network of {net.n_inputs} inputs")
        if not np.isfinite(starts).all():
            raise NapkitError("starts contain NaN or infinity")

    rng = np.random.default_rng(seed)
    lo, hi = box.lower, box.upper
    pts = [box.center[None]]
    if starts is not None:
        pts.append(box.clip(np.atleast_2d(starts)))
    pts.append(lo + (hi - lo) * rng.random((restarts, box.n)))
    x0 = np.vstack(pts)
    best = None
    hits = _first_hits(net, box, spec, phases, x0)
    for c in hits:
        if c.strict:
            return c
        best = best or c
    ws = [torch.from_numpy(w) for w in net.weights]
    bs = [torch.from_numpy(b) for b in net.biases]
    tlo, thi = torch.tensor(lo), torch.tensor(hi)
    width = tlo.new_tensor(hi - lo)
    n_dis = len(spec.disjuncts) if spec is not None else 1
    target = torch.arange(x0.shape[0]) % n_dis
    cs = [torch.from_numpy(c) for c, _ in spec.disjuncts] if spec is not None else []
    ds = [torch.from_numpy(d) for _, d in spec.disjuncts] if spec is not None else []
    masks = [
        (torch.from_numpy(p > 0), torch.from_numpy(p < 0)) for p in phases
    ] if phases is not None else None
    x = torch.from_numpy(x0.copy()).requires_grad_(True)
    lam = 1.0
    total = None
    for t in range(steps):
        if deadline is not None and time.monotonic() > deadline:
            break
        a, penalty = x, x.new_zeros(x.shape[0])
        for k in range(len(ws) - 1):
            z = a @ ws[k].T + bs[k]
            if masks is not None:
                act, ina = masks[k]
                penalty = penalty + torch.relu(1e-3 - z[:, act]).sum(1)
                penalty = penalty + torch.relu(z[:, ina] + 1e-3).sum(1)
            a = torch.relu(z)
        y = a @ ws[-1].T + bs[-1]
        if spec is not None:
            per = torch.stack(
                [torch.relu(y @ c.T - d + 1e-4).sum(1) for c, d in zip(cs, ds, strict=True)], 1
            )
            own = per.gather(1, target[:, None])[:, 0]
            loss = per.min(1).values if (n_dis > 1 and t % 3 == 2) else own
        else:
            loss = x.new_zeros(x.shape[0])
        total = loss + lam * penalty
        (g,) = torch.autograd.grad(total.sum(), x)
        step = 0.1 * width * (1.0 - t / steps) + 1e-3 * width
        with torch.no_grad():
            x.sub_(step * torch.sign(g))
            x.copy_(torch.maximum(torch.minimum(x, thi), tlo))
        if t % 10 == 9:
            lam *= 1.5
        cand = x.detach().numpy().copy()
        for c in _first_hits(net, box, spec, phases, cand):
            if c.strict:
                return c
            best = best or c
    if keep is not None and best is None:
        xs = x.detach().numpy().copy()
        order = np.argsort(total.detach().numpy()) if total is not None else np.arange(xs.shape[0])
        keep.extend(xs[order])
    return best


def _check_region(net: ReluNetwork, box: InputBox, spec: OutputSpec | None) -> None:
    """The box and the output spec must fit ``net`` (cheap: sizes only)."""
    if not isinstance(box, InputBox):
        raise NapkitError(f"the region must be an InputBox, not {type(box).__name__}")
    if box.n != net.n_inputs:
        raise NapkitError(f"the input box has {box.n} inputs, the network {net.n_inputs}")
    if spec is not None and (not isinstance(spec, OutputSpec) or spec.n_outputs != net.n_outputs):
        raise NapkitError(f"the output spec must be an OutputSpec over the network's {net.n_outputs} outputs")

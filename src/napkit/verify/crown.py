"""The CROWN bounding kernel shared by the root's optimised bounds and branch and bound.

One backward pass bounds ``a @ z_k + const`` from below over a region given per row by
pre-activation intervals and phases (``CrownLayer``). Unstable neurons use the triangle
upper relaxation and ``relu(z) >= alpha z`` with ``alpha`` in [0, 1] (alpha-CROWN); a
phase constraint enters through a multiplier ``beta >= 0`` (beta-CROWN): on the region
``z >= 0`` (active) gives ``f >= f - beta z`` and ``z <= 0`` (inactive) ``f >= f + beta z``.

Soundness does not depend on the optimiser: any ``alpha`` in [0, 1] and ``beta >= 0``
give a valid bound. ``optimise`` may run its gradient ascent in float32 (twice the
throughput on CPU); the parameters are then clamped and the bound evaluated once more in
float64 on the float64 intervals, padded by ``BOUND_PAD`` for round-off (``exact=True``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import numpy as np
import torch

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds, relaxation
from napkit.verify.tolerances import BOUND_PAD


@dataclass
class TorchNet:
    w: list[torch.Tensor]
    b: list[torch.Tensor]

    def to(self, dtype: torch.dtype) -> TorchNet:
        return TorchNet([w.to(dtype) for w in self.w], [b.to(dtype) for b in self.b])


_CACHE: dict[tuple[int, torch.dtype], tuple[ReluNetwork, TorchNet]] = {}


def torch_net(net: ReluNetwork, dtype: torch.dtype = torch.float64) -> TorchNet:
    """The network's weights as torch tensors (cached per network and dtype)."""
    hit = _CACHE.get((id(net), dtype))
    if hit is not None and hit[0] is net:
        return hit[1]
    t = TorchNet([torch.from_numpy(w) for w in net.weights], [torch.from_numpy(b) for b in net.biases])
    t = t.to(dtype) if dtype != torch.float64 else t
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[(id(net), dtype)] = (net, t)
    return t


@dataclass
class CrownLayer:
    """Torch view of one hidden layer's bounds, phases and relaxation (one row per objective
    row, or one shared row)."""

    lo: torch.Tensor
    up: torch.Tensor
    phase: torch.Tensor  # float: +1 / -1 / 0
    act: torch.Tensor  # bool: relu is the identity on the region
    unst: torch.Tensor  # bool
    su: torch.Tensor  # upper slope (unstable only)
    tu: torch.Tensor  # upper intercept (unstable only)
    sl0: torch.Tensor  # CROWN's initial lower slope

    def rows(self, sel) -> CrownLayer:
        return CrownLayer(*(getattr(self, f.name)[sel] for f in fields(self)))

    def to(self, dtype: torch.dtype) -> CrownLayer:
        return CrownLayer(*(t.to(dtype) if t.is_floating_point() else t
                            for t in (getattr(self, f.name) for f in fields(self))))


def layer_from_bounds(lo: torch.Tensor, up: torch.Tensor, phase: torch.Tensor) -> CrownLayer:
    """The relaxation of intervals ``[lo, up]`` (any leading shape), as in ``bounds.relaxation``."""
    unst = (lo < 0) & (up > 0)
    act = lo >= 0
    den = torch.where(unst, up - lo, torch.ones_like(lo))
    su = torch.where(unst, up / den, torch.zeros_like(lo))
    tu = torch.where(unst, -lo * su, torch.zeros_like(lo))
    sl0 = torch.where(unst, (up > -lo).to(lo.dtype), act.to(lo.dtype))
    return CrownLayer(lo, up, phase, act, unst, su, tu, sl0)


def crown_layers(bounds: Bounds, n_layers: int) -> list[CrownLayer]:
    """One shared row per layer from ``bounds`` (the root region)."""
    out = []
    for k in range(n_layers):
        lo, up = bounds.lower[k], bounds.upper[k]
        p = bounds.phases[k] if bounds.phases is not None else np.zeros(lo.size, np.int8)
        sl, su, tu = relaxation(lo, up)
        unst = (lo < 0) & (up > 0)
        out.append(CrownLayer(
            torch.from_numpy(lo), torch.from_numpy(up), torch.from_numpy(p.astype(np.float64)),
            torch.from_numpy(lo >= 0), torch.from_numpy(unst), torch.from_numpy(np.where(unst, su, 0.0)),
            torch.from_numpy(np.where(unst, tu, 0.0)), torch.from_numpy(sl),
        ))
    return out


def backward(tn: TorchNet, layers: list[CrownLayer], k: int, a: torch.Tensor, const: torch.Tensor,
             alphas: dict, betas: dict, box_lo: torch.Tensor, box_hi: torch.Tensor,
             exact: bool = False):
    """Lower bound of ``a @ z_k + const`` (k = len(layers): ``a`` is on the logits).

    ``alphas[j]`` (rows, n_j) lower slopes of layer j's unstable neurons, ``betas[j]``
    (rows, n_j) multipliers of layer j's phase constraints (only phase-fixed entries count).
    Returns (bound, coefficients on each post-activation layer, for branching); with
    ``exact`` the bound is padded for round-off and the input coefficients returned too.
    """
    scale = const.abs() if exact else None
    coefs: dict[int, torch.Tensor] = {}
    for j in range(k, -1, -1):
        if j < len(layers) and j in betas:
            a = a - layers[j].phase * betas[j]
        const = const + a @ tn.b[j]
        if exact:
            scale = scale + a.abs() @ tn.b[j].abs()
        a = a @ tn.w[j]
        if j == 0:
            break
        lay = layers[j - 1]
        coefs[j - 1] = a
        ap, an = a.clamp(min=0), a.clamp(max=0)
        sl = alphas[j - 1] if (j - 1) in alphas else lay.sl0
        sl = torch.where(lay.unst, sl, lay.act.to(a.dtype))
        su = torch.where(lay.unst, lay.su, lay.act.to(a.dtype))
        const = const + (an * lay.tu).sum(-1)
        if exact:
            scale = scale + (an.abs() * lay.tu).sum(-1)
        a = ap * sl + an * su
    val = const + a.clamp(min=0) @ box_lo + a.clamp(max=0) @ box_hi
    if exact:
        mag = a.abs() @ torch.maximum(box_lo.abs(), box_hi.abs())
        val = val - BOUND_PAD * (1.0 + val.abs() + scale + mag)
        return val, coefs, a
    return val, coefs


class Adam:
    """Plain Adam on a list of tensors (torch.optim costs seconds to import on first use)."""

    def __init__(self, params: list[torch.Tensor], lr: float | list[float], b1: float = 0.9,
                 b2: float = 0.999):
        self.p, self.b1, self.b2, self.t = params, b1, b2, 0
        self.lr = list(lr) if isinstance(lr, list | tuple) else [lr] * len(params)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for p, g, m, v, lr in zip(self.p, grads, self.m, self.v, self.lr, strict=True):
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            p.sub_(lr * (m / c1) / ((v / c2).sqrt() + 1e-8))


def ascend(opt: Adam, val: torch.Tensor, params: list, alphas: dict, betas: dict) -> None:
    """One gradient-ascent step on the bound, then back into the valid set: any slope in
    [0, 1] and any multiplier >= 0 gives a sound bound (the final pass clamps again)."""
    grads = torch.autograd.grad(-val.sum(), params)
    opt.step(grads)
    with torch.no_grad():
        for v in alphas.values():
            v.clamp_(0.0, 1.0)
        for v in betas.values():
            v.clamp_(min=0.0)


@dataclass
class CrownProblem:
    """``a @ z_k + const`` over the region of ``layers`` (float64), one row per objective."""

    tn: TorchNet
    layers: list[CrownLayer]
    k: int
    a: torch.Tensor
    const: torch.Tensor
    box_lo: torch.Tensor
    box_hi: torch.Tensor


def optimise(
    prob: CrownProblem, alphas: dict, betas: dict, iters: int, lr: float,
    deadline: float | None = None, stop_at: float | None = None, keep_best: bool = True,
    dtype: torch.dtype = torch.float64, stop=None, lr_beta: float | None = None,
    best_bound: bool = False,
):
    """Adam on the bound's ``alphas``/``betas`` (``dtype``), then the sound float64 bound.
    ``lr_beta``: the step of the multipliers (default ``lr``).

    ``keep_best``: per row, the parameters of the best iterate (else the last). Stops when
    every row's bound exceeds ``stop_at``, at ``deadline`` or once ``stop()`` is True.
    ``best_bound`` (with the last iterate): the bound is the larger of the last and the best
    iterate's sound bounds (both valid), while the parameters, coefficients and input
    coefficients returned stay the last iterate's (where branch and bound goes on from).
    Returns (bound, coefficients per layer, input coefficients, (alphas, betas)) with
    clamped float64 parameters.
    """
    params = {**{("a", j): v for j, v in alphas.items()}, **{("b", j): v for j, v in betas.items()}}
    also = None  # the best iterate's sound bound (``best_bound``)
    if params and iters > 0:
        low = dtype != torch.float64
        tn = prob.tn.to(dtype) if low else prob.tn
        layers = [lay.to(dtype) for lay in prob.layers] if low else prob.layers
        a, const = prob.a.to(dtype), prob.const.to(dtype)
        box_lo, box_hi = prob.box_lo.to(dtype), prob.box_hi.to(dtype)
        al = {j: v.detach().to(dtype).clone().requires_grad_(True) for j, v in alphas.items()}
        be = {j: v.detach().to(dtype).clone().requires_grad_(True) for j, v in betas.items()}
        plist = [*al.values(), *be.values()]
        opt = Adam(plist, [lr] * len(al) + [lr if lr_beta is None else lr_beta] * len(be))
        best_val, best = None, None
        track = keep_best or best_bound
        for _ in range(iters):
            if (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop()):
                break
            val, _ = backward(tn, layers, prob.k, a, const, al, be, box_lo, box_hi)
            if track:
                v = val.detach()
                if best_val is None:
                    best_val = v.clone()
                    best = ({j: t.detach().clone() for j, t in al.items()},
                            {j: t.detach().clone() for j, t in be.items()})
                else:
                    better = v > best_val
                    if bool(better.any()):
                        best_val = torch.where(better, v, best_val)
                        for src, dst in ((al, best[0]), (be, best[1])):
                            for j, t in src.items():
                                dst[j] = torch.where(better[:, None], t.detach(), dst[j])
            done = best_val if track else val.detach()
            if stop_at is not None and bool((done > stop_at).all()):
                break
            ascend(opt, val, plist, al, be)
        if keep_best and best is not None:
            al, be = best
        alphas, betas = _float64(al), _float64(be)
        if best_bound and not keep_best and best is not None:
            with torch.no_grad():
                also, _, _ = backward(prob.tn, prob.layers, prob.k, prob.a, prob.const, *_clamped(
                    _float64(best[0]), _float64(best[1])), prob.box_lo, prob.box_hi, exact=True)
    with torch.no_grad():
        alphas, betas = _clamped(alphas, betas)
        val, coefs, ax = backward(prob.tn, prob.layers, prob.k, prob.a, prob.const, alphas, betas,
                                  prob.box_lo, prob.box_hi, exact=True)
        if also is not None:
            val = torch.maximum(val, also)
    return val, coefs, ax, (alphas, betas)


def _float64(params: dict) -> dict:
    return {j: v.detach().to(torch.float64) for j, v in params.items()}


def _clamped(alphas: dict, betas: dict) -> tuple[dict, dict]:
    """The parameters' valid ranges: slopes in [0, 1], multipliers >= 0."""
    return ({j: v.detach().clamp(0.0, 1.0) for j, v in alphas.items()},
            {j: v.detach().clamp(min=0.0) for j, v in betas.items()})

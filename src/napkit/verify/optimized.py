"""Optimised linear bounds (alpha-beta-CROWN style) with the NAP phases as split constraints.

Symbolic bounds (``bounds.py``) use the phases only to clip each fixed neuron's own
interval. Here every phase constraint also enters the back-substitution through a
Lagrange multiplier: on the region, ``z_j >= 0`` (active phase) gives
``f >= f - beta_j z_j`` and ``z_j <= 0`` (inactive) gives ``f >= f + beta_j z_j`` for any
``beta_j >= 0``, so the constraints of *other* neurons tighten every bound (the dual of
the LP over the phase polytope, found by gradient ascent). Unstable neurons use the
triangle upper relaxation and a lower relaxation ``relu(z) >= alpha z`` with an
optimised ``alpha`` in [0, 1] per objective row (alpha-CROWN).

Soundness does not depend on the optimiser: any ``alpha`` in [0, 1] and ``beta >= 0``
give a valid bound. The parameters found by Adam (torch autograd, float64) are clamped,
then the bound is evaluated once more without gradients and padded for float64 round-off
by a relative 1e-9 of the sum of absolute terms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds, apply_phases, backsub_lower, relaxation
from napkit.verify.properties import Phases

_PAD = 1e-9


@dataclass
class _Net:
    w: list[torch.Tensor]
    b: list[torch.Tensor]


_CACHE: dict[int, tuple[ReluNetwork, _Net]] = {}


def _tnet(net: ReluNetwork) -> _Net:
    hit = _CACHE.get(id(net))
    if hit is not None and hit[0] is net:
        return hit[1]
    t = _Net([torch.from_numpy(w) for w in net.weights], [torch.from_numpy(b) for b in net.biases])
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[id(net)] = (net, t)
    return t


@dataclass
class _Layer:
    """Torch view of one hidden layer's bounds, phases and relaxation."""

    lo: torch.Tensor
    up: torch.Tensor
    phase: torch.Tensor  # float: +1 / -1 / 0
    act: torch.Tensor  # bool: relu is the identity on the region
    unst: torch.Tensor  # bool
    su: torch.Tensor  # upper slope (unstable only)
    tu: torch.Tensor  # upper intercept (unstable only)
    sl0: torch.Tensor  # CROWN's initial lower slope


def _layers(bounds: Bounds, n_layers: int) -> list[_Layer]:
    out = []
    for k in range(n_layers):
        lo, up = bounds.lower[k], bounds.upper[k]
        p = bounds.phases[k] if bounds.phases is not None else np.zeros(lo.size, np.int8)
        sl, su, tu = relaxation(lo, up)
        unst = (lo < 0) & (up > 0)
        out.append(_Layer(
            torch.from_numpy(lo), torch.from_numpy(up), torch.from_numpy(p.astype(np.float64)),
            torch.from_numpy(lo >= 0), torch.from_numpy(unst), torch.from_numpy(np.where(unst, su, 0.0)),
            torch.from_numpy(np.where(unst, tu, 0.0)), torch.from_numpy(sl),
        ))
    return out


def _backward(tn: _Net, layers: list[_Layer], k: int, a: torch.Tensor, const: torch.Tensor,
              alphas: dict, betas: dict, box_lo: torch.Tensor, box_hi: torch.Tensor,
              exact: bool = False):
    """Lower bound of ``a @ z_k + const`` (k = len(layers): ``a`` is on the logits).

    ``alphas[j]`` (rows, n_j) lower slopes of layer j's unstable neurons, ``betas[j]``
    (rows, n_j) multipliers of layer j's phase constraints (only phase-fixed entries count).
    Returns (bound, coefficients on each post-activation layer, for branching); with
    ``exact`` the bound is padded for round-off.
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
        val = val - _PAD * (1.0 + val.abs() + scale + mag)
    if exact:
        return val, coefs, a
    return val, coefs


class _Adam:
    """Plain Adam on a list of tensors (torch.optim costs seconds to import on first use)."""

    def __init__(self, params: list[torch.Tensor], lr: float, b1: float = 0.9, b2: float = 0.999):
        self.p, self.lr, self.b1, self.b2, self.t = params, lr, b1, b2, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for p, g, m, v in zip(self.p, grads, self.m, self.v, strict=True):
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            p.sub_(self.lr * (m / c1) / ((v / c2).sqrt() + 1e-8))


class one_thread:
    """Context: torch on one thread (on a shared 2-core machine, more threads thrash)."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.n)


def optimize_rows(
    net: ReluNetwork, bounds: Bounds, k: int, a: np.ndarray, const: np.ndarray,
    iters: int = 30, lr: float = 0.1, deadline: float | None = None, stop_at: float | None = None,
    init: tuple[dict, dict] | None = None,
) -> tuple[np.ndarray, dict]:
    """Sound lower bounds of ``a @ z_k + const`` over the region of ``bounds``, optimised.

    ``k = n_hidden`` means ``a`` acts on the logits. Phase constraints of layers <= k
    (and < n_hidden) enter with multipliers. ``stop_at``: stop early once every row's
    bound exceeds it. Returns the bounds and ``info`` (the optimised ``alphas``, ``betas``
    and the per-layer coefficients of the last pass, for branching).
    """
    tn = _tnet(net)
    n_h = len(net.layer_sizes)
    layers = _layers(bounds, n_h)
    box_lo, box_hi = torch.tensor(bounds.box.lower), torch.tensor(bounds.box.upper)
    a_t = torch.from_numpy(np.atleast_2d(a).astype(np.float64))
    c_t = torch.from_numpy(np.asarray(const, dtype=np.float64))
    rows = a_t.shape[0]
    alphas: dict[int, torch.Tensor] = {}
    betas: dict[int, torch.Tensor] = {}
    for j in range(min(k, n_h)):
        if bool(layers[j].unst.any()):
            alphas[j] = layers[j].sl0.expand(rows, -1).clone()
    if bounds.phases is not None:
        for j in range(min(k + 1, n_h)):
            if bool((layers[j].phase != 0).any()):
                betas[j] = torch.zeros(rows, layers[j].phase.numel(), dtype=torch.float64)
    if init is not None:
        for src, dst in ((init[0], alphas), (init[1], betas)):
            for j, v in src.items():
                if j in dst and v.shape == dst[j].shape:
                    dst[j] = v.detach().clone()
    params = [*alphas.values(), *betas.values()]
    best = None
    if params and iters > 0:
        for p in params:
            p.requires_grad_(True)
        opt = _Adam(params, lr)
        best_val = None
        for _ in range(iters):
            if deadline is not None and time.monotonic() > deadline:
                break
            val, _ = _backward(tn, layers, k, a_t, c_t, alphas, betas, box_lo, box_hi)
            if best_val is None:
                best_val = val.detach().clone()
                best = ({j: v.detach().clone() for j, v in alphas.items()},
                        {j: v.detach().clone() for j, v in betas.items()})
            else:
                better = val.detach() > best_val
                if bool(better.any()):
                    best_val = torch.where(better, val.detach(), best_val)
                    for j, v in alphas.items():
                        best[0][j] = torch.where(better[:, None], v.detach(), best[0][j])
                    for j, v in betas.items():
                        best[1][j] = torch.where(better[:, None], v.detach(), best[1][j])
            if stop_at is not None and bool((best_val > stop_at).all()):
                break
            ascend(opt, val, params, alphas, betas)
    if best is not None:
        alphas, betas = best
    with torch.no_grad():
        alphas = {j: v.detach().clamp(0.0, 1.0) for j, v in alphas.items()}
        betas = {j: v.detach().clamp(min=0.0) for j, v in betas.items()}
        val, coefs, ax = _backward(tn, layers, k, a_t, c_t, alphas, betas, box_lo, box_hi, exact=True)
    # ``argmin``: per row, the box corner that minimises the final linear bound (a candidate point)
    argmin = torch.where(ax > 0, box_lo, box_hi).numpy().copy()
    return val.numpy().copy(), {"alphas": alphas, "betas": betas, "coefs": coefs, "layers": layers,
                                "argmin": argmin}


def tighten_optimized(
    net: ReluNetwork, bounds: Bounds, iters: int = 20, lr: float = 0.1,
    deadline: float | None = None, layers: list[int] | None = None,
) -> int:
    """In place: optimised bounds for every free unstable neuron, layer by layer.

    After layer k is tightened, the symbolic bounds of layer k+1 are recomputed from the
    tighter relaxation before its own unstable neurons are optimised. Returns the number
    of neurons that became stable; sets ``bounds.vacuous`` when an interval empties.
    """
    n_h = len(net.layer_sizes)
    before = bounds.n_unstable
    for k in range(n_h):
        if deadline is not None and time.monotonic() > deadline:
            break
        lo, up = bounds.lower[k], bounds.upper[k]
        if k > 0:  # recompute symbolic bounds from the (tighter) layers below
            bounds.relax[:] = [relaxation(bounds.lower[j], bounds.upper[j]) for j in range(k)]
            n = lo.size
            eye = np.eye(n)
            both = backsub_lower(net, bounds.relax, k, np.vstack([eye, -eye]), np.zeros(2 * n),
                                 bounds.box)
            np.maximum(lo, both[:n], out=lo)
            np.minimum(up, -both[n:], out=up)
            apply_phases(lo, up, None if bounds.phases is None else bounds.phases[k])
        unst = np.flatnonzero((lo < 0) & (up > 0))
        if unst.size and (layers is None or k in layers):
            m = unst.size
            a = np.zeros((2 * m, lo.size))
            a[np.arange(m), unst] = 1.0
            a[m + np.arange(m), unst] = -1.0
            v, _ = optimize_rows(net, bounds, k, a, np.zeros(2 * m), iters=iters, lr=lr,
                                 deadline=deadline)
            lo[unst] = np.maximum(lo[unst], v[:m])
            up[unst] = np.minimum(up[unst], -v[m:])
        if (lo > up).any():
            i = int(np.argmax(lo > up))
            bounds.vacuous = True
            bounds.reason = (f"optimised bounds show no input of the region follows the phases "
                             f"(neuron ({net.layer_names[k]}, {i}))")
            return before
    bounds.relax[:] = [relaxation(bounds.lower[j], bounds.upper[j]) for j in range(n_h)]
    return before - bounds.n_unstable


def with_phases(bounds: Bounds, phases: Phases) -> Bounds:
    """A copy of ``bounds`` restricted to extra ``phases`` (clipped intervals, same box)."""
    lo = [x.copy() for x in bounds.lower]
    up = [x.copy() for x in bounds.upper]
    for k in range(len(lo)):
        apply_phases(lo[k], up[k], phases[k])
    out = Bounds(lo, up, bounds.box, phases)
    for k in range(len(lo)):
        if (lo[k] > up[k]).any():
            out.vacuous = True
            out.reason = "a split empties a neuron's interval"
            return out
    out.relax = [relaxation(a, b) for a, b in zip(lo, up, strict=True)]
    return out


def ascend(opt: _Adam, val: torch.Tensor, params: list, alphas: dict, betas: dict) -> None:
    """One gradient-ascent step on the bound, then back into the valid set: any slope in
    [0, 1] and any multiplier >= 0 gives a sound bound (the final pass clamps again)."""
    grads = torch.autograd.grad(-val.sum(), params)
    opt.step(grads)
    with torch.no_grad():
        for v in alphas.values():
            v.clamp_(0.0, 1.0)
        for v in betas.values():
            v.clamp_(min=0.0)

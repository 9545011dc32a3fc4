"""Optimised linear bounds (alpha-beta-CROWN style) with the NAP phases as split constraints.

Symbolic bounds (``bounds.py``) use the phases only to clip each fixed neuron's own
interval. Here every phase constraint also enters the back-substitution through a
Lagrange multiplier: on the region, ``z_j >= 0`` (active phase) gives
``f >= f - beta_j z_j`` and ``z_j <= 0`` (inactive) gives ``f >= f + beta_j z_j`` for any
``beta_j >= 0``, so the constraints of *other* neurons tighten every bound (the dual of
the LP over the phase polytope, found by gradient ascent). Unstable neurons use the
triangle upper relaxation and a lower relaxation ``relu(z) >= alpha z`` with an
optimised ``alpha`` in [0, 1] per objective row (alpha-CROWN).

The bounding kernel (backward pass, Adam, the final sound float64 pass) lives in
``crown.py`` and is shared with branch and bound (``bab.py``).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds, apply_phases, backsub_lower, relaxation
from napkit.verify.crown import CrownProblem, crown_layers, optimise, torch_net
from napkit.verify.properties import Phases
from napkit.verify.threads import one_thread  # noqa: F401  (its old home)


def optimize_rows(
    net: ReluNetwork, bounds: Bounds, k: int, a: np.ndarray, const: np.ndarray,
    iters: int = 30, lr: float = 0.1, deadline: float | None = None, stop_at: float | None = None,
    init: tuple[dict, dict] | None = None, dtype: torch.dtype = torch.float64, stop=None,
) -> tuple[np.ndarray, dict]:
    """Sound lower bounds of ``a @ z_k + const`` over the region of ``bounds``, optimised.

    ``k = n_hidden`` means ``a`` acts on the logits. Phase constraints of layers <= k
    (and < n_hidden) enter with multipliers. ``stop_at``: stop early once every row's
    bound exceeds it. Returns the bounds and ``info`` (the optimised ``alphas``, ``betas``
    and the per-layer coefficients of the last pass, for branching). ``dtype``: of the
    gradient ascent only; the returned bounds are always evaluated in float64.
    """
    n_h = len(net.layer_sizes)
    prob = CrownProblem(
        torch_net(net), crown_layers(bounds, n_h), k,
        torch.from_numpy(np.atleast_2d(a).astype(np.float64)),
        torch.from_numpy(np.asarray(const, dtype=np.float64)),
        torch.tensor(bounds.box.lower), torch.tensor(bounds.box.upper),
    )
    rows = prob.a.shape[0]
    alphas: dict[int, torch.Tensor] = {}
    betas: dict[int, torch.Tensor] = {}
    for j in range(min(k, n_h)):
        if bool(prob.layers[j].unst.any()):
            alphas[j] = prob.layers[j].sl0.expand(rows, -1).clone()
    if bounds.phases is not None:
        for j in range(min(k + 1, n_h)):
            if bool((prob.layers[j].phase != 0).any()):
                betas[j] = torch.zeros(rows, prob.layers[j].phase.numel(), dtype=torch.float64)
    if init is not None:
        for src, dst in ((init[0], alphas), (init[1], betas)):
            for j, v in src.items():
                if j in dst and v.shape == dst[j].shape:
                    dst[j] = v.detach().clone()
    val, coefs, ax, (alphas, betas) = optimise(prob, alphas, betas, iters, lr, deadline=deadline,
                                               stop_at=stop_at, dtype=dtype, stop=stop)
    # ``argmin``: per row, the box corner that minimises the final linear bound (a candidate point)
    argmin = torch.where(ax > 0, prob.box_lo, prob.box_hi).numpy().copy()
    return val.numpy().copy(), {"alphas": alphas, "betas": betas, "coefs": coefs, "layers": prob.layers,
                                "argmin": argmin}


def tighten_optimized(
    net: ReluNetwork, bounds: Bounds, iters: int = 20, lr: float = 0.1,
    deadline: float | None = None, layers: list[int] | None = None, stop=None,
) -> int:
    """In place: optimised bounds for every free unstable neuron, layer by layer.

    After layer k is tightened, the symbolic bounds of layer k+1 are recomputed from the
    tighter relaxation before its own unstable neurons are optimised. Returns the number
    of neurons that became stable; sets ``bounds.vacuous`` when an interval empties.
    """
    n_h = len(net.layer_sizes)
    before = bounds.n_unstable
    for k in range(n_h):
        if (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop()):
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
                                 deadline=deadline, stop=stop)
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

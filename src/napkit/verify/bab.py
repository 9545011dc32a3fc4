"""Branch and bound over unstable neurons on optimised bounds (beta-CROWN style), batched.

A subdomain is the region with some unstable neurons split to a phase (active z >= 0 or
inactive z <= 0): exactly the NAP phases with more entries fixed, so the bounds of
``optimized.py`` handle a split as one more Lagrangian constraint. Intermediate bounds
are the root's (valid on every subdomain), clipped by the splits. A subdomain is pruned
when some row of the disjunct has a positive lower bound; a subdomain with no unstable
neuron left is decided exactly by an LP on HiGHS. The minimiser of each subdomain's
linear bound is tried as a counterexample (the caller re-checks it in float64).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds
from napkit.verify.optimized import _Adam, _backward, _Layer, _tnet, ascend, with_phases


@dataclass
class BabResult:
    status: str  # "proved", "found", "unknown"
    counterexample: object = None
    domains: int = 0
    reason: str = ""


def _batch_layers(lows, ups, phs) -> list[_Layer]:
    """Per-row layers from stacked (rows, n) lower/upper bounds and phases."""
    out = []
    for lo, up, p in zip(lows, ups, phs, strict=True):
        lo_t, up_t = torch.from_numpy(lo), torch.from_numpy(up)
        unst = (lo_t < 0) & (up_t > 0)
        act = lo_t >= 0
        den = torch.where(unst, up_t - lo_t, torch.ones_like(lo_t))
        su = torch.where(unst, up_t / den, torch.zeros_like(lo_t))
        tu = torch.where(unst, -lo_t * su, torch.zeros_like(lo_t))
        sl0 = torch.where(unst, (up_t > -lo_t).to(lo_t.dtype), act.to(lo_t.dtype))
        out.append(_Layer(lo_t, up_t, torch.from_numpy(p.astype(np.float64)), act, unst, su, tu, sl0))
    return out


def _bound_batch(net, box_lo, box_hi, layers, a, const, iters, lr, init=None):
    """Optimised sound lower bounds, one row per subdomain (rows of ``layers`` tensors)."""
    tn = _tnet(net)
    n_h = len(layers)
    rows = a.shape[0]
    alphas = {j: lay.sl0.expand(rows, -1).clone() for j, lay in enumerate(layers) if bool(lay.unst.any())}
    betas = {j: torch.zeros(rows, lay.lo.shape[-1], dtype=torch.float64)
             for j, lay in enumerate(layers) if bool((lay.phase != 0).any())}
    if init is not None:
        for j, v in init[0].items():
            if j in alphas:
                alphas[j] = v.clone()
        for j, v in init[1].items():
            if j in betas:
                betas[j] = v.clone()
    params = [*alphas.values(), *betas.values()]
    for p in params:
        p.requires_grad_(True)
    opt = _Adam(params, lr)
    for _ in range(iters if params else 0):
        val, _ = _backward(tn, layers, n_h, a, const, alphas, betas, box_lo, box_hi)
        if bool((val > 0).all()):
            break
        ascend(opt, val, params, alphas, betas)
    with torch.no_grad():
        alphas = {j: v.detach().clamp(0.0, 1.0) for j, v in alphas.items()}
        betas = {j: v.detach().clamp(min=0.0) for j, v in betas.items()}
        val, coefs, ax = _backward(tn, layers, n_h, a, const, alphas, betas, box_lo, box_hi, exact=True)
    return val, coefs, ax, (alphas, betas)


def _score(lay: _Layer, coef: torch.Tensor) -> torch.Tensor:
    """Branching score per unstable neuron: what the triangle's intercept costs the bound."""
    s = (-coef.clamp(max=0)) * lay.tu + 1e-4 * coef.abs() * (lay.up - lay.lo)
    return torch.where(lay.unst, s, torch.full_like(s, -1.0))


def branch_and_bound(
    net: ReluNetwork,
    bounds: Bounds,
    c: np.ndarray,
    const: np.ndarray,
    deadline: float,
    check: Callable[[np.ndarray], object],
    batch: int = 32,
    iters: int = 12,
    lr: float = 0.1,
    max_domains: int = 200000,
) -> BabResult:
    """Prove that on the region of ``bounds`` some row of ``c @ y + const`` is positive.

    ``check(x)`` returns a confirmed counterexample or None. Stops at ``deadline``.
    """
    from napkit.verify.milp import MilpEncoding

    c = np.atleast_2d(np.asarray(c, dtype=np.float64))
    const = np.asarray(const, dtype=np.float64).reshape(-1)
    r = c.shape[0]
    n_h = len(bounds.lower)
    root_ph = bounds.phases or [np.zeros(lo.size, np.int8) for lo in bounds.lower]
    box_lo = torch.tensor(bounds.box.lower)
    box_hi = torch.tensor(bounds.box.upper)
    a_row = torch.from_numpy(c)
    c_row = torch.from_numpy(const)
    # a domain: (score of its bound, phases, warm start or None)
    queue: list[tuple[float, list[np.ndarray], object]] = [(-np.inf, [p.copy() for p in root_ph], None)]
    seen = 0
    tried_x = 0
    while queue:
        if time.monotonic() > deadline:
            return BabResult("unknown", None, seen, f"branch and bound: time out ({len(queue)} open)")
        if seen > max_domains:
            return BabResult("unknown", None, seen, "branch and bound: domain limit")
        queue.sort(key=lambda t: t[0])
        take, queue = queue[:batch], queue[batch:]
        phs = [d[1] for d in take]
        # bounds of each domain: root bounds clipped by its phases
        lows, ups = [], []
        for k in range(n_h):
            lo = np.repeat(bounds.lower[k][None], len(take), 0)
            up = np.repeat(bounds.upper[k][None], len(take), 0)
            pk = np.stack([p[k] for p in phs])
            lo[pk > 0] = np.maximum(lo[pk > 0], 0.0)
            up[pk < 0] = np.minimum(up[pk < 0], 0.0)
            lows.append(np.repeat(lo, r, 0))
            ups.append(np.repeat(up, r, 0))
        rep_ph = [np.repeat(np.stack([p[k] for p in phs]), r, 0) for k in range(n_h)]
        layers = _batch_layers(lows, ups, rep_ph)
        a = a_row.repeat(len(take), 1)
        cc = c_row.repeat(len(take))
        init = None
        if all(d[2] is not None for d in take):
            init = tuple({j: torch.cat([d[2][i][j] for d in take]) for j in take[0][2][i]
                          if all(j in d[2][i] for d in take)} for i in range(2))
        val, coefs, ax, params = _bound_batch(net, box_lo, box_hi, layers, a, cc, iters, lr, init)
        seen += len(take)
        val = val.view(len(take), r)
        for i, (_, ph, _) in enumerate(take):
            if bool((val[i] > 0).any()):
                continue  # refuted on this subdomain
            rows = slice(i * r, (i + 1) * r)
            # candidate: the minimiser over the box of the weakest row's linear bound
            w = int(torch.argmax(val[i]))
            axi = ax[i * r + w]
            x = torch.where(axi > 0, box_lo, box_hi).numpy()
            if tried_x < 4000:
                tried_x += 1
                ce = check(x)
                if ce is not None:
                    return BabResult("found", ce, seen)
            best, where = -1.0, None
            for k in range(n_h):
                lay_k = _Layer(*(t[rows] for t in (layers[k].lo, layers[k].up, layers[k].phase,
                                                   layers[k].act, layers[k].unst, layers[k].su,
                                                   layers[k].tu, layers[k].sl0)))
                if k not in coefs:
                    continue
                sc = _score(lay_k, coefs[k][rows]).max(0).values
                j = int(torch.argmax(sc))
                if float(sc[j]) > best:
                    best, where = float(sc[j]), (k, j)
            if where is None or best < 0:
                # no unstable neuron left: the region is a polytope, decide the LP exactly
                sub = with_phases(bounds, ph)
                if sub.vacuous:
                    continue
                left = max(deadline - time.monotonic(), 0.01)
                res = MilpEncoding(net, sub, strict_margin=-1e-6).solve(c, -const, time_limit=left,
                                                                       relax=True)
                if res.status == "infeasible":
                    continue
                if res.status == "feasible":
                    ce = check(res.x)
                    if ce is not None:
                        return BabResult("found", ce, seen)
                return BabResult("unknown", None, seen, f"branch and bound: leaf LP {res.status}")
            k, j = where
            warm = tuple({q: v[rows] for q, v in params[t].items()} for t in range(2))
            for sign in (1, -1):
                child = [p.copy() for p in ph]
                child[k][j] = sign
                queue.append((float(val[i].max()), child, warm))
    return BabResult("proved", None, seen)

"""Semi-nonnegative matrix factorisation of MLP activations: A (d_mlp × n) ≈ F Gᵀ, G ≥ 0.

Columns of F are features in neuron space (any sign); rows of G say how strongly each of
the n inputs (tokens) uses each feature (never negative), so a feature reads as "the
inputs that build it" and as a direction to steer along. The updates are Ding, Li and
Jordan's (2010): F by least squares, G by the multiplicative rule
G ← G ⊙ √((P⁺ + G Q⁻) / (P⁻ + G Q⁺)), P = AᵀF, Q = FᵀF, which never raises the loss for
a fixed F. Optionally F keeps only its largest entries per column (winner-take-all), as
the MLP-feature SNMF of Shafran et al. (2025) does; the loss may then rise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from napkit.errors import NapkitError

RIDGE = 1e-6  # added to GᵀG before inverting: keeps F's solve defined when a feature is unused
DIVISION_FLOOR = 1e-12  # keeps the multiplicative update away from 0/0
INITS = ("random", "kmeans", "svd")


@dataclass
class SNMFResult:
    """F [d, k] (features), G [n, k] (nonnegative codes), the relative error after each iteration."""

    F: torch.Tensor
    G: torch.Tensor
    rel_errors: list[float] = field(default_factory=list)

    @property
    def rank(self) -> int:
        return self.F.shape[1]

    def reconstruction(self) -> torch.Tensor:
        return self.F @ self.G.T


def _as_matrix(a, dtype: torch.dtype) -> torch.Tensor:
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(dtype)
    if a.ndim != 2:
        raise NapkitError(f"SNMF needs a 2-d matrix (d_mlp × n), got shape {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise NapkitError("SNMF input contains NaN or infinity")
    return a


def init_codes(a: torch.Tensor, rank: int, init: str, gen: torch.Generator) -> torch.Tensor:
    """The starting G [n, rank] > 0: random, k-means indicators + 0.2, or |top right singular vectors|."""
    n = a.shape[1]
    if init == "random":
        return torch.rand(n, rank, generator=gen, dtype=a.dtype) + 0.01
    if init == "svd":  # magnitudes of the top right singular vectors, plus a floor so no code is stuck at 0
        v = _top_right_singular_vectors(a, rank).abs()
        return v + 0.2 * v.mean()
    if init == "kmeans":  # Ding et al.: cluster indicators of the columns, plus 0.2
        from sklearn.cluster import KMeans

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        labels = KMeans(rank, n_init=3, random_state=seed).fit_predict(a.T.double().numpy())
        g = torch.full((n, rank), 0.2, dtype=a.dtype)
        g[torch.arange(n), torch.as_tensor(labels)] += 1.0
        return g
    raise NapkitError(f"unknown SNMF init {init!r}; choose one of {', '.join(INITS)}")


def _top_right_singular_vectors(a: torch.Tensor, rank: int) -> torch.Tensor:
    """[n, rank] from the eigenvectors of the smaller Gram matrix (d_mlp ≪ tokens: A Aᵀ)."""
    d, n = a.shape
    if n <= d:
        return torch.linalg.eigh(a.T @ a)[1][:, -rank:].flip(1)
    evals, evecs = torch.linalg.eigh(a @ a.T)
    u, sig = evecs[:, -rank:].flip(1), evals[-rank:].flip(0).clamp(min=DIVISION_FLOOR).sqrt()
    return (a.T @ u) / sig


def _given_codes(g, n: int, rank: int, dtype: torch.dtype) -> torch.Tensor:
    g = torch.as_tensor(np.asarray(g) if not isinstance(g, torch.Tensor) else g).to(dtype).clone()
    if g.shape != (n, rank) or not torch.isfinite(g).all() or (g < 0).any():
        raise NapkitError(
            f"a starting G must be finite, nonnegative and of shape ({n}, {rank}), got {tuple(g.shape)}"
        )
    return g


def solve_features(a: torch.Tensor, g: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """F = A G (GᵀG + ridge·I)⁻¹: least squares for F with G fixed."""
    gram = g.T @ g + ridge * torch.eye(g.shape[1], dtype=g.dtype)
    return torch.linalg.solve(gram, (a @ g).T).T


def winner_take_all(f: torch.Tensor, keep_fraction: float) -> torch.Tensor:
    """Keep the largest |F| entries of each column (at least one), zero the rest."""
    keep = max(1, int(np.ceil(keep_fraction * f.shape[0])))
    idx = f.abs().topk(keep, dim=0).indices
    return torch.zeros_like(f).scatter_(0, idx, f.gather(0, idx))


def update_codes(a: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """One multiplicative step G ← G ⊙ √((P⁺ + G Q⁻) / (P⁻ + G Q⁺)), P = AᵀF, Q = FᵀF."""
    return _multiplicative(g, a.T @ f, f.T @ f)


def _multiplicative(g: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    num = p.clamp(min=0) + g @ (-q).clamp(min=0)
    den = (-p).clamp(min=0) + g @ q.clamp(min=0)
    return g * torch.sqrt(num / den.clamp(min=DIVISION_FLOOR))


def normalise_codes(f: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm columns of G, the scale moved into F (F Gᵀ unchanged)."""
    norms = g.norm(dim=0).clamp(min=DIVISION_FLOOR)
    return f * norms, g / norms


def relative_error(a: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - f @ g.T) / torch.linalg.norm(a).clamp(min=DIVISION_FLOOR))


def fit_snmf(
    activations,
    rank: int,
    *,
    n_iter: int = 200,
    init: str | tuple[str, ...] | np.ndarray | torch.Tensor = "svd",
    winner_take_all_fraction: float | None = None,
    seed: int = 0,
    restarts: int = 1,
    dtype: torch.dtype = torch.float64,
    tol: float = 0.0,
) -> SNMFResult:
    """Factorise A (d_mlp × n, one column per token) as F Gᵀ with G ≥ 0.

    ``init`` is "random", "kmeans", "svd", several of them, or a starting G [n, rank].
    ``winner_take_all_fraction=0.01`` keeps the top 1% of |F| per column after each F
    step. ``tol`` stops early once the relative error improves by less than it. With
    several inits and/or ``restarts`` seeds (seed, seed+1, ...), the fit with the lowest
    final error is kept: winner-take-all fits have poor local optima (a planted feature
    merged into another) that another start avoids.
    """
    a = _as_matrix(activations, dtype)
    d, n = a.shape
    if not 1 <= rank <= min(d, n):
        raise NapkitError(f"SNMF rank must lie in [1, min(d, n)] = [1, {min(d, n)}], got {rank}")
    if winner_take_all_fraction is not None and not 0 < winner_take_all_fraction <= 1:
        raise NapkitError(f"winner-take-all fraction must lie in (0, 1], got {winner_take_all_fraction}")
    if n_iter < 1 or restarts < 1:
        raise NapkitError(f"n_iter and restarts must be at least 1, got {n_iter} and {restarts}")
    if isinstance(init, (np.ndarray, torch.Tensor)):  # an explicit starting G (benchmarks, warm starts)
        start = _given_codes(init, n, rank, dtype)
        return _fit_once(a, rank, start, seed, n_iter, winner_take_all_fraction, tol)
    inits = (init,) if isinstance(init, str) else tuple(init)
    fits = [
        _fit_once(a, rank, kind, seed + r, n_iter, winner_take_all_fraction, tol)
        for r in range(restarts)
        for kind in inits
    ]
    return min(fits, key=lambda fit: fit.rel_errors[-1])


def _fit_once(a, rank, init, seed, n_iter, winner_take_all_fraction, tol) -> SNMFResult:
    g = (
        init
        if isinstance(init, torch.Tensor)
        else init_codes(a, rank, init, torch.Generator().manual_seed(seed))
    )
    errors: list[float] = []
    a_sq = float((a * a).sum()) or 1.0
    for _ in range(n_iter):
        f = solve_features(a, g)
        if winner_take_all_fraction is not None:
            f = winner_take_all(f, winner_take_all_fraction)
        p, q = a.T @ f, f.T @ f
        g = _multiplicative(g, p, q)
        # ‖A − F Gᵀ‖² = ‖A‖² − 2⟨G, AᵀF⟩ + ⟨FᵀF, GᵀG⟩: reuses P and Q, never forms the d × n residual
        err_sq = a_sq - 2 * float((g * p).sum()) + float((q * (g.T @ g)).sum())
        errors.append(max(err_sq, 0.0) ** 0.5 / a_sq**0.5)
        f, g = normalise_codes(f, g)
        if tol > 0 and len(errors) > 1 and errors[-2] - errors[-1] < tol:
            break
    return SNMFResult(f, g, errors)


def top_inputs(result: SNMFResult, top: int = 10) -> torch.Tensor:
    """[k, top] indices of the inputs (columns of A) that use each feature most."""
    top = min(top, result.G.shape[0])
    return result.G.topk(top, dim=0).indices.T


def steering_direction(result: SNMFResult, feature: int, w_out: torch.Tensor | None = None) -> torch.Tensor:
    """Unit vector along feature ``feature``'s column of F.

    In neuron space by default; with ``w_out`` (the MLP output projection as [d_mlp,
    d_model]) it is carried into the residual stream, where steering hooks add it.
    """
    if not 0 <= feature < result.rank:
        raise NapkitError(f"feature must lie in [0, {result.rank}), got {feature}")
    v = result.F[:, feature]
    if w_out is not None:
        if w_out.shape[0] != v.shape[0]:
            raise NapkitError(f"w_out has {w_out.shape[0]} rows, the features {v.shape[0]}")
        v = v.to(w_out.dtype) @ w_out
    norm = v.norm()
    if norm == 0:
        raise NapkitError(f"feature {feature} is zero: no direction to steer along")
    return v / norm


def svd_rel_error(activations, rank: int) -> float:
    """The best rank-k relative error (Eckart–Young), the floor any factorisation meets."""
    s = torch.linalg.svdvals(_as_matrix(activations, torch.float64))
    return float(torch.sqrt((s[rank:] ** 2).sum() / (s**2).sum()))

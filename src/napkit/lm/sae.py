"""Sparse autoencoders (TopK and L1) on activations, their quality, and splicing into a model.

An SAE writes an activation x (d_in) as a sparse nonnegative code f (d_sae) times a
dictionary: f = σ((x − b_dec) W_enc + b_enc), x̂ = f W_dec + b_dec, with σ a ReLU that
keeps only the k largest pre-activations (TopK, Gao et al. 2024) or a plain ReLU trained
with an L1 penalty on f (Bricken et al. 2023). Decoder rows stay unit-norm. Weights use
SAELens's names and shapes so that ``sae_files`` writes a folder SAELens loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from napkit.errors import NapkitError
from napkit.lm._parts import hooked, last_positions

KINDS = ("topk", "l1")
RESAMPLE_UNTIL = 0.8  # fraction of training after which features are no longer resampled


class SparseAutoencoder(nn.Module):
    """W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]."""

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        kind: str = "topk",
        k: int | None = None,
        seed: int = 0,
        hook_name: str = "",
        model_fingerprint: str | None = None,
    ):
        super().__init__()
        if kind not in KINDS:
            raise NapkitError(f"unknown SAE kind {kind!r}; choose one of {', '.join(KINDS)}")
        if d_in < 1 or d_sae < 1:
            raise NapkitError(f"SAE widths must be positive, got d_in={d_in}, d_sae={d_sae}")
        if kind == "topk" and (k is None or not 1 <= k < d_sae):
            raise NapkitError(f"a TopK SAE needs 1 <= k < d_sae = {d_sae}, got k={k}")
        self.kind, self.k, self.hook_name, self.model_fingerprint = kind, k, hook_name, model_fingerprint
        gen = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(d_sae, d_in, generator=gen)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        self.W_enc = nn.Parameter(w_dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    @property
    def d_in(self) -> int:
        return self.W_enc.shape[0]

    @property
    def d_sae(self) -> int:
        return self.W_enc.shape[1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        if self.kind == "l1":
            return torch.relu(pre)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-12)


@dataclass
class SAEMetrics:
    fvu: float  # fraction of variance unexplained
    l0: float  # mean number of active features per row
    dead_frac: float  # fraction of features never active on these rows


@dataclass
class TrainLog:
    steps: int = 0
    rows: int = 0
    losses: list[float] = field(default_factory=list)


def _finite_rows(x: torch.Tensor, d_in: int | None = None) -> torch.Tensor:
    x = torch.as_tensor(x).float()
    x = x.reshape(-1, x.shape[-1])
    if d_in is not None and x.shape[1] != d_in:
        raise NapkitError(f"activations have width {x.shape[1]}, the SAE expects {d_in}")
    if not torch.isfinite(x).all():
        raise NapkitError("activations contain NaN or infinity")
    return x


def _batches(acts, batch_size: int, steps: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    if isinstance(acts, torch.Tensor):
        rows = _finite_rows(acts)
        for _ in range(steps):
            yield rows[torch.randint(0, len(rows), (batch_size,), generator=gen)]
    else:
        for i, batch in enumerate(acts):
            if i >= steps:
                return
            yield _finite_rows(batch)


def train_sae(
    acts: torch.Tensor | Iterable[torch.Tensor],
    d_sae: int,
    *,
    kind: str = "topk",
    k: int | None = None,
    l1_coeff: float = 1e-3,
    lr: float = 2e-3,
    steps: int = 2000,
    batch_size: int = 256,
    seed: int = 0,
    resample_every: int = 200,
    resample_below: float = 1e-3,
    reset_adam: bool = True,
    hook_name: str = "",
    model_fingerprint: str | None = None,
) -> tuple[SparseAutoencoder, TrainLog]:
    """Train an SAE on a [rows, d_in] tensor (sampled with replacement) or an iterator of batches.

    b_dec starts at the mean of the first batch and decoder rows at randomly chosen
    centred rows of it, so every feature starts where data lies; the encoder is then
    scaled so that the first batch's reconstruction has the least-squares scale. Every
    ``resample_every`` steps (0: never), during the first 80% of training, features that
    fired on at most a fraction ``resample_below`` of the rows seen since the last check
    (0: only those that never fired) restart at the worst-reconstructed rows of the batch
    (Bricken et al.'s resampling, simplified); with ``reset_adam`` their Adam moments are
    zeroed too, so stale moments do not push them straight back.

    Why a frequency and not "never fired": a feature that fires on a fraction p of tokens
    is silent on n held-out tokens with probability about exp(−n p), so rare features
    count as dead on a held-out set. On the tiny model's block 2 (512 features, k = 32,
    3000 steps, 4000 held-out tokens; seeds 0, 1, 2) resampling only never-fired features
    left 0.109 / 0.098 / 0.072 of the features dead on held-out tokens (FVU 0.003-0.004);
    ``resample_below`` = 1e-3 with ``reset_adam`` leaves 0.004 / 0.021 / 0.006 (FVU
    0.012 / 0.016 / 0.011), see benchmarks/results/lm_methods.md.
    """
    if not 0.0 <= resample_below < 1.0:
        raise NapkitError(f"resample_below is a fraction of rows in [0, 1), got {resample_below}")
    gen = torch.Generator().manual_seed(seed)
    stream = _batches(acts, batch_size, steps, gen)
    first = next(stream, None)
    if first is None or len(first) == 0:
        raise NapkitError("no activations to train the SAE on")
    sae = SparseAutoencoder(first.shape[1], d_sae, kind, k, seed, hook_name, model_fingerprint)
    with torch.no_grad():
        sae.b_dec.copy_(first.mean(0))
        centred = first - sae.b_dec
        picks = torch.randint(0, len(first), (d_sae,), generator=gen)
        noise = 0.1 * centred.std() * torch.randn(d_sae, first.shape[1], generator=gen)
        sae.W_dec.copy_(centred[picks] + noise)
        sae.normalise_decoder()
        sae.W_enc.copy_(sae.W_dec.T)
        _fit_encoder_scale(sae, first)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    log = TrainLog()
    fires = torch.zeros(d_sae)
    window_rows = 0

    def step(x: torch.Tensor) -> None:
        nonlocal window_rows
        x = _finite_rows(x, sae.d_in)
        f = sae.encode(x)
        err = (sae.decode(f) - x).pow(2).sum(-1)
        loss = err.mean() + (l1_coeff * f.sum(-1).mean() if kind == "l1" else 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sae.normalise_decoder()
        log.steps, log.rows = log.steps + 1, log.rows + len(x)
        log.losses.append(float(loss.detach()))
        fires.add_((f.detach() > 0).sum(0))
        window_rows += len(x)
        if resample_every and log.steps % resample_every == 0 and log.steps < RESAMPLE_UNTIL * steps:
            rare = fires <= resample_below * window_rows  # at 0: the features that never fired
            _resample_dead(sae, rare, x, err.detach(), opt if reset_adam else None)
            fires.zero_()
            window_rows = 0

    step(first)
    for batch in stream:
        step(batch)
    sae.eval()
    return sae, log


@torch.no_grad()
def _fit_encoder_scale(sae: SparseAutoencoder, x: torch.Tensor) -> None:
    """Scale W_enc so the first batch's reconstruction has the least-squares scale.

    With unit decoder rows and W_enc = W_decᵀ the k codes are about as large as the
    activation itself and their sum overshoots it by about k times (on a residual stream of
    norm ~400, the first loss was 200× the variance and Adam at lr 1e-3 needed thousands of
    steps to shrink the encoder). A positive scale leaves which features fire unchanged.
    """
    centred = x - sae.b_dec
    recon = sae.encode(x) @ sae.W_dec
    denom = float(recon.pow(2).sum())
    if denom > 0:
        scale = float((recon * centred).sum()) / denom
        if scale > 0:
            sae.W_enc.mul_(scale)


@torch.no_grad()
def _resample_dead(
    sae: SparseAutoencoder,
    dead: torch.Tensor,
    x: torch.Tensor,
    err: torch.Tensor,
    opt: torch.optim.Adam | None = None,
) -> None:
    """Point dead features at the rows the SAE reconstructs worst; zero their Adam moments."""
    n = int(dead.sum())
    if n == 0:
        return
    worst = err.topk(min(n, len(x))).indices
    idx = dead.nonzero().squeeze(1)[: len(worst)]
    directions = x[worst] - sae.b_dec
    directions /= directions.norm(dim=1, keepdim=True).clamp(min=1e-12)
    sae.W_dec[idx] = directions
    alive_norm = sae.W_enc[:, ~dead].norm(dim=0).mean() if bool((~dead).any()) else 1.0
    sae.W_enc[:, idx] = directions.T * alive_norm
    sae.b_enc[idx] = 0.0
    if opt is not None:
        for param, where in ((sae.W_dec, (idx,)), (sae.W_enc, (slice(None), idx)), (sae.b_enc, (idx,))):
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in opt.state.get(param, {}):
                    opt.state[param][moment][where] = 0.0


@torch.no_grad()
def sae_metrics(sae: SparseAutoencoder, acts: torch.Tensor) -> SAEMetrics:
    """FVU, L0 and dead fraction of an SAE on [rows, d_in] activations."""
    x = _finite_rows(acts, sae.d_in)
    f = sae.encode(x)
    resid = (sae.decode(f) - x).pow(2).sum()
    total = (x - x.mean(0)).pow(2).sum().clamp(min=1e-30)
    active = f > 0
    l0 = float(active.sum(1).float().mean())
    return SAEMetrics(float(resid / total), l0, float((~active.any(0)).float().mean()))


def _next_token_ce(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None) -> float:
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    keep = torch.ones_like(nll, dtype=torch.bool) if mask is None else mask[:, 1:].bool()
    return float(nll[keep].mean())


@torch.no_grad()
def ce_recovered(
    model: nn.Module,
    sae: SparseAutoencoder,
    module: nn.Module | str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> dict[str, float]:
    """Next-token cross-entropy clean, with the SAE's reconstruction spliced in, and zero-ablated.

    recovered = (CE_zero − CE_sae) / (CE_zero − CE_clean): 1 when the splice costs
    nothing, 0 when it is as bad as deleting the activation.
    """
    mod = model.get_submodule(module) if isinstance(module, str) else module
    ids = torch.as_tensor(input_ids).long()
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise NapkitError(f"cross-entropy needs [batch, seq >= 2] token ids, got {tuple(ids.shape)}")
    if attention_mask is not None and int(last_positions(attention_mask, ids).min()) < 1:
        raise NapkitError("every sequence needs at least two real tokens")

    def splice(out: torch.Tensor) -> torch.Tensor:
        if out.shape[-1] != sae.d_in:
            raise NapkitError(f"the module outputs width {out.shape[-1]}, the SAE expects {sae.d_in}")
        return sae(out.float()).to(out.dtype)

    clean = _next_token_ce(model, ids, attention_mask)
    with hooked([(mod, "post", splice)]):
        spliced = _next_token_ce(model, ids, attention_mask)
    with hooked([(mod, "post", torch.zeros_like)]):
        zero = _next_token_ce(model, ids, attention_mask)
    gap = zero - clean
    return {
        "ce_clean": clean,
        "ce_sae": spliced,
        "ce_zero": zero,
        "ce_recovered": float("nan") if gap == 0 else (zero - spliced) / gap,
    }

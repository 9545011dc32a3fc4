"""Minimal NAP specifications: the coarsest NAP that still proves a property.

Fewer constrained neurons means more inputs follow the NAP (higher recall) while the
proof still holds ("Learning Minimal Neural Specifications", Geng et al., 2024). Two
methods, both starting from a NAP that proves the property and both re-verifying the NAP
they return:

- ``greedy`` (conservative): try to drop blocks of constraints, halving the block on
  failure down to single neurons, the verifier deciding every step;
- ``ranked`` (fast): order the constraints (data statistics, or how much of a neuron's
  range the constraint cuts off) and binary-search the longest prefix that can be dropped.

Constraints that bound propagation shows to hold on the whole region anyway are dropped
first, with no verifier call: they do not change the region.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.bounds import propagate
from napkit.verify.engine import VerificationResult, verify_robustness
from napkit.verify.properties import InputBox, Phases, check_phases, real_array


@dataclass
class MinimalNAP:
    """A smaller NAP of ``label`` that still proves robustness over the region."""

    label: int
    phases: Phases
    original: int  # constrained neurons before
    kept: int  # constrained neurons after
    implied: int  # dropped for free: bounds show they hold on the region anyway
    calls: int  # verifier calls
    seconds: float
    method: str
    final: VerificationResult  # the re-verification of the returned NAP

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "method": self.method,
            "original": self.original,
            "kept": self.kept,
            "kept_fraction": self.kept / self.original if self.original else 1.0,
            "implied": self.implied,
            "calls": self.calls,
            "seconds": round(self.seconds, 3),
            "final": self.final.verdict,
        }


def _flat(phases: Phases) -> np.ndarray:
    return np.concatenate([np.asarray(p, np.int8) for p in phases])


def _split(flat: np.ndarray, sizes) -> Phases:
    off = np.concatenate([[0], np.cumsum(sizes)])
    return [flat[off[k] : off[k + 1]].copy() for k in range(len(sizes))]


def cut_share(net: ReluNetwork, box: InputBox, phases: Phases) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, the share of its pre-activation range (without the NAP) that its phase cuts off.

    0 means the bounds already imply the phase on the whole region. Returns (share, implied).
    """
    phases = check_phases(net.layer_sizes, phases) or [np.zeros(n, np.int8) for n in net.layer_sizes]
    b = propagate(net, box, None)
    lo, up = np.concatenate(b.lower), np.concatenate(b.upper)
    flat = _flat(phases)
    width = np.maximum(up - lo, 1e-12)
    share = np.where(
        flat > 0, np.clip(-lo, 0, None) / width, np.where(flat < 0, np.clip(up, 0, None) / width, 0.0)
    )
    implied = (flat != 0) & (share <= 0)
    return share, implied


def minimize_nap(
    net: ReluNetwork,
    box: InputBox,
    label: int,
    phases: Phases,
    method: str = "ranked",
    priority: np.ndarray | None = None,
    timeout: float = 10.0,
    budget: float = 300.0,
) -> MinimalNAP:
    """Drop constraints of ``phases`` while ``verify_robustness`` still answers ``verified``.

    ``priority`` (one value per hidden neuron, higher is dropped first) orders the
    candidates; by default the constraints that cut off the least of a neuron's range go
    first. ``timeout`` bounds each verifier call (an ``unknown`` keeps the neuron) and
    ``budget`` the whole search.
    """
    if method not in ("greedy", "ranked"):
        raise NapkitError(f"method must be 'greedy' or 'ranked', not {method!r}")
    if priority is not None:
        priority = real_array(priority, "priority").reshape(-1)
        if priority.size != net.n_neurons or not np.isfinite(priority).all():
            raise NapkitError(
                f"priority must give one finite number per hidden neuron ({net.n_neurons}), "
                f"got {priority.size}"
            )
    phases = check_phases(net.layer_sizes, phases)
    if phases is None:
        raise NapkitError("there is no NAP to minimise")
    t0 = time.monotonic()
    stop = t0 + budget
    calls = 0

    def proves(flat: np.ndarray) -> bool:
        nonlocal calls
        calls += 1
        left = max(0.05, min(timeout, stop - time.monotonic()))
        res = verify_robustness(net, box, label, _split(flat, net.layer_sizes), timeout=left)
        return res.verdict == "verified"

    full = _flat(phases)
    first = verify_robustness(net, box, label, phases, timeout=timeout)
    calls += 1
    if first.verdict != "verified":
        raise NapkitError(
            f"the NAP of class {label} does not prove the property here ({first.verdict}: "
            f"{first.reason}); there is nothing to minimise"
        )
    share, implied = cut_share(net, box, phases)
    current = np.where(implied, 0, full).astype(np.int8)
    cands = np.flatnonzero(current)
    order = -priority[cands] if priority is not None else share[cands]
    cands = cands[np.argsort(order, kind="stable")]
    if method == "ranked":
        current = _ranked(current, cands, proves, stop)
    else:
        current = _greedy(current, cands, proves, stop)
    final = verify_robustness(net, box, label, _split(current, net.layer_sizes), timeout=max(timeout, 1.0))
    calls += 1
    if final.verdict != "verified":  # never report a NAP that was not re-verified
        current, final = full.copy(), first
    return MinimalNAP(
        label,
        _split(current, net.layer_sizes),
        int((full != 0).sum()),
        int((current != 0).sum()),
        int(implied.sum()),
        calls,
        time.monotonic() - t0,
        method,
        final,
    )


def _ranked(current: np.ndarray, cands: np.ndarray, proves, stop: float) -> np.ndarray:
    """Largest k such that dropping the first k candidates still proves (bisection)."""
    lo, hi = 0, len(cands)  # dropping lo candidates is known to prove
    best = current.copy()
    while lo < hi and time.monotonic() < stop:
        mid = (lo + hi + 1) // 2
        trial = current.copy()
        trial[cands[:mid]] = 0
        if proves(trial):
            lo, best = mid, trial
        else:
            hi = mid - 1
    return best


def _greedy(current: np.ndarray, cands: np.ndarray, proves, stop: float) -> np.ndarray:
    """Drop blocks of candidates, halving the block when the proof fails."""
    pending = list(cands)
    block = max(1, len(pending) // 4)
    i = 0
    while i < len(pending) and time.monotonic() < stop:
        chunk = pending[i : i + block]
        trial = current.copy()
        trial[chunk] = 0
        if proves(trial):
            current = trial
            del pending[i : i + block]
        elif block > 1:
            block = max(1, block // 2)
        else:
            i += 1
    return current

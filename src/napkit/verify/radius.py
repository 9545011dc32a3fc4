"""Radius search: the largest L-inf radius around a point verified robust, by bisection.

Robustness over ``linf_ball(x0, eps)`` is monotone in ``eps``: verified at ``eps``
implies verified at every smaller radius, and a counterexample at distance ``r`` from
``x0`` falsifies every radius ``>= r``. The search keeps a bracket ``lower < upper``
where ``lower`` is verified and ``upper`` is falsified or unknown, halves it until it
is narrower than ``tol`` (1e-4 by default), and shrinks ``upper`` to the distance of
each counterexample found on the way. An ``unknown`` (per-query timeout) counts as not
verified: the bracket stays sound (``lower`` is always proved) but ``upper`` may then
be larger than the true radius of a complete verifier.

With a NAP (``phases``) the region holds fewer inputs, so whatever radius is verified
without it is verified with it: :func:`radius_with_and_without_nap` starts the NAP
search at the plain radius (the paper's "verifiable bound larger with the NAP").
A ``vacuous`` answer (no input of the ball follows the NAP) proves nothing: the radius is then 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.engine import VerificationResult, verify_property
from napkit.verify.properties import Phases, Property, linf_ball, robustness_spec

HOLDS = ("verified",)  # a vacuous ball proves nothing about the radius
Verifier = Callable[[ReluNetwork, Property, float], VerificationResult]


@dataclass(frozen=True)
class RadiusStep:
    eps: float
    verdict: str
    seconds: float
    reason: str


@dataclass
class RadiusResult:
    """Bracket ``lower <= radius < upper`` of the largest verified radius.

    ``lower`` is verified (0.0 also when even the point itself is not robust: then
    ``upper`` is 0.0 too and ``upper_verdict`` says why). ``upper_verdict`` is the verdict
    at ``upper``: ``falsified``, ``unknown``, or ``verified`` when the search stopped at
    ``eps_max`` with everything proved (then ``lower == upper == eps_max``).
    """

    lower: float
    upper: float
    upper_verdict: str
    with_nap: bool
    steps: list[RadiusStep] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def radius(self) -> float:
        return self.lower

    @property
    def width(self) -> float:
        return self.upper - self.lower

    def to_dict(self) -> dict:
        return {
            "lower": self.lower, "upper": self.upper, "upper_verdict": self.upper_verdict,
            "with_nap": self.with_nap, "seconds": round(self.seconds, 4),
            "steps": [[s.eps, s.verdict, round(s.seconds, 4)] for s in self.steps],
        }


def verified_radius(
    net: ReluNetwork,
    x0: np.ndarray,
    label: int,
    phases: Phases | None = None,
    timeout: float = 10.0,
    tol: float = 1e-4,
    eps_max: float = 1.0,
    lo: float = 0.0,
    hi: float = 1.0,
    known_lower: float = 0.0,
    verifier: Verifier | None = None,
) -> RadiusResult:
    """Bisect for the largest ``eps <= eps_max`` with robustness of ``label`` proved on the ball.

    ``timeout`` is per query; ``known_lower`` is a radius already known to be verified
    (it is not queried again); ``verifier(net, prop, timeout)`` defaults to napkit's
    :func:`verify_property` (pass :func:`verify_property_marabou` to bisect with Marabou),
    which runs its attack only after a verified step (a larger radius comes next, likely
    falsified); after a falsified one the smaller radius goes straight to bounds and MILP.
    """
    if not tol > 0:
        raise NapkitError(f"the tolerance must be > 0, got {tol}")
    if not 0 <= known_lower <= eps_max:
        raise NapkitError(f"known_lower {known_lower} must lie in [0, eps_max={eps_max}]")
    x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    spec = robustness_spec(label, net.n_outputs)
    t0 = time.monotonic()
    steps: list[RadiusStep] = []

    def ask(eps: float) -> VerificationResult:
        prop = Property(linf_ball(x0, eps, lo, hi), spec, phases)
        if verifier is not None:
            res = verifier(net, prop, timeout)
        else:  # attack first only after a proof (the next radius is larger); the MILP is complete
            res = verify_property(net, prop, timeout, attack=not steps or steps[-1].verdict in HOLDS)
        steps.append(RadiusStep(float(eps), res.verdict, res.seconds, res.reason))
        return res

    def result(lower, upper, verdict):
        return RadiusResult(float(lower), float(upper), verdict, phases is not None, steps,
                            time.monotonic() - t0)

    def shrink(res: VerificationResult, eps: float) -> float:
        """A counterexample at distance r < eps falsifies every radius >= r."""
        if res.verdict == "falsified" and res.counterexample is not None:
            return min(eps, float(np.abs(res.counterexample - x0).max()))
        return eps

    lower = float(known_lower)
    if lower == 0.0:
        res = ask(0.0)
        if res.verdict not in HOLDS:
            return result(0.0, 0.0, res.verdict)
    res = ask(eps_max)
    if res.verdict in HOLDS:
        return result(eps_max, eps_max, "verified")
    upper, upper_verdict = max(shrink(res, eps_max), lower), res.verdict
    while upper - lower > tol:
        mid = (lower + upper) / 2
        res = ask(mid)
        if res.verdict in HOLDS:
            lower = mid
        else:
            upper, upper_verdict = max(shrink(res, mid), lower), res.verdict
    return result(lower, upper, upper_verdict)


def radius_with_and_without_nap(
    net: ReluNetwork,
    x0: np.ndarray,
    label: int,
    phases: Phases,
    timeout: float = 10.0,
    tol: float = 1e-4,
    eps_max: float = 1.0,
    lo: float = 0.0,
    hi: float = 1.0,
    verifier: Verifier | None = None,
) -> tuple[RadiusResult, RadiusResult]:
    """(plain radius, radius under the NAP ``phases``); the second starts at the first's ``lower``."""
    plain = verified_radius(net, x0, label, None, timeout, tol, eps_max, lo, hi, 0.0, verifier)
    nap = verified_radius(net, x0, label, phases, timeout, tol, eps_max, lo, hi, plain.lower, verifier)
    return plain, nap

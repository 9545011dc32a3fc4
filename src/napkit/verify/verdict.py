"""The one result type of every verification route (napkit's engine, Marabou, radius).

Verdicts: ``verified`` (the property holds on a non-empty region), ``falsified`` (a
counterexample re-checked by an exact forward pass), ``vacuous`` (no input of the region
follows the phases), ``unknown``; VNN-LIB answers map them to ``unsat``/``sat``/``unknown``.

Below the verdict, every check of one disjunct or one subregion (branch and bound, its leaf
LPs, a disjunct's MILP, the exact tail of a NAP query) answers with one ``Outcome``:

* ``refuted``: no violating point exists in that (sub)region (sound bounds, or an LP/MILP
  relaxed by ``PROOF_SLACK`` that is infeasible; an empty region counts);
* ``found``: a counterexample, re-checked by the exact float64 pass before it counts;
* ``unknown``: undecided (time out, solver trouble, a solution that failed the re-check, or
  a violating point of a relaxation that is no input of the query).

HiGHS's own statuses (``milp.MilpResult.status``: infeasible / feasible / timeout / error)
stay inside ``milp.py`` and its direct readers, which translate them into an ``Outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Verdict = Literal["verified", "falsified", "vacuous", "unknown"]
VERDICTS: tuple[str, ...] = ("verified", "falsified", "vacuous", "unknown")
VNNLIB_ANSWER = {"verified": "unsat", "vacuous": "unsat", "falsified": "sat", "unknown": "unknown"}

Outcome = Literal["refuted", "found", "unknown"]
REFUTED: Outcome = "refuted"  # no violating point in the (sub)region
FOUND: Outcome = "found"  # a re-checked counterexample
UNKNOWN: Outcome = "unknown"  # undecided
OUTCOMES: tuple[Outcome, ...] = (REFUTED, FOUND, UNKNOWN)


@dataclass
class VerificationResult:
    verdict: str  # verified / falsified / unknown / vacuous (sat / unsat / unknown for VNN-LIB)
    reason: str
    seconds: float
    counterexample: np.ndarray | None = None
    logits: np.ndarray | None = None
    strict: bool | None = None
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "result": self.verdict,
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
            "counterexample": None if self.counterexample is None else self.counterexample.tolist(),
            "strict": self.strict,
            **{k: v for k, v in self.stats.items() if isinstance(v, int | float | str | bool)},
        }

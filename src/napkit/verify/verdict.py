"""The one result type of every verification route (napkit's engine, Marabou, radius).

Verdicts: ``verified`` (the property holds on a non-empty region), ``falsified`` (a
counterexample re-checked by an exact forward pass), ``vacuous`` (no input of the region
follows the phases), ``unknown``; VNN-LIB answers map them to ``unsat``/``sat``/``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Verdict = Literal["verified", "falsified", "vacuous", "unknown"]
VERDICTS: tuple[str, ...] = ("verified", "falsified", "vacuous", "unknown")
VNNLIB_ANSWER = {"verified": "unsat", "vacuous": "unsat", "falsified": "sat", "unknown": "unknown"}


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

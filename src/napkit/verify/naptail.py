"""The tail of a NAP query behind a narrow layer, decided exactly on few units.

A NAP at δ = 0.99 fixes most neurons of the deep layers *inactive*: on mnist-net_256x6 the
fifth hidden layer keeps 1 to 3 units that are not fixed inactive for every class (256x4:
1 to 7 in the third). An inactive unit outputs exactly 0, so behind such a layer k the
logits are a function of those few post-activations ``t`` alone. Every input of the region
maps ``t`` into the box ``[relu(lo_k), relu(up_k)]`` of its bounds, and the later layers'
phases hold, so the region's image lies inside the region of the *tail network*

    t in box,  z_{k+1} = W_{k+1}[:, units] t + b_{k+1},  ...,  phases of layers > k,

and a disjunct with no point in the tail's region (its MILP, binaries for the tail's free
neurons only, violation rows relaxed by ``PROOF_SLACK``) has none in the query's.

The tail is exact, the box is the only relaxation. On the NAP paper's whole-domain queries
(δ = 0.99, ``--all-samples``) the symbolic box suffices for the 12 classes of 256x4/256x6
the region's LP proves (one or two units; 0.07-0.13 s against 3-9 s). On 256x6 class 8
(563 unstable neurons, units 11 and 24 of the fifth layer) it refutes rivals 0, 2 and 9
and says what the others need (on a grid): rival 1 a ``t`` of at least (121, 18), rival 7
at least 375 in the first unit, where the bounds of the two units reach 9675 and 81 even after
the region's LP (the data reach 17.5 and 1.5, pattern-fixed LP walks 57 and 4).
"""

from __future__ import annotations

import time

import numpy as np

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds, propagate
from napkit.verify.milp import MilpEncoding
from napkit.verify.properties import InputBox, Phases
from napkit.verify.tolerances import PROOF_SLACK
from napkit.verify.verdict import REFUTED, UNKNOWN, Outcome


def narrowest_layer(phases: Phases, n_hidden: int, max_width: int) -> tuple[int, np.ndarray] | None:
    """The hidden layer (before the last) with the fewest units not fixed inactive, the
    deepest on ties, and those units; None when every layer has more than ``max_width``.
    A layer fixed inactive throughout keeps its first unit (its box is [0, 0]: the logits
    behind it are constant)."""
    best: tuple[int, np.ndarray] | None = None
    for k in range(n_hidden - 1):
        units = np.flatnonzero(np.asarray(phases[k]) >= 0)
        units = units if units.size else np.array([0])
        if units.size <= max_width and (best is None or units.size <= best[1].size):
            best = (k, units)
    return best


def tail_network(net: ReluNetwork, k: int, units: np.ndarray) -> ReluNetwork:
    """The layers after hidden layer ``k``, fed by the post-activations of ``units`` only."""
    ws = (net.weights[k + 1][:, units], *net.weights[k + 2:])
    return ReluNetwork(ws, tuple(net.biases[k + 1:]), tuple(net.layer_names[k + 1:]))


def tail_box(bounds: Bounds, k: int, units: np.ndarray) -> InputBox:
    """Where the post-activations of ``units`` of layer ``k`` lie on the region: relu of the bounds."""
    return InputBox(np.maximum(bounds.lower[k][units], 0.0), np.maximum(bounds.upper[k][units], 0.0))


class Tail:
    """The tail region of a query behind layer ``k``: its network, box, phases and bounds."""

    def __init__(self, net: ReluNetwork, bounds: Bounds, phases: Phases, k: int, units: np.ndarray):
        self.k, self.units = k, units
        self.net = tail_network(net, k, units)
        self.box = tail_box(bounds, k, units)
        self.phases = [np.asarray(p, np.int8) for p in phases[k + 1:]]
        self.bounds = propagate(self.net, self.box, self.phases)
        self._enc: MilpEncoding | None = None

    @property
    def empty(self) -> bool:
        """No tail input follows the later phases: the query's region is empty."""
        return bool(self.bounds.vacuous)

    def disjunct(self, c: np.ndarray, d: np.ndarray, time_limit: float, stop=None
                 ) -> tuple[Outcome, np.ndarray | None]:
        """(outcome, a tail input that violates ``C y <= d`` when the MILP gave one).

        ``refuted``: the tail's MILP (relaxed by ``PROOF_SLACK``) is infeasible, so no input of
        the query violates the disjunct. Never ``found``: the tail's box over-approximates the
        narrow layer, so a violating tail input is no counterexample of the query (``unknown``,
        with that input: what a counterexample would need behind the narrow layer)."""
        if self._enc is None:
            self._enc = MilpEncoding(self.net, self.bounds, slack=PROOF_SLACK)
        res = self._enc.solve(c, d, time_limit=time_limit, stop=stop)
        if res.status == "infeasible":
            return REFUTED, None
        return UNKNOWN, res.x


def refute_by_tail(tail: Tail, disjuncts: list[tuple[np.ndarray, np.ndarray]], deadline: float,
                   stop=None) -> tuple[list[bool], dict[int, list[float]]]:
    """Per disjunct: refuted on the tail region? And for those that are not, the tail
    input the MILP found (what a counterexample would need behind the narrow layer)."""
    if tail.empty:
        return [True] * len(disjuncts), {}
    refuted, needs = [], {}
    for i, (c, d) in enumerate(disjuncts):
        left = deadline - time.monotonic()
        if left <= 0 or (stop is not None and stop()):
            refuted.append(False)
            continue
        status, t = tail.disjunct(c, d, left, stop)
        refuted.append(status == REFUTED)
        if t is not None:
            needs[i] = [round(float(v), 3) for v in t]
    return refuted, needs

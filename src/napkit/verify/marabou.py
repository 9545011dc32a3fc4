"""Marabou backend: the same ``Property`` objects solved by maraboupy (optional extra).

The encoding is the one of Geng et al.'s NAP experiments, built directly from the
``ReluNetwork`` (no ONNX round trip). Variables, in this order: the inputs, then per
hidden layer its pre-activations (the ReLU "backward" variables, in ``reluList`` order)
and post-activations (the "forward" variables), then the outputs. Each affine layer is
one equation per unit, each hidden unit one ReLU constraint. The input box gives the
input bounds; a NAP phase is a bound on the pre-activation variable (active: lower 0,
inactive: upper 0). The violation region ``C_k y <= d_k`` is asked one disjunct at a
time (for robustness: one query per competing class).

Verdicts: every disjunct ``unsat`` -> ``verified`` (or ``vacuous`` when the query
without any output constraint is ``unsat`` too); ``sat`` -> the input values of
Marabou's solution are re-checked by napkit's exact float64 forward pass
(:func:`check_point`) and reported ``falsified`` only when that confirms them; a
timeout or an error -> ``unknown`` with the reason.

maraboupy 2.0.0 (``pip install 'maraboupy==2.0.0'`` or ``pip install 'napkit[marabou]'``)
imports and solves with numpy 2.x (it only uses numpy in its network parsers, which
this module does not call). Marabou's timeout is whole seconds and does not cover its
preprocessing; Marabou is not interruptible from Python.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify.attack import check_point
from napkit.verify.properties import Phases, Property, check_phases, merge_phases, robustness_spec
from napkit.verify.verdict import VerificationResult

MARGIN = 1e-5  # margin of the re-solve when a solution fails the exact re-check (Marabou tolerances ~1e-6)


def marabou_core():
    """The ``maraboupy.MarabouCore`` module, or a NapkitError saying how to install it."""
    try:
        with warnings.catch_warnings():  # "Tensorflow parser is unavailable" is noise here
            warnings.simplefilter("ignore")
            from maraboupy import MarabouCore
    except Exception as err:  # ImportError, or a binary built against another numpy ABI
        raise NapkitError(
            "the Marabou backend needs maraboupy: pip install 'maraboupy==2.0.0' "
            f"(or napkit[marabou]); importing it failed: {type(err).__name__}: {err}"
        ) from err
    return MarabouCore


def marabou_available() -> bool:
    try:
        marabou_core()
    except NapkitError:
        return False
    return True


@contextlib.contextmanager
def _quiet():
    """Silence Marabou's C++ prints on file descriptors 1 and 2 (its own redirect leaks)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


@dataclass(frozen=True)
class MarabouLayout:
    """Variable numbering of the encoding."""

    inputs: np.ndarray
    pre: tuple[np.ndarray, ...]
    post: tuple[np.ndarray, ...]
    outputs: np.ndarray
    n_vars: int


def layout(net: ReluNetwork) -> MarabouLayout:
    nxt = net.n_inputs
    inputs = np.arange(nxt)
    pre, post = [], []
    for n in net.layer_sizes:
        pre.append(np.arange(nxt, nxt + n))
        post.append(np.arange(nxt + n, nxt + 2 * n))
        nxt += 2 * n
    outputs = np.arange(nxt, nxt + net.n_outputs)
    return MarabouLayout(inputs, tuple(pre), tuple(post), outputs, int(nxt + net.n_outputs))


def build_query(
    net: ReluNetwork,
    prop: Property,
    disjunct: int | None,
    margin: float = 0.0,
):
    """The InputQuery of one disjunct (``None``: no output constraint, only the region).

    ``margin`` > 0 asks for a point strictly inside (active z >= margin, inactive
    z <= -margin, C y <= d - margin), used to repair solutions on a boundary.
    """
    core = marabou_core()
    lay = layout(net)
    ipq = core.InputQuery()
    ipq.setNumberOfVariables(lay.n_vars)
    for i, v in enumerate(lay.inputs):
        ipq.markInputVariable(int(v), i)
        ipq.setLowerBound(int(v), float(prop.box.lower[i]))
        ipq.setUpperBound(int(v), float(prop.box.upper[i]))
    for i, v in enumerate(lay.outputs):
        ipq.markOutputVariable(int(v), i)
    prev = lay.inputs
    n_layers = len(net.weights)
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        target = lay.pre[k] if k < n_layers - 1 else lay.outputs
        for i in range(w.shape[0]):  # sum_j w_ij a_j - z_i = -b_i
            eq = core.Equation(core.Equation.EQ)
            for j in np.flatnonzero(w[i]):
                eq.addAddend(float(w[i, j]), int(prev[j]))
            eq.addAddend(-1.0, int(target[i]))
            eq.setScalar(-float(b[i]))
            ipq.addEquation(eq)
        if k < n_layers - 1:
            for zb, af in zip(lay.pre[k], lay.post[k], strict=True):
                core.addReluConstraint(ipq, int(zb), int(af))
            prev = lay.post[k]
    _phase_bounds(ipq, lay, prop.phases, margin)
    if disjunct is not None:
        c, d = prop.output.disjuncts[disjunct]
        for row, rhs in zip(c, d, strict=True):
            eq = core.Equation(core.Equation.LE)
            for j in np.flatnonzero(row):
                eq.addAddend(float(row[j]), int(lay.outputs[j]))
            eq.setScalar(float(rhs) - margin)
            ipq.addEquation(eq)
    return ipq, lay


def _phase_bounds(ipq, lay: MarabouLayout, phases: Phases | None, margin: float) -> None:
    if phases is None:
        return
    for p, zs in zip(phases, lay.pre, strict=True):
        for u in np.flatnonzero(p > 0):
            ipq.setLowerBound(int(zs[u]), margin)
        for u in np.flatnonzero(p < 0):
            ipq.setUpperBound(int(zs[u]), -margin)


def _solve(ipq, seconds: float, verbosity: int = 0):
    """(exit code, values, timed out) for one query with a whole-second timeout >= 1."""
    core = marabou_core()
    opts = core.Options()
    opts._timeoutInSeconds = max(1, int(math.ceil(seconds)))
    opts._verbosity = verbosity
    with _quiet():
        code, vals, stats = core.solve(ipq, opts, "")
    timed_out = code == "TIMEOUT" or bool(stats.hasTimedOut())
    return code, vals, timed_out


def verify_property_marabou(
    net: ReluNetwork,
    prop: Property,
    timeout: float = 60.0,
    check_vacuity: bool = True,
) -> VerificationResult:
    """Decide ``prop`` with Marabou: one query per disjunct of the violation, same verdicts.

    ``timeout`` covers the whole property; each query gets what is left (Marabou rounds
    it up to whole seconds). ``check_vacuity`` asks, when every disjunct is ``unsat``,
    whether any input of the box follows the phases (else ``vacuous``).
    """
    marabou_core()
    prop = prop.check(net.layer_sizes, net.n_inputs, net.n_outputs)
    t0 = time.monotonic()
    deadline = t0 + float(timeout)
    stats: dict = {"backend": "marabou", "queries": 0, "marabou_s": 0.0}

    def done(verdict, reason, ce=None):
        return VerificationResult(
            verdict, reason, time.monotonic() - t0,
            None if ce is None else ce.x, None if ce is None else ce.logits,
            None if ce is None else ce.strict, stats,
        )

    def run(disjunct, margin=0.0):
        left = deadline - time.monotonic()
        if left <= 0:
            return "TIMEOUT", {}, True
        ipq, lay = build_query(net, prop, disjunct, margin)
        t = time.monotonic()
        code, vals, timed_out = _solve(ipq, left)
        stats["queries"] += 1
        stats["marabou_s"] += time.monotonic() - t
        return code, (np.array([vals[int(v)] for v in lay.inputs]) if code == "sat" else None), timed_out

    witness = False
    reasons = []
    for k in range(len(prop.output.disjuncts)):
        code, x, timed_out = run(k)
        if code == "unsat":
            continue
        if code == "sat":
            witness = True
            ce = _confirm(net, prop, x)
            if ce is None:  # a point on a boundary: ask again strictly inside
                code2, x2, _ = run(k, MARGIN)
                ce = _confirm(net, prop, x2) if code2 == "sat" else None
            if ce is not None:
                return done("falsified", f"counterexample found by Marabou (disjunct {k})", ce)
            reasons.append(f"Marabou's solution for disjunct {k} failed the exact float64 re-check")
            continue
        reasons.append("timeout" if timed_out else f"Marabou returned {code} on disjunct {k}")
        if deadline - time.monotonic() <= 0:
            break
    if reasons:
        return done("unknown", "; ".join(dict.fromkeys(reasons)))
    if prop.phases is None or witness or not check_vacuity:
        return done("verified", "proved by Marabou (every disjunct unsat)")
    if check_point(net, prop.box, None, prop.phases, prop.box.center) is not None:
        return done("verified", "proved by Marabou (every disjunct unsat)")
    code, x, timed_out = run(None)
    if code == "unsat":
        return done("vacuous", "no input of the region follows the phases (Marabou unsat)")
    if code == "sat":
        if _confirm(net, prop, x, None) is None:  # on a boundary: ask again strictly inside
            code, x, timed_out = run(None, MARGIN)
        if code == "sat" and _confirm(net, prop, x, None) is not None:
            return done("verified", "proved by Marabou (every disjunct unsat)")
        return done("unknown", "property holds on the region (Marabou) but no point of the region passed "
                               "the exact float64 re-check")
    why = "timeout" if timed_out else f"Marabou returned {code}"
    return done("unknown", f"property holds on the region (Marabou) but the region's emptiness is "
                           f"undecided ({why})")


_OUTPUT = object()


def _confirm(net: ReluNetwork, prop: Property, x: np.ndarray | None, spec=_OUTPUT):
    """Exact re-check of Marabou's input values (as given, then clipped onto the box)."""
    if x is None:
        return None
    spec = prop.output if spec is _OUTPUT else spec
    ce = check_point(net, prop.box, spec, prop.phases, x)
    if ce is None:
        ce = check_point(net, prop.box, spec, prop.phases, prop.box.clip(x))
    return ce


def verify_disjoint_marabou(
    net: ReluNetwork, box, phases_i: Phases, phases_j: Phases, timeout: float = 60.0,
) -> VerificationResult:
    """Non-ambiguity with Marabou: ``verified`` when no x of ``box`` follows both phase sets."""
    marabou_core()
    t0 = time.monotonic()
    zeros = [np.zeros(n, np.int8) for n in net.layer_sizes]
    pi = check_phases(net.layer_sizes, phases_i) or zeros
    pj = check_phases(net.layer_sizes, phases_j) or zeros
    merged, conflict = merge_phases(pi, pj)
    stats: dict = {"backend": "marabou", "queries": 0}
    if conflict:
        return VerificationResult("verified", "the patterns fix some neuron to opposite phases",
                                  time.monotonic() - t0, stats=stats)
    prop = Property(box, robustness_spec(0, net.n_outputs), check_phases(net.layer_sizes, merged))
    prop = prop.check(net.layer_sizes, net.n_inputs, net.n_outputs)
    x, code, timed_out = None, "", False
    for margin in (0.0, MARGIN):
        ipq, lay = build_query(net, prop, None, margin)
        code, vals, timed_out = _solve(ipq, max(float(timeout) - (time.monotonic() - t0), 0.0))
        stats["queries"] += 1
        if code != "sat":
            break
        x = np.array([vals[int(v)] for v in lay.inputs])
        ce = _confirm(net, prop, x, None)
        if ce is not None:
            return VerificationResult("falsified", "an input follows both patterns (Marabou)",
                                      time.monotonic() - t0, ce.x, ce.logits, ce.strict, stats)
        if time.monotonic() - t0 >= timeout:
            break
    secs = time.monotonic() - t0
    if code == "unsat" and x is None:
        return VerificationResult("verified", "no input follows both (Marabou unsat)", secs, stats=stats)
    if code == "unsat":
        why = "Marabou's common point failed the exact float64 re-check"
    else:
        why = "timeout" if timed_out else f"Marabou returned {code}"
    return VerificationResult("unknown", why, secs, stats=stats)

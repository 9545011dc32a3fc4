"""Verdicts: bounds, then attack, then branch and bound and MILP, with vacuity checked and
counterexamples re-checked.

A query runs the stages of ``stages.STAGES`` in order until one decides it (with
``workers >= 2``, after stage 2 a forked process runs the optimised bounds and the
falsifying stages 4-7 while this one runs the proving ones, ``parallel.py``):

1. ``symbolic_bounds``: phase-aware bounds (an empty interval: vacuous); a positive lower
   bound of some row refutes its disjunct of the violation; ``data_points``: points given
   with the query (``witness`` rows, e.g. the mining data) that follow the phases and
   violate are counterexamples (``napfalsify.py``);
2. ``quick_attack``: plain queries (no phases) get a short attack first; ``nap_tail``: with
   phases and a deep layer of at most ``nap_tail_max_width`` units not fixed inactive, the
   exact tail behind it on the box of those units' bounds (``naptail.py``); ``nap_lp``: the
   LP relaxation of the NAP region per disjunct, then ``nap_tail_lp`` (the tail on the box
   that LP tightens); ``nap_milp``: with
   phases and many unstable (free) neurons, a MILP per open disjunct with binaries for the
   free neurons only, before the optimised bounds (``napfalsify.py``);
3. ``optimised_bounds``: alpha-beta-CROWN bounds with the phases as Lagrangian constraints
   (``optimized.py`` on the kernel of ``crown.py``);
4. ``first_patterns``: with phases, pattern-fixed LPs from those bounds' minimisers
   (``patternlp.py``: the network is linear on the activation region of a point);
5. ``lp_relaxation``: the LP relaxation of the phase polytope (infeasible: vacuous);
6. ``attack``, 7. ``patterns``: a projected-gradient attack, then pattern-fixed LPs from its
   iterates and the LP relaxation;
8. ``lp_tightening`` (only with ``tighten``); on deep networks without phases and with more
   than ``many_unstable`` unstable neurons: ``first_bab``, a short tree
   (``bab_first_share``), then ``milp_refine``: each unstable neuron's minimum and maximum
   by the dual bound of a compact MILP of the layers below, on the free cores
   (``refine.py``, ``compact_milp.py``; ``refine_share`` of the time left);
9. ``bab``: one branch-and-bound tree over every open disjunct (``bab.py``; a share of the
   time left, smaller with at most ``few_unstable`` unstable neurons; with phases and few
   enough unstable neurons a tree that keeps growing is handed to the MILP, ``handoff_open``),
   pattern-fixed LPs from its candidates when it stays undecided;
10. ``milp``: a MILP per disjunct still open (``CompactEncoding``), strongest bound first,
    each with an equal share of the rest of the time, the undecided ones asked again while
    their share doubles;
11. ``non_empty``: ``verified`` also needs the region to be non-empty (a witness point: one
    given by the caller, e.g. a training input that follows the NAP, the box centre,
    pattern-fixed and elastic LPs, the attack, or a feasibility MILP); otherwise the
    answer is ``vacuous`` or ``unknown``.

The budgets are named fields of ``VerifyOptions`` (``options.py``), the tolerances live in
``tolerances.py``. A counterexample is reported only after an exact float64 forward pass
(and onnxruntime, when an ONNX model is given) confirms it. MILP "infeasible" is trusted
up to HiGHS's feasibility tolerances (1e-6 integrality, 1e-7 primal); the proving MILP
relaxes the violation rows by ``PROOF_SLACK`` so that it errs on the side of ``unknown``.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from napkit.arrays import real_numbers
from napkit.errors import NapkitError
from napkit.network import ReluNetwork, onnx_logits
from napkit.verify.attack import check_point
from napkit.verify.bounds import propagate
from napkit.verify.options import VerifyOptions
from napkit.verify.properties import (
    InputBox,
    OutputSpec,
    Phases,
    Property,
    check_phases,
    merge_phases,
    robustness_spec,
)
from napkit.verify.query import Query
from napkit.verify.stages import FALSIFY_STAGES, FALSIFY_STAGES_PLAIN, PREFIX_STAGES, PROVE_STAGES, STAGES
from napkit.verify.threads import one_thread
from napkit.verify.tolerances import ONNX_AGREEMENT, PROOF_SLACK
from napkit.verify.verdict import VNNLIB_ANSWER, VerificationResult
from napkit.verify.vnnlib import VnnlibSpec, read_vnnlib

__all__ = ["PROOF_SLACK", "VNNLIB_ANSWER", "VerificationResult", "VerifyOptions", "verify_disjoint",
           "verify_property", "verify_robustness", "verify_vnnlib"]

_OPTION_NAMES = {f.name for f in fields(VerifyOptions)}


def make_options(options: VerifyOptions | None = None, timeout: float | None = None,
                 **flags) -> VerifyOptions:
    """``options`` (default: ``VerifyOptions()``) with ``timeout`` and named fields replaced."""
    unknown = sorted(set(flags) - _OPTION_NAMES)
    if unknown:
        raise NapkitError(f"unknown verification option(s): {', '.join(unknown)}")
    opts = options if options is not None else VerifyOptions()
    if timeout is not None:
        flags["timeout"] = float(timeout)
    return opts.with_(**flags) if flags else opts


def verify_property(
    net: ReluNetwork,
    prop: Property,
    timeout: float | None = None,
    onnx_model=None,
    witness: np.ndarray | None = None,
    options: VerifyOptions | None = None,
    **flags,
) -> VerificationResult:
    """Decide whether some x of ``prop.box`` following ``prop.phases`` violates ``prop.output``.

    ``options`` (a ``VerifyOptions``) or its fields as keywords: ``timeout`` (seconds,
    default 60), ``attack``, ``optimize`` (optimised bounds with the phases as split
    constraints), ``bab`` (branch and bound on them), ``patterns`` (pattern-fixed LPs),
    ``tighten`` (LP tightening before the MILP), ``workers`` (processes for the query;
    default the machine's cores) and the named budgets. ``witness``: a point believed to
    follow the phases (re-checked), so that a proof needs no search for one; or rows of
    points (e.g. the data a NAP was mined from): those that follow the phases and violate
    are counterexamples (re-checked), the others start the falsification (``napfalsify.py``).
    """
    opts = make_options(options, timeout, **flags)
    with one_thread():
        return _run_stages(net, prop, opts, onnx_model, witness)


def _run_stages(net, prop, opts: VerifyOptions, onnx_model, witness) -> VerificationResult:
    if not isinstance(net, ReluNetwork):
        raise NapkitError(f"net must be a ReluNetwork, not {type(net).__name__}")
    if not isinstance(prop, Property):
        raise NapkitError(f"prop must be a Property (box, output spec, phases), not {type(prop).__name__}")
    prop = prop.check(net.layer_sizes, net.n_inputs, net.n_outputs)
    if onnx_model is not None:
        _check_onnx_of(net, onnx_model, prop.box)
    q = Query(net, prop, opts, onnx_model)
    if witness is not None:
        # kept in its own dtype: the data stage converts a batch at a time to float64, inside
        # its share of the clock (a whole-dataset copy here ran outside any budget)
        pts = real_numbers(witness, "witness rows")
        if pts.size == 0 or pts.size % net.n_inputs:
            raise NapkitError(f"witness has {pts.size} values: not rows of the network's "
                              f"{net.n_inputs} inputs")
        pts = pts.reshape(-1, net.n_inputs)
        if len(pts) == 1:
            q.confirm_point(pts[0])
            q.stats["witness"] = "given" if q.witness is not None else "given point rejected"
        else:
            q.data = pts
    if opts.n_workers < 2 or mp.current_process().daemon:  # a daemon may not fork children
        return _in_order(q, STAGES)
    res = _in_order(q, PREFIX_STAGES)
    if res is not None:
        return res
    if not (q.open_ids and q.left() > opts.parallel_min_left):
        return _in_order(q, STAGES[len(PREFIX_STAGES):])
    from napkit.verify.parallel import Falsifier  # torch: loaded only when bounds left work

    falsifier = Falsifier(q, FALSIFY_STAGES if q.prop.phases is not None else FALSIFY_STAGES_PLAIN)
    q.stop = falsifier.poll
    q.helper_alive = falsifier.alive
    try:
        res = _in_order(q, PROVE_STAGES)
        while res is not None and res.verdict == "unknown" and q.found is None and q.left() > 0:
            time.sleep(0.05)  # the proof gave up early: the falsifier may still decide
            if not falsifier.alive():  # it has stopped: take what it sent, then stop waiting
                falsifier.poll()
                break
            falsifier.poll()
        if q.found is not None:
            return q.done("falsified", "counterexample found by the falsification process", q.found)
        return res
    finally:
        falsifier.close()
        q.stats["workers"] = 2


def _in_order(q: Query, stages) -> VerificationResult | None:
    for stage in stages:
        res = stage(q)
        if q.found is not None:
            return None  # the falsifier's counterexample wins (the caller reports it)
        if res is not None:
            return res
    return None


def _check_onnx_of(net: ReluNetwork, model, box: InputBox) -> None:
    """The ONNX model that re-checks counterexamples must compute ``net``'s logits (checked
    at the box centre, to float32 precision); a model of another network is refused."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise NapkitError(
            f"onnx_model must be an onnx.ModelProto (load_onnx_model), not {type(model).__name__}"
        )
    try:
        y32 = onnx_logits(model, box.center[None], net.input_shape)
    except NapkitError:
        raise
    except Exception as exc:  # onnxruntime refuses inputs of another shape in its own words
        raise NapkitError(f"the ONNX model does not run on the network's inputs: {exc}") from None
    y64 = net.logits(box.center[None])
    scale = 1.0 + float(np.abs(y64).max())
    if y32.shape != y64.shape or not np.allclose(y32, y64, rtol=0, atol=ONNX_AGREEMENT * scale):
        raise NapkitError(
            "the ONNX model computes other logits than the network: pass the model it was loaded from"
        )


def verify_robustness(
    net: ReluNetwork, box: InputBox, label: int, phases: Phases | None = None,
    timeout: float | None = None, onnx_model=None, **kw,
) -> VerificationResult:
    """Is ``argmax f(x) = label`` (strictly) for every x of ``box`` following ``phases``?
    Keywords as for ``verify_property`` (``options``, ``workers``, ...)."""
    prop = Property(box, robustness_spec(label, net.n_outputs), phases)
    return verify_property(net, prop, timeout, onnx_model, **kw)


def verify_disjoint(
    net: ReluNetwork, box: InputBox, phases_i: Phases, phases_j: Phases, timeout: float = 60.0,
) -> VerificationResult:
    """Non-ambiguity: ``verified`` when no x of ``box`` follows both sets of phases."""
    if not isinstance(box, InputBox) or box.n != net.n_inputs:
        raise NapkitError(f"the region must be an InputBox of the network's {net.n_inputs} inputs")
    pi = check_phases(net.layer_sizes, phases_i) or [np.zeros(n, np.int8) for n in net.layer_sizes]
    pj = check_phases(net.layer_sizes, phases_j) or [np.zeros(n, np.int8) for n in net.layer_sizes]
    t0 = time.monotonic()
    merged, conflict = merge_phases(pi, pj)
    if conflict:
        return VerificationResult("verified", "the patterns fix some neuron to opposite phases",
                                  time.monotonic() - t0)
    anything = OutputSpec(((np.zeros((1, net.n_outputs)), np.zeros(1)),), net.n_outputs)  # not used
    prop = Property(box, anything, check_phases(net.layer_sizes, merged))
    run = Query(net, prop, make_options(timeout=timeout))
    b = run.bounds = propagate(net, box, prop.phases)
    if b.vacuous:
        return run.done("verified", "no input follows both: " + b.reason)
    if run.encoding().solve(time_limit=max(run.left(), 0.01), relax=True).status == "infeasible":
        return run.done("verified", "no input follows both (LP relaxation infeasible)")
    ok, why = run.nonempty()
    if ok is True:
        if run.witness is None:  # no phases at all: any point follows both
            run.witness = check_point(net, box, None, None, box.center)
        return run.done("falsified", "an input follows both patterns", run.witness)
    if ok is False:
        return run.done("verified", why)
    return run.done("unknown", why)


def verify_vnnlib(
    net: ReluNetwork, spec: VnnlibSpec | str | Path, phases: Phases | None = None,
    timeout: float | None = None, onnx_model=None, **kw,
) -> VerificationResult:
    """A VNN-LIB query (optionally with phases): verdict ``sat``, ``unsat`` or ``unknown``.
    Keywords as for ``verify_property`` (``options``, ``workers``, ...)."""
    if not isinstance(spec, VnnlibSpec):
        spec = read_vnnlib(spec)
    prop = spec.to_property(net.n_inputs, net.n_outputs, net.layer_sizes)
    extra = check_phases(net.layer_sizes, phases)
    own = check_phases(net.layer_sizes, prop.phases)
    if extra is not None and own is not None:
        extra, conflict = merge_phases(extra, own)
        if conflict:
            return VerificationResult("unsat", "vacuous: the phases conflict", 0.0)
    prop = Property(prop.box, prop.output, extra if extra is not None else own)
    res = verify_property(net, prop, timeout, onnx_model, **kw)
    if res.verdict == "vacuous":
        res.reason = "vacuous: " + res.reason
    res.verdict = VNNLIB_ANSWER[res.verdict]
    return res

"""Proof and falsification side by side: with ``workers >= 2`` a forked process falsifies
(pattern-fixed LPs, attacks with fresh seeds) while this one proves (branch and bound, MILP).

The falsifier sends every point it has confirmed (a counterexample, or a point that
follows the phases strictly: a witness of non-emptiness) through a pipe. The prover polls
the pipe between batches of branch and bound and from HiGHS's interrupt callbacks; it
re-checks every point itself (``Query.confirm``) before it uses it, so a point is never
trusted because it came from the other process. The first decisive answer wins and the
falsifier is terminated when the query returns.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np

from napkit.verify.attack import pgd_attack
from napkit.verify.query import Query

_ROUND_CAP = 10.0  # seconds of one falsification round (attack or pattern walk)


class Falsifier:
    """The forked falsification process of one query, and the prover's side of its pipe."""

    def __init__(self, q: Query, stages) -> None:
        ctx = mp.get_context("fork")
        self.recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child, args=(q, stages, send), daemon=True)
        self.proc.start()
        send.close()
        self.q = q

    def poll(self) -> bool:
        """Take the falsifier's points (re-checked here); True once a counterexample is known."""
        q = self.q
        try:
            while self.recv.poll():
                kind, x = self.recv.recv()
                if kind == "ce" and q.found is None:
                    q.found = q.confirm_point(x, q.spec)
                elif kind == "witness":
                    q.confirm_point(x)
        except (EOFError, OSError):
            pass
        return q.found is not None

    def alive(self) -> bool:
        return self.proc.is_alive()

    def close(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(timeout=5.0)
        if self.proc.is_alive():  # pragma: no cover - terminate is enough for a Python child
            self.proc.kill()
            self.proc.join()
        self.recv.close()


def _child(q: Query, stages, send) -> None:
    """The forked process: a lower priority (``falsifier_nice``), then ``_falsify``. On a
    shared machine the prover keeps the larger CPU share: 256x4 NAP-local classes 2 and 3
    beside one busy process took 2.3-2.4 s and 1.1 s instead of 3.6-3.7 s and 1.7 s."""
    if q.opts.falsifier_nice > 0:
        os.nice(q.opts.falsifier_nice)
    _falsify(q, stages, send)


def _falsify(q: Query, stages, send) -> None:
    """Child: the falsification stages, then attack and pattern-walk rounds until
    ``falsify_share`` of the timeout has passed (then the prover has the cores alone)."""
    q.found = None
    sent_witness = q.witness is not None

    def report():
        nonlocal sent_witness
        if q.witness is not None and not sent_witness:
            send.send(("witness", np.asarray(q.witness.x)))
            sent_witness = True

    try:
        for stage in stages:
            res = stage(q)
            report()
            if res is not None:  # falsified: tell the prover; vacuous: the prover finds it too
                if res.verdict == "falsified":
                    send.send(("ce", np.asarray(res.counterexample)))
                return
        seed = 1  # rounds go on while some disjunct is open (bounds may have refuted them all)
        until = q.t0 + q.opts.falsify_share * q.timeout
        while (q.open_ids and min(q.left(), until - time.monotonic()) > 0
               and (q.opts.attack or q.opts.patterns)):
            keep: list[np.ndarray] = []
            if q.opts.attack:
                att = pgd_attack(q.net, q.prop.box, q.open_spec(), q.prop.phases, seed=seed,
                                 deadline=q.until(min(_ROUND_CAP, 0.2 * q.timeout)), keep=keep)
                ce = q.confirm(att, q.spec)
                report()
                if ce is not None:
                    send.send(("ce", ce.x))
                    return
            else:
                keep = list(q.starts[(seed - 1) * 4:seed * 4]) or list(q.starts[:4])
            if q.opts.patterns and keep and q.left() > 0:
                ce = q.pattern_search().search(np.array(keep[:4]), q.spec, q.until(_ROUND_CAP),
                                               lambda x: q.confirm_point(x, q.spec), order=q.open_ids)
                report()
                if ce is not None:
                    send.send(("ce", ce.x))
                    return
            seed += 1
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        return
    finally:
        send.close()

"""The verification figures of a report: per-class NAP robustness and pairwise non-ambiguity.

Per class c, two queries through :mod:`napkit.verify`'s public API: NAP robustness over the
whole domain, and within an L∞ ball of radius ε around the first image of class c in the
data that the network classifies as c and that follows NAP_c (strictly). Per pair of
classes, non-ambiguity: syntactic disjointness first (no solver), the verifier for the rest.
A limit on the number of solver queries leaves the rest ``skipped``, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napkit.errors import NapkitError
from napkit.patterns import NAPSet, syntactic_disjoint
from napkit.progress import progress_bar

VERDICTS = ("verified", "falsified", "unknown", "vacuous", "skipped")
SKIPPED_REASON = "not run: the limit on verification queries was reached"
CENTRE_BATCH = 4096  # rows per exact forward pass when looking for the centres of local queries


@dataclass
class Query:
    """One verdict as the report shows it (a counterexample is a flat input, re-checked)."""

    verdict: str
    reason: str
    seconds: float
    counterexample: np.ndarray | None = None
    predicted: int | None = None

    def to_dict(self) -> dict:
        return {
            "result": self.verdict,
            "reason": self.reason,
            "seconds": self.seconds,
            "counterexample_class": self.predicted,
        }


class _Budget:
    """Counts solver queries against an optional limit."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise NapkitError(f"the limit on verification queries must be ≥ 0, got {limit}")
        self.limit, self.used = limit, 0

    def take(self) -> bool:
        if self.limit is not None and self.used >= self.limit:
            return False
        self.used += 1
        return True


def _query(net, verdict: str, reason: str, seconds: float, counterexample) -> Query:
    ce = None if counterexample is None else np.asarray(counterexample, dtype=np.float64)
    pred = None if ce is None else int(net.predict(ce[None])[0])
    return Query(verdict, reason, float(seconds), ce, pred)


def _journaled(net, journal, key: str, run) -> Query:
    """The query of ``key``: from the journal when it finished in an earlier run, else ``run()``
    (a verifier result), recorded there as it finishes."""
    rec = None if journal is None else journal.get(key)
    if rec is not None:
        return _query(net, rec["verdict"], rec["reason"], rec["seconds"], rec["counterexample"])
    res = run()
    if journal is not None:
        journal.add(key, res.verdict, res.reason, float(res.seconds), res.counterexample)
    return _query(net, res.verdict, res.reason, res.seconds, res.counterexample)


def _centres(net, phases_of, labels, x: np.ndarray, y: np.ndarray, box,
             batch: int = CENTRE_BATCH) -> dict[int, int | None]:
    """Per class, the first row of x in the box, labelled and classified c, that follows NAP_c
    strictly (exact float64 passes, batch by batch, until every class has one)."""
    from napkit.verify import follows_phases

    out: dict[int, int | None] = {c: None for c in labels}
    for start in range(0, len(x), batch):
        flat = net.flatten_inputs(x[start : start + batch])
        logits, pre = net.forward(flat)
        candidate = (logits.argmax(1) == y[start : start + batch]) & box.contains(flat)
        for c in [c for c in labels if out[c] is None]:
            rows = np.flatnonzero(candidate & (y[start : start + batch] == c))
            if len(rows):
                ok = follows_phases([p[rows] for p in pre], phases_of[c], strict=True)
                if ok.any():
                    out[c] = start + int(rows[np.argmax(ok)])
        if all(v is not None for v in out.values()):
            break
    return out


def verify_for_report(
    net,
    naps: NAPSet,
    x: np.ndarray,
    y: np.ndarray,
    timeout: float = 5.0,
    eps: float = 0.05,
    max_queries: int | None = None,
    lo: float = 0.0,
    hi: float = 1.0,
    onnx_model=None,
    progress: bool = False,
    journal=None,
) -> dict:
    """Per-class domain and local verdicts, and the C×C non-ambiguity matrix.

    ``journal`` (a :class:`napkit.report.journal.QueryJournal`) keeps finished queries, so that
    a rerun after an interruption does not run them again."""
    from napkit.report.journal import query_key
    from napkit.verify import domain_box, linf_ball, verify_disjoint, verify_robustness

    if not timeout > 0:
        raise NapkitError(f"the verification timeout must be > 0 s, got {timeout}")
    if not eps > 0:
        raise NapkitError(f"ε must be > 0, got {eps}")
    labels = naps.labels.tolist()
    phases_of = {c: naps.phases(c, net.layer_names, net.layer_sizes) for c in labels}
    box = domain_box(net.n_inputs, lo, hi)
    fp = net.fingerprint()
    centres = _centres(net, phases_of, labels, x, y, box)
    syntactic = syntactic_disjoint(naps)
    n = len(labels)
    pairs_todo = [(a, b) for a in range(n) for b in range(a + 1, n) if not syntactic[a, b]]
    budget = _Budget(max_queries)
    total = 2 * len(labels) + len(pairs_todo)
    if max_queries is not None:
        total = min(total, max_queries)
    skipped = Query("skipped", SKIPPED_REASON, 0.0)
    classes = []
    with progress_bar(total, "verification", progress) as advance:

        def robust(c: int, region, witness) -> Query:
            if not budget.take():
                return skipped
            key = query_key("robust", fp, c, phases_of[c], region.lower, region.upper,
                            witness, timeout)
            q = _journaled(net, journal, key, lambda: verify_robustness(
                net, region, c, phases_of[c], timeout=timeout, onnx_model=onnx_model, witness=witness))
            advance()
            return q

        for c in labels:
            i = centres[c]
            centre = None if i is None else net.flatten_inputs(x[i : i + 1])[0]
            domain = robust(c, box, centre)
            if centre is None:
                why = f"no input of class {c} in the data (inside the domain) follows its NAP"
                local = Query("skipped", why, 0.0)
            else:
                local = robust(c, linf_ball(centre, eps, lo, hi), centre)
            classes.append({"label": c, "centre": i, "domain": domain, "local": local})

        matrix: dict[tuple[int, int], Query] = {}
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                if syntactic[a, b]:
                    matrix[a, b] = Query("verified", "disjoint by syntax", 0.0)
                elif not budget.take():
                    matrix[a, b] = skipped
                else:
                    pa, pb = phases_of[labels[a]], phases_of[labels[b]]
                    key = query_key("disjoint", fp, labels[a], labels[b], pa, pb,
                                    box.lower, box.upper, timeout)
                    run = lambda pa=pa, pb=pb: verify_disjoint(net, box, pa, pb, timeout=timeout)  # noqa: E731
                    matrix[a, b] = _journaled(net, journal, key, run)
                    advance()
    return {
        "labels": labels,
        "eps": float(eps),
        "timeout": float(timeout),
        "domain": [float(lo), float(hi)],
        "max_queries": max_queries,
        "queries": budget.used,
        "classes": classes,
        "pairs": matrix,
        "syntactic": syntactic,
    }


def verdict_counts(ver: dict) -> dict:
    """How many queries of each kind ended in each verdict."""
    kinds = {
        "domain": [r["domain"] for r in ver["classes"]],
        "local": [r["local"] for r in ver["classes"]],
        "pairs": list(ver["pairs"].values()),
    }
    return {k: {v: sum(q.verdict == v for q in qs) for v in VERDICTS} for k, qs in kinds.items()}


def verification_json(ver: dict) -> dict:
    """The verification figures as plain JSON (counterexamples as the class they get)."""
    labels = ver["labels"]
    return {
        "eps": ver["eps"],
        "timeout": ver["timeout"],
        "queries": ver["queries"],
        "max_queries": ver["max_queries"],
        "classes": [
            {"label": r["label"], "centre_index": r["centre"], "domain": r["domain"].to_dict(),
             "local": r["local"].to_dict()}
            for r in ver["classes"]
        ],
        "pairs": [
            {"i": labels[a], "j": labels[b], **q.to_dict()} for (a, b), q in sorted(ver["pairs"].items())
        ],
        "counts": verdict_counts(ver),
        "verified": sum(sum(q.verdict == "verified" for q in qs) for qs in _all(ver)),
    }


def _all(ver: dict):
    yield [r["domain"] for r in ver["classes"]]
    yield [r["local"] for r in ver["classes"]]
    yield list(ver["pairs"].values())

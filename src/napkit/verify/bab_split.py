"""Branch and bound shared out over processes: once enough subdomains are open and the
falsifier's core is free, ``branch_and_bound`` hands its search to ``split_search``.

The open subdomains are dealt round-robin, weakest first, to this process and forked ones
(``forked.fork_map``); each grows its share to the deadline. Soundness does not rest on the
children: a share whose process fails, overruns or halts is undecided, the tree is refuted
only when every share is, and a child's counterexample is re-checked here. On 256x4
prop_5_0.05 two processes bound 1.5 times the (subdomain, disjunct) rows per second of one
(``benchmarks/results/bab_throughput.md``).
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from napkit.verify.bab import KEEP_CANDIDATES, STOPPED, BabResult, TreeSearch
from napkit.verify.forked import fork_map
from napkit.verify.threads import one_thread
from napkit.verify.verdict import FOUND, REFUTED, UNKNOWN, Outcome


def split_search(search: TreeSearch, n: int) -> BabResult:
    """The open subdomains dealt round-robin, weakest first, to ``n`` processes (this one and
    forked ones), each growing its share to the deadline. A part that ends undecided (a
    counterexample, a limit, an error) halts the others through a shared flag; a
    counterexample from a child is re-checked here. Refuted only when every part is; a part
    that failed counts as undecided on every disjunct open when the tree was split."""
    entries = sorted(search.tree.heap, key=lambda e: e[:2])
    shares = [entries[i::n] for i in range(n)]  # sorted lists are heaps
    del entries
    search.tree.heap = []
    open_at_split = sorted({int(g) for share in shares for *_, d in share for g in np.flatnonzero(d.groups)})
    halt = mp.get_context("fork").Value("b", 0, lock=False)  # one byte: no lock to die holding
    parent_stop = search.stop

    def part(i: int) -> tuple[BabResult, np.ndarray | None]:
        search.tree.heap = shares[i]
        shares[:] = []  # only this share stays alive in this process
        if i:  # a forked child counts its own work; the falsifier's pipe is the parent's
            search.seen = search.n_rows = search.refreshed = search.emptied = 0
            search.cands = []
            search.t0 = time.monotonic()
        search.stop = lambda: bool(halt.value) or (i == 0 and parent_stop is not None and parent_stop())
        res = None
        try:
            res = search.run()
        finally:  # an error halts the others as an undecided share does
            if res is None or res.status != REFUTED:
                halt.value = 1
        return res, search.found_x

    with one_thread():  # forked children must not touch the parent's OpenMP pool (they hang)
        got = fork_map(part, list(range(n)), search.deadline)
    parts = [g[0] for g in got if g is not None]
    for res, x in (g for g in got if g is not None):
        if res.status == FOUND:
            ce = search.check(x) if x is not None else None
            if ce is not None:
                return _merged(parts, FOUND, ce, open_at_split)
    if len(parts) == n and all(r.status == REFUTED for r in parts):
        return _merged(parts, REFUTED, None, [])
    failed = len(parts) < n or any(r.status == FOUND for r in parts)  # a point that failed here
    res = _merged(parts, UNKNOWN, None, open_at_split if failed else None)
    if failed:
        res.bound = None  # the parts that came back do not bound the whole tree
    return res


def _merged(parts: list[BabResult], status: Outcome, ce, open_groups: list[int] | None) -> BabResult:
    """One result from the parts of a split tree (``open_groups`` None: the parts' union)."""
    res = BabResult(status, ce, domains=sum(r.domains for r in parts), rows=sum(r.rows for r in parts),
                    candidates=[x for r in parts for x in r.candidates][:KEEP_CANDIDATES],
                    seconds=max((r.seconds for r in parts), default=0.0), processes=len(parts),
                    refreshed=sum(r.refreshed for r in parts), emptied=sum(r.emptied for r in parts))
    if status != UNKNOWN:
        return res
    undecided = [r for r in parts if r.status != REFUTED]
    reasons = [r.reason for r in undecided if r.reason and r.reason != STOPPED]
    res.reason = (reasons or [STOPPED])[0]
    union = sorted({g for r in undecided for g in r.open_groups})
    res.open_groups = union if open_groups is None else open_groups
    bounds = [r.bound for r in undecided if r.bound is not None]
    res.bound = min(bounds) if bounds else None
    return res

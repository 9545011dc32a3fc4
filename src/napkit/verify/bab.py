"""Branch and bound over unstable neurons on optimised bounds (beta-CROWN style), batched.

A subdomain is the region with some unstable neurons split to a phase (active z >= 0 or
inactive z <= 0): exactly the NAP phases with more entries fixed, so the bounds of
``crown.py`` handle a split as one more Lagrangian constraint. Intermediate bounds are
the root's (valid on every subdomain), clipped by the splits.

One tree serves every disjunct of the violation: each subdomain carries a mask of the
disjuncts still open on it, and only their rows are bounded. A disjunct is refuted on a
subdomain when one of its rows has a positive lower bound; a subdomain is closed when
every disjunct is. A subdomain with no unstable neuron left is decided exactly by an LP
per open disjunct on HiGHS. The minimiser of each subdomain's weakest linear bound is a
candidate counterexample: all candidates of a batch are screened by one forward pass,
and the caller re-checks survivors in float64.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from napkit.network import ReluNetwork
from napkit.verify.bounds import Bounds
from napkit.verify.crown import CrownLayer, CrownProblem, layer_from_bounds, optimise, torch_net
from napkit.verify.forked import can_fork, worker_count
from napkit.verify.optimized import tighten_optimized, with_phases
from napkit.verify.options import VerifyOptions
from napkit.verify.tolerances import PROOF_SLACK
from napkit.verify.verdict import FOUND, REFUTED, UNKNOWN, Outcome

_MAX_CHECKS = 4000  # candidate points handed to ``check`` (each an exact re-check)
KEEP_CANDIDATES = 16  # first candidates returned to the caller (starts for pattern-fixed LPs)
STOPPED = "branch and bound: stopped"


@dataclass
class BabResult:
    status: Outcome  # refuted (every disjunct, everywhere), found, unknown
    counterexample: object = None
    domains: int = 0
    reason: str = ""
    open_groups: list[int] = field(default_factory=list)  # disjuncts not refuted everywhere
    candidates: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    rows: int = 0  # (subdomain, objective row) pairs bounded
    bound: float | None = None  # unknown: the weakest open subdomain's bound (the tree's global one)
    processes: int = 1  # that grew the tree (more after a split, ``bab_split.py``)
    refreshed: int = 0  # subdomains whose intermediate bounds were re-optimised (``bab_interm_every``)
    emptied: int = 0  # of those, shown to hold no input of the region (closed)


@dataclass
class _Domain:
    phases: list[np.ndarray]
    groups: np.ndarray  # bool per disjunct: still open on this subdomain
    warm: tuple[dict, dict] | None  # parameters per open row, in row order
    depth: int = 0  # splits below the root
    # its own intermediate bounds (lower, upper per layer), re-optimised with its splits as
    # constraints at depth ``fresh_at`` (``TreeSearch._refresh``); None: the root's
    interm: tuple[list[np.ndarray], list[np.ndarray]] | None = None
    fresh_at: int = 0


def branching_score(lay: CrownLayer, coef: torch.Tensor) -> torch.Tensor:
    """Branching score per unstable neuron: what the triangle's intercept costs the bound."""
    s = (-coef.clamp(max=0)) * lay.tu + 1e-4 * coef.abs() * (lay.up - lay.lo)
    return torch.where(lay.unst, s, torch.full_like(s, -1.0))


class _Tree:
    """The open subdomains and the batched bounding of a batch of them."""

    def __init__(self, net, bounds: Bounds, c, const, groups, iters, lr, dtype, keep_best: bool,
                 best_bound: bool = False):
        self.net, self.bounds = net, bounds
        self.c, self.const, self.groups = c, const, groups
        self.n_groups = int(groups.max()) + 1
        self.n_h = len(bounds.lower)
        self.iters, self.lr, self.dtype, self.keep_best = iters, lr, dtype, keep_best
        self.best_bound = best_bound
        self.tn = torch_net(net)
        self.box_lo = torch.tensor(bounds.box.lower)
        self.box_hi = torch.tensor(bounds.box.upper)
        self.alpha_keys = [j for j in range(self.n_h)
                           if ((bounds.lower[j] < 0) & (bounds.upper[j] > 0)).any()]
        self.heap: list = []
        self.order = itertools.count()

    def push(self, key: float, dom: _Domain) -> None:
        heapq.heappush(self.heap, (key, next(self.order), dom))

    def pop(self, n: int) -> list[_Domain]:
        return [heapq.heappop(self.heap)[2] for _ in range(min(n, len(self.heap)))]

    def open_groups(self) -> list[int]:
        still = np.zeros(self.n_groups, dtype=bool)
        for _, _, d in self.heap:
            still |= d.groups
        return [int(g) for g in np.flatnonzero(still)]

    def bound(self, take: list[_Domain]) -> _Batch:
        """Optimised bounds of every open row of every domain of ``take`` (flat rows)."""
        rows_of = [np.flatnonzero(d.groups[self.groups]) for d in take]
        counts = np.array([r.size for r in rows_of])
        dom = np.repeat(np.arange(len(take)), counts)
        rows = np.concatenate(rows_of)
        layers = []
        for k in range(self.n_h):
            pk = np.stack([d.phases[k] for d in take])
            lo = np.stack([(self.bounds.lower if d.interm is None else d.interm[0])[k] for d in take])
            up = np.stack([(self.bounds.upper if d.interm is None else d.interm[1])[k] for d in take])
            lo[pk > 0] = np.maximum(lo[pk > 0], 0.0)
            up[pk < 0] = np.minimum(up[pk < 0], 0.0)
            layers.append(layer_from_bounds(torch.from_numpy(lo[dom]), torch.from_numpy(up[dom]),
                                            torch.from_numpy(pk[dom].astype(np.float64))))
        prob = CrownProblem(self.tn, layers, self.n_h, torch.from_numpy(self.c[rows]),
                            torch.from_numpy(self.const[rows]), self.box_lo, self.box_hi)
        n = rows.size
        alphas = {j: layers[j].sl0.clone() for j in self.alpha_keys}
        betas = {j: torch.zeros(n, self.bounds.lower[j].size, dtype=torch.float64) for j in range(self.n_h)}
        starts = np.concatenate([[0], np.cumsum(counts)])
        for i, d in enumerate(take):
            if d.warm is not None:
                sl = slice(starts[i], starts[i + 1])
                for src, dst in zip(d.warm, (alphas, betas), strict=True):
                    for j, v in src.items():
                        dst[j][sl] = v
        # keep_best: the best iterate per row (a child starts from its parent's parameters, whose
        # bound on the child is at least the parent's, so a subdomain's bound never falls below
        # its parent's); otherwise the last iterate (see VerifyOptions.bab_keep_best), whose
        # bound may be raised to the best iterate's (``best_bound``)
        val, coefs, ax, params = optimise(prob, alphas, betas, self.iters, self.lr, stop_at=0.0,
                                          keep_best=self.keep_best, dtype=self.dtype,
                                          best_bound=self.best_bound)
        return _Batch(take, dom, rows, starts, layers, val.numpy(), coefs, ax, params)


@dataclass
class _Batch:
    """A bounded batch of subdomains: flat rows (subdomain ``dom``, objective row ``rows``),
    subdomain i owning rows ``starts[i]:starts[i + 1]``, with their bounds ``v``, the bound
    coefficients per layer, the minimisers' signs ``ax`` and the final parameters."""

    take: list[_Domain]
    dom: np.ndarray
    rows: np.ndarray
    starts: np.ndarray
    layers: list[CrownLayer]
    v: np.ndarray
    coefs: dict
    ax: torch.Tensor
    params: tuple[dict, dict]

    def span(self, i: int) -> slice:
        return slice(self.starts[i], self.starts[i + 1])

    def still_open(self, groups: np.ndarray, n_groups: int) -> np.ndarray:
        """[subdomain, disjunct]: open before and not refuted now (refuted: one of its rows > 0)."""
        refuted = np.zeros((len(self.take), n_groups), dtype=bool)
        np.logical_or.at(refuted, (self.dom, groups[self.rows]), self.v > 0)
        return np.stack([d.groups for d in self.take]) & ~refuted

    def weakest(self, groups: np.ndarray, still: np.ndarray, alive: np.ndarray):
        """(per subdomain and open disjunct its best row's bound, +inf where closed; per alive
        subdomain the flat row of its weakest disjunct's best row, whose minimiser is the
        subdomain's candidate counterexample)."""
        gmax = np.full(still.shape, -np.inf)
        np.maximum.at(gmax, (self.dom, groups[self.rows]), self.v)
        gmax = np.where(still, gmax, np.inf)
        weak_g = gmax.argmin(1)
        in_weak = np.where(groups[self.rows] == weak_g[self.dom], self.v, -np.inf)
        pick = np.array([self.starts[i] + int(np.argmax(in_weak[self.span(i)])) for i in alive])
        return gmax, pick

    def branching(self, groups: np.ndarray, still: np.ndarray, n_h: int):
        """Per subdomain the neuron (layer, index) with the best score over its open rows, and
        that score (negative: no unstable neuron left)."""
        n = len(self.take)
        open_row = torch.from_numpy(still[self.dom, groups[self.rows]])
        best_s = torch.full((n,), -1.0, dtype=torch.float64)
        best_at = torch.zeros((n, 2), dtype=torch.int64)
        dom_t = torch.from_numpy(self.dom)
        for k in range(n_h):
            if k not in self.coefs:
                continue
            sc = torch.where(open_row[:, None], branching_score(self.layers[k], self.coefs[k]), -1.0)
            per = torch.full((n, sc.shape[1]), -1.0, dtype=sc.dtype)
            per.scatter_reduce_(0, dom_t[:, None].expand_as(sc), sc, reduce="amax")
            s, j = per.max(1)
            better = s > best_s
            best_s = torch.where(better, s, best_s)
            best_at[better] = torch.stack([torch.full_like(j, k), j], 1)[better]
        return best_s, best_at

    def children(self, i: int, open_i: np.ndarray, groups: np.ndarray, neuron) -> list[_Domain]:
        """Subdomain i split on ``neuron`` (layer, index): both phases, each starting from the
        parent's parameters of the rows still open."""
        k, j = neuron
        keep = torch.from_numpy(open_i[groups[self.rows[self.span(i)]]])
        warm = tuple({q: t[self.span(i)][keep] for q, t in part.items()} for part in self.params)
        out = []
        parent = self.take[i]
        for sign in (1, -1):
            child = [p.copy() for p in parent.phases]
            child[k][j] = sign
            out.append(_Domain(child, open_i.copy(), warm, parent.depth + 1, parent.interm, parent.fresh_at))
        return out


def _limit_reason(tree: _Tree, deadline: float, stop, seen: int, max_domains: int, max_open) -> str:
    """Why the tree must stop now ("" to go on)."""
    if time.monotonic() > deadline:
        return f"branch and bound: time out ({len(tree.heap)} open)"
    if stop is not None and stop():
        return STOPPED
    if seen > max_domains:
        return "branch and bound: domain limit"
    if max_open is not None and len(tree.heap) > max_open:
        return f"branch and bound: {len(tree.heap)} open, handed to the MILP"
    return ""


class TreeSearch:
    """The loop of one tree (or of one process's share of it after a split) and its counts."""

    def __init__(self, tree: _Tree, net, bounds, c, const, groups, check, screen, o: VerifyOptions,
                 deadline: float, stop, max_open, max_domains: int) -> None:
        self.tree, self.net, self.bounds = tree, net, bounds
        self.c, self.const, self.groups = c, const, groups
        self.check, self.screen, self.o = check, screen, o
        self.deadline, self.stop, self.max_open, self.max_domains = deadline, stop, max_open, max_domains
        self.t0 = time.monotonic()
        self.seen = self.checks = self.n_rows = 0
        self.cands: list[np.ndarray] = []
        self.found_x: np.ndarray | None = None  # the point ``check`` confirmed (FOUND)
        self.refreshed = self.emptied = 0  # intermediate bounds re-optimised; subdomains shown empty
        self.root_phases = bounds.phases or [np.zeros(lo.size, np.int8) for lo in bounds.lower]
        self.in_batch = np.zeros(tree.n_groups, dtype=bool)  # groups of the batch being processed

    def result(self, status: Outcome, ce=None, reason: str = "") -> BabResult:
        tree = self.tree
        # unknown: every disjunct open in a queued domain or in the batch not fully queued yet
        still = [int(g) for g in np.flatnonzero(self.in_batch)] if status == UNKNOWN else []
        opened = sorted(set(tree.open_groups()) | set(still)) if status == UNKNOWN else []
        low = float(tree.heap[0][0]) if status == UNKNOWN and tree.heap else None
        return BabResult(status, ce, self.seen, reason, opened, self.cands, time.monotonic() - self.t0,
                         self.n_rows, low, refreshed=self.refreshed, emptied=self.emptied)

    def _refresh(self, d: _Domain) -> bool:
        """Once ``d`` has ``bab_interm_every`` more splits than when its intermediate bounds
        were computed, re-optimise them (``tighten_optimized``, ``bab_interm_iters`` steps)
        with its splits as constraints, from the layer above its lowest split (alpha-beta-
        CROWN's ``enable_opt_interm_bounds``); the children inherit them. False when they
        show that no input of the region reaches ``d`` (it is closed)."""
        o = self.o
        if d.depth - d.fresh_at < o.bab_interm_every or time.monotonic() > self.deadline:
            return True
        root = self.bounds
        base = root if d.interm is None else Bounds(d.interm[0], d.interm[1], root.box, None)
        sub = with_phases(base, d.phases)
        if not sub.vacuous:
            lowest = min(k for k, (p, r) in enumerate(zip(d.phases, self.root_phases, strict=True))
                         if (p != r).any())  # d.depth > 0: some layer has a split
            tighten_optimized(self.net, sub, iters=o.bab_interm_iters, deadline=self.deadline,
                              layers=list(range(lowest + 1, len(d.phases))))
        self.refreshed += 1
        if sub.vacuous:
            self.emptied += 1
            return False
        d.interm, d.fresh_at = (sub.lower, sub.upper), d.depth
        return True

    def _checked(self, x: np.ndarray):
        ce = self.check(x)
        if ce is not None:
            self.found_x = np.array(x, dtype=np.float64)
        return ce

    def run(self, split_now: Callable[[int], bool] | None = None) -> BabResult | None:
        """Grow the tree to a verdict or a limit; None when ``split_now(open subdomains)`` says
        the open subdomains should be shared out (``bab_split.split_search``)."""
        tree, groups, o = self.tree, self.groups, self.o
        while tree.heap:
            self.in_batch = np.zeros(tree.n_groups, dtype=bool)  # the last batch is fully queued
            why = _limit_reason(tree, self.deadline, self.stop, self.seen, self.max_domains, self.max_open)
            if why:
                return self.result(UNKNOWN, reason=why)
            if split_now is not None and split_now(len(tree.heap)):
                return None
            take = tree.pop(o.bab_batch)
            self.in_batch = np.logical_or.reduce([d.groups for d in take])
            if o.bab_interm_every > 0:
                take = [d for d in take if self._refresh(d)]
                if not take:
                    continue
            b = tree.bound(take)
            self.seen += len(take)
            self.n_rows += b.rows.size
            still = b.still_open(groups, tree.n_groups)
            alive = np.flatnonzero(still.any(1))
            if alive.size == 0:
                continue
            gmax, pick = b.weakest(groups, still, alive)
            xs = torch.where(b.ax[pick] > 0, tree.box_lo, tree.box_hi).numpy()
            for x in xs[: max(0, KEEP_CANDIDATES - len(self.cands))]:
                self.cands.append(x.copy())
            worth = np.ones(len(xs), dtype=bool) if self.screen is None else self.screen(xs)
            for x in xs[worth]:
                if self.checks >= _MAX_CHECKS:
                    break
                self.checks += 1
                ce = self._checked(x)
                if ce is not None:
                    return self.result(FOUND, ce)
            best_s, best_at = b.branching(groups, still, tree.n_h)
            for i in alive:
                if float(best_s[i]) < 0:
                    out, ce, why = _leaf(self.net, self.bounds, take[i].phases, self.c, self.const, groups,
                                         still[i], self.deadline, self._checked)
                    if out == REFUTED:
                        continue
                    if out == FOUND:
                        return self.result(FOUND, ce)
                    return self.result(UNKNOWN, reason=f"branch and bound: leaf LP {why}")
                key = float(gmax[i].min())
                for child in b.children(i, still[i], groups, (int(best_at[i, 0]), int(best_at[i, 1]))):
                    tree.push(key, child)
        return self.result(REFUTED)


def branch_and_bound(
    net: ReluNetwork,
    bounds: Bounds,
    c: np.ndarray,
    const: np.ndarray,
    deadline: float,
    check: Callable[[np.ndarray], object],
    *,
    options: VerifyOptions | None = None,
    groups: np.ndarray | None = None,
    screen: Callable[[np.ndarray], np.ndarray] | None = None,
    stop: Callable[[], bool] | None = None,
    max_open: int | None = None,
    root_warm: tuple[dict, dict] | None = None,
    max_domains: int = 200000,
    workers: int | Callable[[], int] | None = None,
) -> BabResult:
    """Prove that on the region of ``bounds``, for every disjunct, some row of ``c @ y + const``
    is positive. ``groups[i]``: the disjunct of row i (default: all rows form one).

    ``check(x)`` returns a confirmed counterexample or None; ``screen(X)`` (optional) marks
    the rows of X worth checking (one batched forward pass). Stops at ``deadline``, once
    ``stop()`` is True, or (``max_open``) once more subdomains than that are open: the tree
    grows instead of closing, and the caller hands the query to the MILP. ``root_warm``:
    (alphas, betas) per row of ``c`` (e.g. the root's optimised bounds) to start the root from.
    ``options`` (default ``VerifyOptions()``, so a direct call runs the tree the engine runs):
    its ``bab_batch``, ``bab_iters``, ``bab_lr``, ``bab_dtype``, ``bab_keep_best`` (each
    subdomain keeps its best Adam iterate, else the last one) and ``bab_best_bound`` (with the
    last iterate, a subdomain's bound is the best iterate's when that is higher; its children
    still start from the last). ``workers`` (a count, or a callable asked before each batch, as
    the falsifier's core may come free): once ``bab_split_domains`` subdomains are open and two
    or more processes are available, the open subdomains are shared out among them
    (``bab_split.py``); never with ``max_open``. ``status``: ``refuted`` when every disjunct
    is refuted on every subdomain, ``found`` with a counterexample ``check`` confirmed, else
    ``unknown``.
    """
    t0 = time.monotonic()
    o = VerifyOptions() if options is None else options
    c = np.atleast_2d(np.asarray(c, dtype=np.float64))
    const = np.asarray(const, dtype=np.float64).reshape(-1)
    groups = np.zeros(c.shape[0], dtype=np.int64) if groups is None else np.asarray(groups, np.int64)
    tree = _Tree(net, bounds, c, const, groups, o.bab_iters, o.bab_lr, o.torch_dtype, o.bab_keep_best,
                 o.bab_best_bound)
    if root_warm is not None:  # only the layers this tree optimises, one row per row of c
        n = c.shape[0]
        root_warm = ({j: v for j, v in root_warm[0].items() if j in tree.alpha_keys and v.shape[0] == n},
                     {j: v for j, v in root_warm[1].items() if j < tree.n_h and v.shape[0] == n})
    search = TreeSearch(tree, net, bounds, c, const, groups, check, screen, o, deadline, stop, max_open,
                        max_domains)
    tree.push(-np.inf, _Domain([p.copy() for p in search.root_phases], np.ones(tree.n_groups, dtype=bool),
                               root_warm))
    search.t0 = t0
    if max_open is not None or workers is None or not can_fork():
        return search.run()

    def split_now(n_open: int) -> bool:
        return n_open >= o.bab_split_domains and worker_count(workers) >= 2

    res = search.run(split_now)
    if res is not None:
        return res
    from napkit.verify.bab_split import split_search

    return split_search(search, worker_count(workers))


def _leaf(net, bounds, phases, c, const, groups, still, deadline, check
          ) -> tuple[Outcome, object, str]:
    """No unstable neuron left: the region is a polytope; an LP per open disjunct decides it.
    (outcome, counterexample, why): refuted when every disjunct's LP is infeasible there (or
    the region is empty), found with a point ``check`` confirmed, else unknown with the LP's
    HiGHS status."""
    from napkit.verify.milp import MilpEncoding

    sub = with_phases(bounds, phases)
    if sub.vacuous:
        return REFUTED, None, ""
    enc = MilpEncoding(net, sub, slack=PROOF_SLACK)
    for g in np.flatnonzero(still):
        r = groups == g
        left = max(deadline - time.monotonic(), 0.01)
        res = enc.solve(c[r], -const[r], time_limit=left, relax=True)
        if res.status == "infeasible":
            continue
        if res.status == "feasible":
            ce = check(res.x)
            if ce is not None:
                return FOUND, ce, ""
        return UNKNOWN, None, res.status
    return REFUTED, None, ""

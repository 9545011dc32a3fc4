"""The options of one verification query: which stages run, and their named time budgets.

A budget is a share of the query's timeout or of the time left, with caps in seconds; the
values are those the engine was tuned with (VNN-COMP mnist_fc, the NAP benchmarks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from napkit.errors import NapkitError

if TYPE_CHECKING:
    import torch

_DTYPES = ("float32", "float64")


def default_workers() -> int:
    """The machine's cores (what ``workers`` means when it is not given)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True)
class VerifyOptions:
    """Stages and budgets of ``verify_property``. ``workers``: processes for one query
    (proof and falsification side by side when >= 2; None: the machine's cores)."""

    timeout: float = 60.0
    attack: bool = True
    optimize: bool = True
    bab: bool = True
    patterns: bool = True
    tighten: bool = False
    workers: int | None = None

    # plain robustness: a short attack before the optimised bounds (share of timeout, cap)
    quick_attack_share: float = 0.05
    quick_attack_cap: float = 0.5
    # optimised root bounds: intermediate layers, then the output rows (shares of timeout);
    # Adam's step 0.3 (0.1 before): 256x4 NAP-local class 2 at 40 row iterations, bounds of
    # -0.12 to -0.28 became -0.08 to +0.04 (the LP relaxation's optimum: -0.07 to +0.04), 3
    # of 9 disjuncts left open instead of 8; class 3 needs 23 subdomains instead of 195
    root_tighten_share: float = 0.25
    root_tighten_iters: int = 20
    root_tighten_lr: float = 0.3
    root_rows_share: float = 0.25
    root_rows_iters: int = 40
    root_rows_lr: float = 0.3
    # with phases, pattern-fixed LPs from the bounds' minimisers (share of timeout / of left, cap)
    first_patterns_share: float = 0.1
    first_patterns_left: float = 0.3
    first_patterns_cap: float = 3.0
    # the LP relaxation of the phase polytope (share of timeout)
    lp_relaxation_share: float = 0.15
    # the projected-gradient attack: share of timeout within [floor, cap] seconds
    attack_share: float = 0.1
    attack_floor: float = 1.0
    attack_cap: float = 6.0
    # pattern-fixed LPs from the attack's iterates (share of timeout / of left)
    patterns_share: float = 0.12
    patterns_left: float = 0.3
    # a pattern walk that may repair (``stages._pattern_walk``): this share of its budget walks
    # from the starts, the rest repairs a start into a point that follows the phases and walks
    # from there (a walk without repair keeps all of it)
    pattern_walk_search_share: float = 0.6
    # a MILP solution of a disjunct that fails the exact re-check: the local attack that
    # repairs it runs at most this many seconds (``Query.milp_disjunct``)
    milp_repair_attack_cap: float = 5.0
    # is the region non-empty (``Query.nonempty``, once every disjunct is refuted)? First
    # pattern-fixed LPs from points that tend to follow the phases (share of left, cap), then
    # the attack with the phases as a penalty (cap), the LP relaxation (cap), then pattern
    # walks and elastic repairs from their points (share of left, cap, each), then the MILP
    nonempty_first_left: float = 0.3
    nonempty_first_cap: float = 3.0
    nonempty_attack_cap: float = 5.0
    nonempty_lp_cap: float = 5.0
    nonempty_walk_left: float = 0.5
    nonempty_walk_cap: float = 5.0
    # LP tightening before the MILP (share of left), only with ``tighten``
    tighten_left: float = 0.3
    # branch and bound: share of the time left (the MILP gets the rest); with at most
    # ``few_unstable`` unstable neurons HiGHS is faster, so branch and bound gets less
    bab_left: float = 0.5
    bab_left_few: float = 0.15
    few_unstable: int = 64
    # with more than ``many_unstable`` the MILP is hopeless in the time (256x4/256x6: 100-400
    # unstable; it never decided a 256x4/256x6 VNN-COMP instance), so branch and bound keeps
    # nearly all of it
    bab_left_many: float = 0.95
    many_unstable: int = 100
    # after MILP-refined bounds (``refine_share``), the compact MILP per disjunct is the
    # stronger prover: on 256x4 prop_5_0.05 it refuted all 9 disjuncts in 95 s (1-31 s each)
    # where branch and bound's bound moved from -0.43 to -0.41 in 170 s; a tree of 18 s after
    # the refinement closed none of the 9
    bab_left_refined: float = 0.05
    # before the refinement, a short tree for the easier deep queries (share of the time left)
    # (0.05: the ten 256x4 VNN-COMP instances decided so far took at most 7.5 s each; 0.1 cost
    # 256x4 prop_5_0.05 the 15 s its last disjunct needed)
    bab_first_share: float = 0.05
    # the last MILP stage runs each disjunct until it is decided or the time is up (False), or
    # gives each an equal share of the time left and asks the undecided again (True). A proof
    # needs every disjunct refuted and HiGHS restarts a MILP from scratch, so a share that runs
    # out only repeats work: on 256x4 prop_5_0.05 disjunct 3 ran out at 30.8 s and was refuted
    # in 29.3 s when asked again; on prop_0_0.05 two disjuncts ran out at 44-45 s with too
    # little time left to ask them again (unknown at 261 s). Run to the end: 247 s and 240 s
    milp_time_shares: bool = False
    # the last MILP stage ends this share of the timeout before the deadline: HiGHS polls its
    # interrupt callbacks between phases, and on 256x6 (850-950 unstable) the MILPs run to the
    # deadline of a 300 s query ended up to 2.4 s after it
    milp_end_reserve_share: float = 0.01
    # with shares: an undecided disjunct is asked again only when its share of the time left is
    # at least this many times the share it ran out of (at most half the time is repeated)
    milp_retry_growth: float = 2.0
    # with phases (a NAP fixes most neurons of the deep layers, so the MILP has few binaries)
    # and at most ``handoff_max_unstable`` unstable neurons, branch and bound hands the query to
    # the MILP once more than ``handoff_open`` subdomains are open: 256x4 NAP-local class 2 (173
    # unstable) stays open after 2753 domains but falls to the MILP in 0.9 CPU-s (3 disjuncts
    # left by the root bounds at lr 0.3, ``milp_ipm``); its tree doubles (1, 2, 4, 8, 14, 24
    # open) while class 3 (142) closes after 23 domains with at most 6 open, and 256x2 class 3
    # after 51 with at most 12 (96 before: class 2 explored 117 domains first)
    handoff_open: int = 20
    handoff_max_unstable: int = 200
    # the last stage's MILP (``milp``) with phases solves its LPs by the interior point method
    # (``MilpEncoding.solve``): 256x4 NAP-local class 2, whose disjuncts HiGHS decides at the
    # root node, 0.25 instead of 0.46 CPU-s per disjunct (slower where the root needs many cut
    # rounds, as class 3's disjuncts, which branch and bound proves first)
    milp_ipm: bool = True
    # the proving MILP per disjunct of a query without phases on ``CompactEncoding`` (stable
    # neurons substituted out): the same points with a fifth of the nonzeros on 256x4 (the
    # dense input block shrinks to the first layer's unstable neurons). With phases every
    # fixed neuron would keep a dense row there: 256x4 NAP-local class 2 took 5.6 s, not 1.5
    milp_compact: bool = True
    bab_patterns_share: float = 1 / 3  # of branch and bound's budget: pattern LPs from its candidates
    bab_batch: int = 256
    # once this many subdomains are open and the falsifier's core is free, the open subdomains
    # are dealt to both processes (``bab_split.py``): two batches each, so both start full
    bab_split_domains: int = 512
    # re-optimise a subdomain's intermediate bounds with its splits as constraints once it has
    # this many more splits than when they were last computed (0: never; the root's are used).
    # Off: on 256x4 prop_7_0.05 (one process, same root) at 4 the frontier after 40 s was 96
    # open at -1.36 against 5244 at -2.02 without, 60 of 99 re-optimised subdomains shown
    # empty; but each takes about 0.4 s, and after 150 s 1846 were open at -1.61
    # (``benchmarks/bab_interm_probe.py``)
    bab_interm_every: int = 0
    bab_interm_iters: int = 20
    # Adam steps per subdomain from its parent's parameters (the root from the optimised
    # bounds'), best iterate kept, small steps: 256x4 prop_5_0.05, 30-40 s, the tree's global
    # bound from the root's -0.84: lr 0.1 last iterate (before) -2.8, lr 0.1 best -0.93 to -1.17,
    # lr 0.02 best -0.53 to -0.63; NAP-local 256x4 class 3 is proved in 41-195 subdomains with
    # 12 steps and lost with 6 at lr 0.1
    bab_iters: int = 12
    bab_lr: float = 0.02
    # keep each subdomain's best iterate (True) or its last (False): with the best one, VNN-COMP
    # 256x6 prop_7_0.03 stayed unknown at 300 s on an idle machine (at lr 0.02 or 0.1, root warm
    # or not); with the last one it is proved by branch and bound in 2.8-10 s (as before the
    # best iterate came in, 12.8 s); why the best iterate stalls that tree is not understood
    bab_keep_best: bool = False
    # with the last iterate: a subdomain's bound is raised to its best iterate's sound bound
    # (one more exact pass per batch), its children still start from the last iterate. Off:
    # on 256x4 prop_5_0.05 at 300 s (load ~5) the tree's global bound ended at -0.968 with it
    # against -0.953 without (load ~3); 256x6 prop_7_0.03 stays proved (14 s under load)
    bab_best_bound: bool = False
    bab_dtype: str = "float32"  # of the gradient ascent; every bound is re-evaluated in float64
    # MILP-refined intermediate bounds before branch and bound (share of the time left), for
    # queries without phases on networks of at least ``refine_min_layers`` hidden layers with
    # more than ``many_unstable`` unstable neurons (NAP queries fix most deep neurons: their
    # MILP has few binaries already). On VNN-COMP 256x4 prop_5_0.05 (root bound -0.82) the
    # refinement took 118 s to -0.44, then the compact MILP refuted the 9 disjuncts in 126 s
    refine_share: float = 0.5
    refine_side_s: float = 0.3  # with refine_cut_rounds=0: HiGHS's limit per neuron's min and max
    # a pass over every layer that ends within ``refine_share`` is followed by another with
    # this many times the time per side (0: one pass). Off: at 2, 256x4 prop_7_0.05's refined
    # bound went from -2.30 to -2.16 (still open); with the MILP run to the end, prop_0_0.05
    # and prop_5_0.05 were proved in 203 s and 254 s with it, 247 s and 240 s without
    refine_side_growth: float = 0.0
    # > 0: each neuron's refined bounds come from the LP with this many rounds of ideal-
    # formulation cuts per side (``ideal_cuts.py``) instead of a ``refine_side_s`` MILP (0). On
    # 256x4 prop_7_0.05's hidden layer 1 (30 neurons) 3 rounds gave a mean width of 8.03 in
    # 2.7 s against 9.20 in 18.7 s; in the engine 256x4 prop_0_0.05 and prop_5_0.05 were proved
    # in 73 s and 66 s with it, 208-247 s and 220-240 s without
    refine_cut_rounds: int = 3
    refine_min_layers: int = 3
    # NAP queries (``napfalsify.py``): of the points given with the query, how many violating
    # followers are re-checked, and how many followers closest to a violation start the
    # pattern-fixed LPs; with phases and at least ``nap_milp_min_unstable`` unstable (free)
    # neurons, a MILP per open disjunct runs before the optimised bounds with this share of
    # the timeout (256x4 whole-domain NAP queries: the optimised bounds stabilise no neuron,
    # the MILP refutes a disjunct in 2-12 s, with 278-563 unstable; NAP-local queries have at
    # most ~200 and are decided by the bounds in about a second, which the MILP would delay:
    # 256x6 δ 0.99 ε 0.05 class 3, 203 unstable, went unknown at 10 s with a threshold of 100)
    data_checks: int = 64
    # the scan of the given points stops when this share of the timeout has passed (a
    # forward pass over 60000 MNIST rows through 256x6 takes 5-9 s on a loaded machine)
    data_share: float = 0.5
    data_starts: int = 8
    # the LP relaxation of the NAP region per open disjunct, refuted by its sound dual bound
    # (``naplp.py``), before the MILP: 256x4 whole-domain classes 0, 1, 4, 5, 6 in about
    # 1 CPU-s each (the MILP: 25 CPU-s for class 1); the threshold keeps it off where the
    # bounds decide quickly (NAP-local queries)
    nap_lp: bool = True
    nap_lp_share: float = 0.5
    nap_lp_min_unstable: int = 250
    # then the free neurons of the last hidden layer whose relaxation helps the open rows
    # most are tightened by that LP, a batch at a time (256x4 class 7: the last layer's 18
    # turn every disjunct's bound from -2.7 to +0.8, 3 CPU-s); with ``nap_lp_tighten_layers``
    # > 1 also whole earlier layers (on 256x4/256x6 they stabilised nothing)
    nap_lp_tighten_layers: int = 1
    nap_lp_tighten_batch: int = 16
    # the exact tail behind a narrow layer (``naptail.py``): with a NAP at δ = 0.99 a deep
    # layer of 256x4/256x6 keeps 1-7 units not fixed inactive, and the logits behind it are a
    # function of those alone; the tail's MILP (binaries for its free neurons only) on the box
    # of their bounds refutes the disjuncts the tail cannot reach. Before the region's LP: it
    # proves the 12 classes of 256x4/256x6 the LP proves, in 0.1 s each (one unit) instead of
    # 3-9 s; after it (``nap_tail_tighten``), on the units' bounds tightened by that LP (256x6
    # class 8: 12 s, refutes nothing more there). A share of the timeout per pass.
    nap_tail: bool = True
    nap_tail_max_width: int = 8
    nap_tail_min_unstable: int = 250
    nap_tail_tighten: bool = True
    nap_tail_share: float = 0.1
    nap_milp: bool = True
    nap_milp_share: float = 0.8
    nap_milp_min_unstable: int = 250
    # with workers >= 2, a falsifier process runs beside the proof when at least this many
    # seconds are left after the optimised bounds (a fork costs little, its work doubles load)
    parallel_min_left: float = 3.0
    # the falsifier's attack and pattern-walk rounds after its stages stop at this share of
    # the timeout: past it the cheap falsification has failed and the prover gets the cores
    # (on a loaded machine the rounds halved branch and bound's throughput)
    falsify_share: float = 0.2
    # the falsifier process lowers its priority by this much (``os.nice``; 0: not): on an
    # idle machine each process has a core and nothing changes; on a shared one the prover,
    # the critical path of a true property, keeps the larger share
    falsifier_nice: int = 5

    def __post_init__(self) -> None:
        for f in fields(self):  # every budget a number: a NaN share would make every stage's time NaN
            v = getattr(self, f.name)
            if f.type == "bool" and not isinstance(v, bool | np.bool_):
                raise NapkitError(f"{f.name} must be True or False, got {v!r}")
            if f.type in ("float", "int") and (
                isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating)
            ):
                raise NapkitError(f"{f.name} must be a number, got {v!r}")
            if f.type == "int" and not float(v).is_integer():
                raise NapkitError(f"{f.name} must be a whole number, got {v!r}")
            if f.type in ("float", "int") and f.name != "timeout" and not 0 <= v < np.inf:
                raise NapkitError(f"{f.name} must be a finite number >= 0, got {v!r}")
            if f.name.endswith("_share") and not v <= 1:
                raise NapkitError(f"{f.name} is a share of a time budget: between 0 and 1, got {v!r}")
        if not float(self.timeout) >= 0:
            raise NapkitError(f"timeout must be a number >= 0, got {self.timeout}")
        if self.workers is not None and int(self.workers) < 1:
            raise NapkitError(f"workers must be at least 1, got {self.workers}")
        if int(self.falsifier_nice) < 0:
            raise NapkitError(f"falsifier_nice must be >= 0, got {self.falsifier_nice}")
        if self.bab_dtype not in _DTYPES:
            raise NapkitError(f"bab_dtype must be one of {sorted(_DTYPES)}, got {self.bab_dtype!r}")

    @property
    def n_workers(self) -> int:
        return default_workers() if self.workers is None else int(self.workers)

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.bab_dtype)

    def with_(self, **kw) -> VerifyOptions:
        return replace(self, **kw)

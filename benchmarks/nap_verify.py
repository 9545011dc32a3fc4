"""NAP-constrained verification on the VNN-COMP mnist_fc networks: verdicts and times per query.

Queries, per network and δ (NAPs mined from the first ``--train`` MNIST training images,
correctly classified ones only):

* NAP robustness over the whole domain [0,1]^784, one query per class;
* NAP-augmented local robustness at ε ∈ {0.03, 0.05} around, for each class of
  ``--local-classes`` (default 0 2 3, as in DESIGN.md's table), the first test image of
  that class that the network classifies correctly and that follows the class's NAP.

Prints per query the verdict, wall and CPU time (this process and the falsifier process it
forks: on a loaded machine the wall time is several times the CPU time), reason and unstable-neuron counts (after phases and
bounds), then the median time per query and the verdict counts. With ``--marabou`` the
same queries also run through ``napkit.verify.marabou.verify_property_marabou`` (same
timeout) side by side, with both times and the ratio.

    .venv/bin/python benchmarks/nap_verify.py [--nets 256x2 256x4 256x6] [--deltas 0.99 0.95]
        [--train 20000] [--local-classes 0 2 3] [--eps 0.03 0.05] [--no-domain] [--timeout 60] [--marabou]
        [--no-witness] [--workers N]

Domain queries get the first training image that follows the NAP as a witness of
non-emptiness (``verified`` needs one), unless --no-witness.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MNIST, ONNX, need  # noqa: E402


def _marabou():
    try:
        from napkit.verify.marabou import verify_property_marabou  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001 - optional backend, any import failure means absent
        return None, f"{type(e).__name__}: {e}"
    return verify_property_marabou, ""


def queries(net, naps, xte, yte, local_classes, eps_list, domain: bool, xtr=None):
    """(name, Property, witness) triples: the domain queries, then the local ones. A domain
    query's witness is the first training image that follows the NAP (None without ``xtr``)."""
    from napkit.verify import Property, domain_box, first_follower, follows_phases, linf_ball, robustness_spec

    out = []
    if domain:
        for c in range(net.n_outputs):
            w = None if xtr is None else first_follower(net, naps.phases(c), xtr)
            out.append((f"domain c={c}", Property(domain_box(net.n_inputs),
                                                  robustness_spec(c, net.n_outputs), naps.phases(c)), w))
    if local_classes and eps_list:
        y, pre = net.forward(xte)
        pred = y.argmax(1)
        chosen = []
        for c in local_classes:  # the first test image of class c, correct, following NAP_c
            ok = (yte == c) & (pred == c) & follows_phases(pre, naps.phases(c))
            if ok.any():
                chosen.append(int(np.argmax(ok)))
        for eps in eps_list:
            for i in chosen:
                c = int(yte[i])
                out.append((f"eps={eps:g} img={i} c={c}",
                            Property(linf_ball(xte[i], eps), robustness_spec(c, net.n_outputs),
                                     naps.phases(c)), None))
    return out


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the falsifier process)."""
    return sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
               for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def main(argv=None) -> int:
    from napkit.network import load_model
    from napkit.patterns import mine
    from napkit.verify import propagate, verify_property

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["256x2", "256x4", "256x6"])
    ap.add_argument("--deltas", nargs="+", type=float, default=[0.99, 0.95])
    ap.add_argument("--train", type=int, default=20000, help="mine on the first N training images")
    ap.add_argument("--local-classes", nargs="*", type=int, default=[0, 2, 3])
    ap.add_argument("--eps", nargs="*", type=float, default=[0.03, 0.05])
    ap.add_argument("--no-domain", action="store_true", help="skip the whole-domain queries")
    ap.add_argument("--classes", nargs="*", type=int, default=None, help="domain queries: only these")
    ap.add_argument("--timeout", type=float, default=60.0, help="per query (both verifiers)")
    ap.add_argument("--marabou", action="store_true", help="also run Marabou side by side")
    ap.add_argument("--workers", type=int, default=None, help="processes per query (default: cores)")
    ap.add_argument("--no-witness", action="store_true",
                    help="domain queries without a training image that follows the NAP as witness")
    args = ap.parse_args(argv)

    with np.load(need(MNIST)) as f:
        xtr = f["x_train"][: args.train].reshape(-1, 784).astype(np.float64) / 255
        ytr = f["y_train"][: args.train].astype(np.int64)
        xte = f["x_test"].reshape(-1, 784).astype(np.float64) / 255
        yte = f["y_test"].astype(np.int64)
    marabou = None
    if args.marabou:
        marabou, why = _marabou()
        if marabou is None:
            print(f"--marabou: napkit.verify.marabou.verify_property_marabou is unavailable ({why});"
                  " running napkit alone\n")
    print(f"# NAP-constrained verification, mnist_fc; NAPs from the first {args.train} training "
          f"images (correct only); timeout {args.timeout:g} s per query; workers "
          f"{args.workers or 'default (cores)'}\n")
    head = "| net | δ | query | napkit | s | CPU s | reason | unstable (bounds) |"
    sep = "|---|---|---|---|---|---|---|---|"
    if marabou:
        head += " Marabou | Marabou s | ratio |"
        sep += "---|---|---|"
    print(head)
    print(sep, flush=True)
    times, mtimes, counts, mcounts, ratios, cpus = [], [], Counter(), Counter(), [], []
    for name in args.nets:
        net = load_model(need(ONNX / f"mnist-net_{name}.onnx.gz"))
        for delta in args.deltas:
            naps = mine(net, xtr, ytr, delta, progress=False)
            qs = queries(net, naps, xte, yte, args.local_classes, args.eps, not args.no_domain,
                         None if args.no_witness else xtr)
            if args.classes is not None:
                qs = [q for q in qs if not q[0].startswith("domain")
                      or int(q[0].split("=")[1]) in args.classes]
            for qname, prop, w in qs:
                b = propagate(net, prop.box, prop.phases)
                t, c0 = time.perf_counter(), _cpu()
                r = verify_property(net, prop, timeout=args.timeout, witness=w, workers=args.workers)
                secs, cpu = time.perf_counter() - t, _cpu() - c0
                cpus.append(cpu)
                times.append(secs)
                counts[r.verdict] += 1
                unst = "-" if b.vacuous else f"{b.n_unstable}"
                if "unstable_final" in r.stats:
                    unst += f" → {r.stats['unstable_final']}"
                row = (f"| {name} | {delta:g} | {qname} | {r.verdict} | {secs:.2f} | {cpu:.2f} | {r.reason} "
                       f"| {unst} |")
                if marabou:
                    t = time.perf_counter()
                    try:
                        m = marabou(net, prop, args.timeout)
                        mv = m.verdict
                    except Exception as e:  # noqa: BLE001 - report and continue
                        mv = f"error: {type(e).__name__}"
                    ms = time.perf_counter() - t
                    mtimes.append(ms)
                    mcounts[mv] += 1
                    ratios.append(ms / max(secs, 1e-3))
                    clash = {r.verdict, mv} == {"verified", "falsified"}
                    flag = " **CONTRADICTION**" if clash else ""
                    row += f" {mv}{flag} | {ms:.2f} | {ms / max(secs, 1e-3):.1f}× |"
                print(row, flush=True)
    print(f"\nnapkit: {len(times)} queries, median {statistics.median(times):.3f} s, "
          f"mean {statistics.fmean(times):.3f} s, max {max(times):.2f} s; CPU (both processes) median "
          f"{statistics.median(cpus):.3f} s, max {max(cpus):.2f} s; "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if marabou and mtimes:
        print(f"Marabou: median {statistics.median(mtimes):.3f} s, mean {statistics.fmean(mtimes):.3f} s; "
              + ", ".join(f"{k} {v}" for k, v in sorted(mcounts.items())))
        print(f"ratio of medians (Marabou / napkit): "
              f"{statistics.median(mtimes) / max(statistics.median(times), 1e-3):.1f}×; "
              f"median per-query ratio {statistics.median(ratios):.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())

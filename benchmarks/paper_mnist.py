"""Reproduce the MNIST claims of "Towards Reliable Neural Specifications" with napkit.

Tables (written to benchmarks/results/paper_mnist.md, figures beside it):
1. recall and precision per δ and network (train, correct only; test);
2. non-ambiguity of the 45 NAP pairs: by syntax, verified, falsified, unknown;
3. NAP robustness over the whole domain [0,1]^784 per class and δ; the highest recall
   at which all ten classes verify;
4. NAP-augmented local robustness on the VNN-COMP properties (ε = 0.03, 0.05): verified
   with and without the NAP of the label;
5. the largest verified radius with and without the NAP around correctly classified test
   images: median ratio and quartiles;
6. napkit against Marabou on a sample of the queries of tables 2 to 4 (same timeout).

Run: .venv/bin/python benchmarks/paper_mnist.py --quick     (256x2, δ ∈ {0.99, 0.95}, short)
     .venv/bin/python benchmarks/paper_mnist.py             (all networks and δ; hours)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, ROOT, SHARED, load_mnist, need  # noqa: E402

VNNLIB = SHARED / "benchmarks" / "mnist_fc" / "vnnlib"
RESULTS = ROOT / "benchmarks" / "results"


def md_table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out + [""]


class Memo:
    """Finished steps of a run, one JSON line each: an interrupted run resumes where it stopped,
    and runs over different networks can share one file (``--nets 256x4`` and ``--nets 256x6``
    side by side, then ``--report-only`` over all).

    A step's key names what it computed and with which settings, so a run with other
    settings recomputes it.
    """

    def __init__(self, path: Path, fresh: bool, report_only: bool = False) -> None:
        self.path = path
        self.report_only = report_only  # missing verification steps are skipped, not run
        self.done: dict[str, object] = {}
        if path.exists() and fresh:
            path.unlink()
        self._read()

    def _read(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interrupt
                continue
            self.done[item["key"]] = item["value"]

    def any_of(self, prefix: str, suffix: str):
        """The value of some finished step whose key starts and ends so, or None."""
        self._read()
        return next((v for k, v in self.done.items() if k.startswith(prefix) and k.endswith(suffix)), None)

    def get(self, key: str, compute, cheap: bool = False):
        if key not in self.done:  # another run (e.g. --nets 256x6 beside) may have done it
            self._read()
        if key not in self.done and self.report_only and not cheap:
            return None
        if key not in self.done:
            value = compute()
            with self.path.open("a") as f:
                f.write(json.dumps({"key": key, "value": value}) + "\n")
            self.done[key] = value
        return self.done[key]


class Paper:
    def __init__(self, args) -> None:
        self.args = args
        self.lines: list[str] = []
        # Marabou's sample: (kind, network, δ, query ids, napkit's verdict, napkit's seconds)
        self.sample: list[tuple] = []
        self.models: dict[str, object] = {}
        self.napsets: dict[tuple[str, float], object] = {}
        self.xtr, self.ytr, self.xte, self.yte = load_mnist()
        out = args.out or RESULTS / ("paper_mnist_quick.md" if args.quick else "paper_mnist.md")
        self.out = out
        self.memo = Memo(out.with_suffix(".steps.jsonl"), args.fresh, args.report_only)

    def settings(self) -> str:
        a = self.args
        return f"t={a.timeout:g}"

    def take(self, kind: str, n_kind: int) -> bool:
        """Room for one more ``kind`` query in Marabou's sample?"""
        return sum(s[0] == kind for s in self.sample) < n_kind

    def say(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    # ---- table 1 ---------------------------------------------------------------------------
    def stats(self, name, net, napsets):
        from napkit.patterns import evaluate_many

        train = evaluate_many(net, napsets, self.xtr, self.ytr, only_correct=True, progress=False)
        test = evaluate_many(net, napsets, self.xte, self.yte, progress=False)
        rows = []
        for n, a, b in zip(napsets, train, test, strict=True):
            rows.append(
                [
                    name,
                    f"{n.delta:g}",
                    f"{n.sizes().mean():.0f}",
                    f"{np.nanmean(a.recall):.3f}",
                    f"{np.nanmean(a.precision):.3f}",
                    f"{np.nanmean(b.recall):.3f}",
                    f"{np.nanmean(b.precision):.3f}",
                ]
            )
        return {"rows": rows, "recall": [float(np.nanmean(b.recall)) for b in test]}

    # ---- table 2 ---------------------------------------------------------------------------
    def ambiguity(self, name, net, naps) -> dict:
        from napkit.patterns import syntactic_disjoint
        from napkit.verify import domain_box, verify_disjoint

        box = domain_box(net.n_inputs)
        syn = syntactic_disjoint(naps)
        counts = {"syntax": 0, "verified": 0, "falsified": 0, "unknown": 0}
        times, queries = [], []
        for i in range(10):
            for j in range(i + 1, 10):
                if syn[i, j]:
                    counts["syntax"] += 1
                    continue
                res = verify_disjoint(net, box, naps.phases(i), naps.phases(j), timeout=self.args.timeout)
                counts[res.verdict if res.verdict in counts else "unknown"] += 1
                times.append(res.seconds)
                queries.append([[i, j], res.verdict, res.seconds])
        return {"counts": counts, "times": times, "queries": queries}

    # ---- table 3 ---------------------------------------------------------------------------
    def domain(self, name, net, naps) -> dict:
        from napkit.verify import first_follower, verify_property

        verdicts, times = [], []
        for c in range(10):
            # a training image that follows NAP_c shows that its region is not empty
            w = first_follower(net, naps.phases(c), self.xtr)
            res = self.domain_query(net, naps, c, lambda n, p, t: verify_property(n, p, timeout=t, witness=w))  # noqa: B023
            verdicts.append(res.verdict)
            times.append(res.seconds)
        return {"verdicts": verdicts, "times": times,
                "queries": [[c, v, t] for c, (v, t) in enumerate(zip(verdicts, times, strict=True))]}

    @staticmethod
    def verify_property(net, prop, timeout):
        from napkit.verify import verify_property

        return verify_property(net, prop, timeout=timeout)

    def domain_query(self, net, naps, c, verifier):
        from napkit.verify import Property, domain_box, robustness_spec

        prop = Property(domain_box(net.n_inputs), robustness_spec(c, 10), naps.phases(c))
        return verifier(net, prop, self.args.timeout)

    def local_query(self, net, naps, k, eps, verifier, with_nap=True):
        from napkit.verify import Property, read_vnnlib

        prop = read_vnnlib(VNNLIB / f"prop_{k}_{eps}.vnnlib.gz").to_property(net.n_inputs, net.n_outputs)
        if with_nap:
            prop = Property(prop.box, prop.output, naps.phases(prop.output.label))
        return verifier(net, prop, self.args.timeout)

    # ---- table 4 ---------------------------------------------------------------------------
    def local(self, name, net, naps) -> dict:
        rows, times, queries = [], [], []
        for eps in ("0.03", "0.05"):
            plain_ok = nap_ok = vac = 0
            for k in range(8):
                if not (VNNLIB / f"prop_{k}_{eps}.vnnlib.gz").exists():
                    continue
                r0 = self.local_query(net, naps, k, eps, self.verify_property, with_nap=False)
                r1 = self.local_query(net, naps, k, eps, self.verify_property)
                plain_ok += r0.verdict == "verified"
                nap_ok += r1.verdict == "verified"
                vac += r1.verdict == "vacuous"
                times += [r0.seconds, r1.seconds]
                queries.append([[k, eps], r1.verdict, r1.seconds])
            rows.append([name, f"{naps.delta:g}", eps, f"{plain_ok}/8", f"{nap_ok}/8", vac])
        return {"rows": rows, "times": times, "queries": queries}

    # ---- table 5 ---------------------------------------------------------------------------
    def radius(self, name, net, naps):
        from napkit.verify import radius_with_and_without_nap

        pred = net.predict(self.xte[: 4 * self.args.images])
        ok = np.flatnonzero(pred == self.yte[: len(pred)])[: self.args.images]
        ratios, plain, nap = [], [], []
        for i in ok:
            c = int(self.yte[i])
            r0, r1 = radius_with_and_without_nap(
                net,
                self.xte[i].astype(float),
                c,
                naps.phases(c),
                timeout=self.args.radius_timeout,
                tol=self.args.tol,
            )
            plain.append(r0.radius)
            nap.append(r1.radius)
            if r0.radius > 0:
                ratios.append(r1.radius / r0.radius)
        return {"plain": plain, "nap": nap, "ratios": ratios}

    # ---- table 6 ---------------------------------------------------------------------------
    def marabou(self):
        from napkit.verify import marabou_available, verify_disjoint_marabou, verify_property_marabou

        if not marabou_available():
            self.say("Marabou (maraboupy) is not installed: table 6 skipped.", "")
            return
        from napkit.verify import domain_box

        def theirs(kind, name, delta, ids) -> list:
            net, naps = self.models[name], self.napsets[(name, delta)]
            if kind == "pair":
                i, j = ids
                r = verify_disjoint_marabou(net, domain_box(net.n_inputs), naps.phases(i), naps.phases(j),
                                            timeout=self.args.timeout)
            elif kind == "domain":
                r = self.domain_query(net, naps, ids, verify_property_marabou)
            else:
                r = self.local_query(net, naps, ids[0], ids[1], verify_property_marabou)
            return [r.verdict, r.seconds]

        rows, ratios = [], []
        for kind, name, delta, ids, verdict, secs in self.sample[: self.args.marabou_sample]:
            label = f"{kind} {name} δ={delta:g} {ids}"
            got = self.memo.get(f"marabou/{label}/{self.settings()}",
                                lambda: theirs(kind, name, delta, ids))  # noqa: B023
            if got is None:  # --report-only and not run yet
                continue
            m_verdict, m_secs = got
            ratio = m_secs / max(secs, 1e-3)
            ratios.append(ratio)
            rows.append([label, verdict, f"{secs:.2f}", m_verdict, f"{m_secs:.2f}", f"{ratio:.1f}x"])
        self.say(*md_table(["query", "napkit", "napkit s", "Marabou", "Marabou s", "Marabou / napkit"], rows))
        if ratios:
            self.say(
                f"Median ratio Marabou / napkit: {statistics.median(ratios):.1f}x over {len(ratios)} queries "
                f"(timeout {self.args.timeout:g} s; a timeout counts at its limit).",
                "",
            )

    # ---- driver --------------------------------------------------------------------------------
    def run(self) -> None:
        from napkit.network import load_model
        from napkit.patterns import count_patterns

        a = self.args
        t_start = time.perf_counter()
        self.say(
            "# NAP paper on MNIST, reproduced with napkit",
            "",
            f"Command: `.venv/bin/python benchmarks/paper_mnist.py {' '.join(sys.argv[1:])}`",
            "",
            f"Networks {', '.join(a.nets)}; δ ∈ {a.deltas}; NAPs mined from all 60000 training images "
            f"(correctly classified only); verifier timeout {a.timeout:g} s per query.",
            "",
        )
        t1, t2, t3, t4, t5 = [], [], [], [], []
        best_recall = {}
        all_times = []
        n_kind = max(a.marabou_sample // 3, 1)
        memo, cfg = self.memo, self.settings()
        missing: list[str] = []  # steps not run yet (--report-only)
        fewer: list[str] = []  # radius rows from a run over fewer images (--report-only)
        for name in a.nets:
            net = load_model(need(ONNX / f"mnist-net_{name}.onnx.gz"))
            miner = count_patterns(net, self.xtr, self.ytr, progress=False)
            napsets = [miner.naps(d) for d in a.deltas]
            self.models[name] = net
            self.napsets.update({(name, n.delta): n for n in napsets})
            stats = memo.get(f"stats/{name}/{a.deltas}", lambda: self.stats(name, net, napsets),  # noqa: B023
                             cheap=True)
            t1 += stats["rows"]
            for naps, recall in zip(napsets, stats["recall"], strict=True):
                key = f"{name}/{naps.delta:g}/{cfg}"
                print(f"[{time.perf_counter() - t_start:.0f} s] {name} δ={naps.delta:g}", file=sys.stderr)
                pairs = memo.get(f"pairs/{key}", lambda: self.ambiguity(name, net, naps))  # noqa: B023
                dom = memo.get(f"domain/{key}/witness", lambda: self.domain(name, net, naps))  # noqa: B023
                loc = memo.get(f"local/{key}", lambda: self.local(name, net, naps))  # noqa: B023
                if pairs is None or dom is None or loc is None:
                    missing.append(f"{name} δ={naps.delta:g}")
                    continue
                for kind, res in (("pair", pairs), ("domain", dom), ("local", loc)):
                    for ids, verdict, secs in res["queries"]:
                        if self.take(kind, n_kind):
                            self.sample.append((kind, name, naps.delta, ids, verdict, secs))
                counts, times = pairs["counts"], pairs["times"]
                all_times += times
                t2.append(
                    [
                        name,
                        f"{naps.delta:g}",
                        counts["syntax"],
                        counts["verified"],
                        counts["falsified"],
                        counts["unknown"],
                    ]
                )
                verdicts, times = dom["verdicts"], dom["times"]
                all_times += times
                t3.append(
                    [
                        name,
                        f"{naps.delta:g}",
                        f"{recall:.3f}",
                        sum(v == "verified" for v in verdicts),
                        sum(v == "falsified" for v in verdicts),
                        sum(v == "unknown" for v in verdicts),
                        sum(v == "vacuous" for v in verdicts),
                        " ".join(v[0] for v in verdicts),
                    ]
                )
                if all(v == "verified" for v in verdicts):
                    best_recall[name] = max(best_recall.get(name, 0.0), recall)
                all_times += loc["times"]
                t4 += loc["rows"]
            naps = napsets[a.deltas.index(a.radius_delta)] if a.radius_delta in a.deltas else napsets[0]
            rad = memo.get(f"radius/{name}/{naps.delta:g}/{a.images}/{a.radius_timeout:g}/{a.tol:g}",
                           lambda: self.radius(name, net, naps))  # noqa: B023
            if rad is None:  # --report-only: a finished run over fewer images, if any
                rad = memo.any_of(f"radius/{name}/{naps.delta:g}/", f"/{a.radius_timeout:g}/{a.tol:g}")
                if rad is not None:
                    fewer.append(f"{name}: {len(rad['plain'])} images")
            if rad is None:
                missing.append(f"{name} radius")
                continue
            plain, nap, ratios = rad["plain"], rad["nap"], rad["ratios"]
            if ratios:
                q = np.quantile(ratios, [0.25, 0.5, 0.75])
                t5.append(
                    [
                        name,
                        f"{naps.delta:g}",
                        len(plain),
                        f"{np.median(plain):.4f}",
                        f"{np.median(nap):.4f}",
                        f"{q[1]:.2f}",
                        f"{q[0]:.2f} – {q[2]:.2f}",
                    ]
                )
        if missing:
            self.say(f"Not run yet (this report was written with --report-only): {', '.join(missing)}.", "")
        if fewer:
            self.say(f"Table 5 from a finished run over fewer images: {', '.join(fewer)}.", "")
        self.say("## 1. Recall and precision (means over classes)", "")
        self.say(
            *md_table(
                [
                    "network",
                    "δ",
                    "neurons per NAP",
                    "recall train",
                    "precision train",
                    "recall test",
                    "precision test",
                ],
                t1,
            )
        )
        self.say("## 2. Non-ambiguity of the 45 NAP pairs over [0,1]^784", "")
        self.say(*md_table(["network", "δ", "disjoint by syntax", "verified", "falsified", "unknown"], t2))
        self.say("## 3. NAP robustness over the whole domain [0,1]^784 (per class: v/f/u/vacuous)", "")
        self.say(
            *md_table(
                ["network", "δ", "recall test", "verified", "falsified", "unknown", "vacuous", "classes 0-9"],
                t3,
            )
        )
        for name in a.nets:
            self.say(
                f"- {name}: highest test recall with all ten classes verified: "
                + (f"{best_recall[name]:.3f}" if name in best_recall else "none of the δ tried")
            )
        self.say("")
        self.say(
            "## 4. Local robustness on the VNN-COMP properties, without and with the NAP of the label", ""
        )
        self.say(
            *md_table(
                ["network", "δ", "ε", "verified (plain)", "verified (with NAP)", "vacuous with NAP"], t4
            )
        )
        self.say(
            f"## 5. Largest verified radius around the first {a.images} correctly classified test images", ""
        )
        self.say(
            *md_table(
                [
                    "network",
                    "δ",
                    "images",
                    "median radius plain",
                    "median radius with NAP",
                    "median ratio",
                    "quartiles of the ratio",
                ],
                t5,
            )
        )
        self.say("## 6. napkit against Marabou on a sample of the queries above", "")
        self.marabou()
        if all_times:
            self.say(
                f"napkit: {len(all_times)} queries, median {statistics.median(all_times):.2f} s, "
                f"total {sum(all_times):.0f} s; this run (resumed steps excluded) {time.perf_counter() - t_start:.0f} s."
            )
        self.out.write_text("\n".join(self.lines) + "\n")
        print(f"wrote {self.out} (finished steps kept in {self.memo.path}; --fresh recomputes them)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="256x2, δ ∈ {0.99, 0.95}, fewer images")
    ap.add_argument("--nets", nargs="+", default=["256x2", "256x4", "256x6"])
    ap.add_argument("--deltas", nargs="+", type=float, default=[1.0, 0.99, 0.95, 0.9, 0.85])
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--radius-delta", type=float, default=0.99)
    ap.add_argument("--radius-timeout", type=float, default=10.0)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--marabou-sample", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--fresh", action="store_true", help="ignore the finished steps of an earlier run")
    ap.add_argument("--report-only", action="store_true",
                    help="write the tables from the finished steps only; run no verification")
    args = ap.parse_args()
    if args.quick:
        args.nets, args.deltas = ["256x2"], [0.99, 0.95]
        args.timeout, args.images, args.radius_timeout, args.tol = 10.0, 10, 5.0, 1e-3
        args.marabou_sample = 6
    Paper(args).run()


if __name__ == "__main__":
    main()

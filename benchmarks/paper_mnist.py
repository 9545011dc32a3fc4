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


class Paper:
    def __init__(self, args) -> None:
        self.args = args
        self.lines: list[str] = []
        self.sample: list[tuple[str, object, object]] = []  # (name, net, Property) for Marabou
        self.xtr, self.ytr, self.xte, self.yte = load_mnist()

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
        return rows, test

    # ---- table 2 ---------------------------------------------------------------------------
    def ambiguity(self, name, net, naps):
        from napkit.patterns import syntactic_disjoint
        from napkit.verify import domain_box, verify_disjoint

        box = domain_box(net.n_inputs)
        syn = syntactic_disjoint(naps)
        counts = {"syntax": 0, "verified": 0, "falsified": 0, "unknown": 0}
        times = []
        for i in range(10):
            for j in range(i + 1, 10):
                if syn[i, j]:
                    counts["syntax"] += 1
                    continue
                res = verify_disjoint(net, box, naps.phases(i), naps.phases(j), timeout=self.args.timeout)
                counts[res.verdict if res.verdict in counts else "unknown"] += 1
                times.append(res.seconds)
                if len([s for s in self.sample if s[0].startswith("pair")]) < self.args.marabou_sample // 3:
                    self.sample.append(
                        (
                            f"pair {name} δ={naps.delta:g} {i}-{j}",
                            net,
                            ("disjoint", box, naps.phases(i), naps.phases(j), res),
                        )
                    )
        return counts, times

    # ---- table 3 ---------------------------------------------------------------------------
    def domain(self, name, net, naps):
        from napkit.verify import Property, domain_box, robustness_spec, verify_property

        box = domain_box(net.n_inputs)
        verdicts, times = [], []
        for c in range(10):
            prop = Property(box, robustness_spec(c, 10), naps.phases(c))
            res = verify_property(net, prop, timeout=self.args.timeout)
            verdicts.append(res.verdict)
            times.append(res.seconds)
            if len([s for s in self.sample if s[0].startswith("domain")]) < self.args.marabou_sample // 3:
                self.sample.append((f"domain {name} δ={naps.delta:g} class {c}", net, ("prop", prop, res)))
        return verdicts, times

    # ---- table 4 ---------------------------------------------------------------------------
    def local(self, name, net, naps):
        from napkit.verify import Property, read_vnnlib, verify_property

        rows, times = [], []
        for eps in ("0.03", "0.05"):
            plain_ok = nap_ok = vac = 0
            for k in range(8):
                path = VNNLIB / f"prop_{k}_{eps}.vnnlib.gz"
                if not path.exists():
                    continue
                prop = read_vnnlib(path).to_property(net.n_inputs, net.n_outputs)
                label = prop.output.label
                r0 = verify_property(net, prop, timeout=self.args.timeout)
                with_nap = Property(prop.box, prop.output, naps.phases(label))
                r1 = verify_property(net, with_nap, timeout=self.args.timeout)
                plain_ok += r0.verdict == "verified"
                nap_ok += r1.verdict == "verified"
                vac += r1.verdict == "vacuous"
                times += [r0.seconds, r1.seconds]
                if len([s for s in self.sample if s[0].startswith("local")]) < self.args.marabou_sample // 3:
                    self.sample.append(
                        (f"local {name} δ={naps.delta:g} prop_{k}_{eps}", net, ("prop", with_nap, r1))
                    )
            rows.append([name, f"{naps.delta:g}", eps, f"{plain_ok}/8", f"{nap_ok}/8", vac])
        return rows, times

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
        return plain, nap, ratios

    # ---- table 6 ---------------------------------------------------------------------------
    def marabou(self):
        from napkit.verify import marabou_available, verify_disjoint_marabou, verify_property_marabou

        if not marabou_available():
            self.say("Marabou (maraboupy) is not installed: table 6 skipped.", "")
            return
        rows, ratios = [], []
        for label, net, item in self.sample[: self.args.marabou_sample]:
            if item[0] == "prop":
                _, prop, ours = item
                theirs = verify_property_marabou(net, prop, timeout=self.args.timeout)
            else:
                _, box, pi, pj, ours = item
                theirs = verify_disjoint_marabou(net, box, pi, pj, timeout=self.args.timeout)
            ratio = theirs.seconds / max(ours.seconds, 1e-3)
            ratios.append(ratio)
            rows.append(
                [
                    label,
                    ours.verdict,
                    f"{ours.seconds:.2f}",
                    theirs.verdict,
                    f"{theirs.seconds:.2f}",
                    f"{ratio:.1f}x",
                ]
            )
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
        for name in a.nets:
            net = load_model(need(ONNX / f"mnist-net_{name}.onnx.gz"))
            miner = count_patterns(net, self.xtr, self.ytr, progress=False)
            napsets = [miner.naps(d) for d in a.deltas]
            rows, test_stats = self.stats(name, net, napsets)
            t1 += rows
            for naps, st in zip(napsets, test_stats, strict=True):
                counts, times = self.ambiguity(name, net, naps)
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
                verdicts, times = self.domain(name, net, naps)
                all_times += times
                t3.append(
                    [
                        name,
                        f"{naps.delta:g}",
                        f"{np.nanmean(st.recall):.3f}",
                        sum(v == "verified" for v in verdicts),
                        sum(v == "falsified" for v in verdicts),
                        sum(v == "unknown" for v in verdicts),
                        sum(v == "vacuous" for v in verdicts),
                        " ".join(v[0] for v in verdicts),
                    ]
                )
                if all(v == "verified" for v in verdicts):
                    best_recall[name] = max(best_recall.get(name, 0.0), float(np.nanmean(st.recall)))
                rows4, times = self.local(name, net, naps)
                all_times += times
                t4 += rows4
            naps = napsets[a.deltas.index(a.radius_delta)] if a.radius_delta in a.deltas else napsets[0]
            plain, nap, ratios = self.radius(name, net, naps)
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
                f"total {sum(all_times):.0f} s; whole run {time.perf_counter() - t_start:.0f} s."
            )
        out = a.out or RESULTS / ("paper_mnist_quick.md" if a.quick else "paper_mnist.md")
        out.write_text("\n".join(self.lines) + "\n")
        print(f"wrote {out}")


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
    args = ap.parse_args()
    if args.quick:
        args.nets, args.deltas = ["256x2"], [0.99, 0.95]
        args.timeout, args.images, args.radius_timeout, args.tol = 10.0, 10, 5.0, 1e-3
        args.marabou_sample = 6
    Paper(args).run()


if __name__ == "__main__":
    main()

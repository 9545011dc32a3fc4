"""The NAP paper's own setting: whole-domain NAP robustness per class, NAPs mined at δ over
all 60000 training images (``--all-samples``, as the authors' pattern files), one query per class.

    .venv/bin/python benchmarks/paper_domain.py --net 256x4 --delta 0.99 --timeout 60 [--classes 0 1 ...]
        [--workers N] [--out benchmarks/results/paper_domain.md]

Each query gets the 70000 MNIST images (train, then test) as ``witness`` rows: a strict
follower is the witness of non-emptiness, a follower the network classifies outside c is
a counterexample from the data (``napfalsify.data_points``). Every counterexample is
re-checked by an exact float64 pass and by onnxruntime on the ONNX model, and saved
(``--save DIR``: ``<net>_class<c>.npy``). Prints per class: the verdict, seconds, napkit's
reason, the NAP's recall on the test set, the counterexample's provenance and logits, and
the statistics of the stages. With ``--no-data`` only one training follower is given (the
witness), as before the data stage existed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, load_mnist, need  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="256x4")
    ap.add_argument("--delta", type=float, default=0.99)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--workers", type=int, default=None, help="processes per query (default: cores)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    ap.add_argument("--save", type=Path, default=None, help="directory for the counterexamples (.npy)")
    ap.add_argument("--no-data", action="store_true", help="give one follower only, not the images")
    ap.add_argument("--marabou", type=int, nargs="*", default=[], metavar="CLASS",
                    help="also run Marabou (same query, same timeout) on these classes")
    ap.add_argument("--marabou-only", action="store_true",
                    help="run Marabou alone on --classes; a counterexample saved under --save by an "
                         "earlier napkit run is checked against Marabou's verdict")
    args = ap.parse_args(argv)
    from napkit.network import from_onnx, load_onnx_model, onnx_logits
    from napkit.patterns import evaluate_many, mine
    from napkit.verify import (
        Property,
        domain_box,
        first_follower,
        robustness_spec,
        verify_property,
        verify_property_marabou,
    )

    proto = load_onnx_model(need(ONNX / f"mnist-net_{args.net}.onnx.gz"))
    net = from_onnx(proto)
    xtr, ytr, xte, yte = load_mnist()
    xtr, xte = xtr.astype(np.float64), xte.astype(np.float64)
    naps = mine(net, xtr, ytr, args.delta, all_samples=True, progress=False)
    recall = evaluate_many(net, [naps], xte, yte, progress=False)[0].recall
    if args.marabou_only:
        return marabou_only(args, net, proto, naps, recall, time.monotonic())
    data = np.vstack([xtr, xte])
    lines = [f"# Whole-domain NAP robustness, {args.net}, δ = {args.delta:g}, --all-samples NAPs, "
             f"timeout {args.timeout:g} s, workers {args.workers or 'default (cores)'}", "",
             f"load average at the start: {os.getloadavg()[0]:.1f}", "",
             "| class | verdict | s | recall test | reason | provenance | logits c / best other | unstable |"
             " MILP refuted | bab domains | Marabou | Marabou s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    counts: dict[str, int] = {}
    t0 = time.monotonic()
    for c in args.classes:
        ph = naps.phases(c)
        w = first_follower(net, ph, xtr) if args.no_data else data
        prop = Property(domain_box(net.n_inputs), robustness_spec(c, 10), ph)
        res = verify_property(net, prop, timeout=args.timeout, witness=w, onnx_model=proto, workers=args.workers)
        counts[res.verdict] = counts.get(res.verdict, 0) + 1
        st = res.stats
        prov, logits = "-", "-"
        if res.counterexample is not None:
            x = res.counterexample
            y64 = net.forward(x[None])[0][0]
            y32 = onnx_logits(proto, x[None], net.input_shape)[0]
            other = int(np.argmax(np.where(np.arange(10) == c, -np.inf, y64)))
            assert y64[other] >= y64[c] and y32[other] >= y32[c], "counterexample failed the re-check"
            logits = f"{y64[c]:.3f} / {y64[other]:.3f} (class {other})"
            hit = np.flatnonzero((data == x.astype(np.float32)).all(axis=1))
            if "data_index" in st or hit.size:
                i = int(st.get("data_index", hit[0] if hit.size else -1))
                prov = f"data: {'train' if i < 60000 else 'test'} image {i if i < 60000 else i - 60000}"
                prov += f" (label {int(np.concatenate([ytr, yte])[i])})"
            else:
                prov = res.reason.replace("counterexample found by ", "")
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                np.save(args.save / f"{args.net}_class{c}.npy", x)
        row = (f"| {c} | {res.verdict} | {res.seconds:.1f} | {recall[c]:.3f} | {res.reason} | {prov} | {logits} | "
               f"{st.get('unstable_final', st.get('unstable', '-'))} | {st.get('nap_milp_refuted', '-')} | "
               f"{st.get('bab_domains', '-')} |")
        if c in args.marabou:
            m = verify_property_marabou(net, prop, timeout=args.timeout)
            if m.verdict == "verified" and res.verdict == "falsified" or (
                    m.verdict == "falsified" and res.verdict == "verified"):
                row += " **disagree** "
            row += f" {m.verdict} | {m.seconds:.1f} |"
        else:
            row += " - | - |"
        lines.append(row)
        print(row, flush=True)
    tail = ["", "totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f"; wall {time.monotonic() - t0:.0f} s"]
    tail.append(f"load (uptime) at the end: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} "
                f"{os.getloadavg()[2]:.1f}")
    print("\n".join(tail))
    if args.out:
        args.out.write_text("\n".join(lines + tail) + "\n")
    return 0


def marabou_only(args, net, proto, naps, recall, t0: float) -> int:
    """Marabou on the same queries, as the independent check of napkit's verdicts: a
    Marabou counterexample is re-checked (float64 pass, onnxruntime, the NAP followed); a
    class with a napkit counterexample saved under ``--save`` must not be proved by Marabou."""
    from napkit.network import onnx_logits
    from napkit.verify import Property, domain_box, robustness_spec, verify_property_marabou
    from napkit.verify.properties import follows_phases

    lines = [f"# Marabou on the whole-domain NAP queries, {args.net}, δ = {args.delta:g}, "
             f"timeout {args.timeout:g} s", "", f"load average at the start: {os.getloadavg()[0]:.1f}", "",
             "| class | Marabou | s | recall test | napkit counterexample saved | agree | Marabou reason |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    clashes = 0
    for c in args.classes:
        ph = naps.phases(c)
        prop = Property(domain_box(net.n_inputs), robustness_spec(c, 10), ph)
        m = verify_property_marabou(net, prop, timeout=args.timeout)
        saved = args.save / f"{args.net}_class{c}.npy" if args.save else None
        ours = np.load(saved) if saved is not None and saved.exists() else None
        agree = "-"
        if m.verdict == "falsified":
            x = np.asarray(m.counterexample, dtype=np.float64)
            logits, pre = net.forward(x[None])
            y64 = logits[0]
            y32 = onnx_logits(proto, x[None], net.input_shape)[0]
            ok = bool(follows_phases(pre, ph)[0]) and np.delete(y64, c).max() >= y64[c] \
                and np.delete(y32, c).max() >= y32[c]
            agree = "counterexample re-checked" if ok else "**Marabou counterexample fails the re-check**"
        elif m.verdict == "verified" and ours is not None:
            agree = "**disagree: napkit holds a counterexample**"
            clashes += 1
        elif m.verdict == "verified":
            agree = "yes (no napkit counterexample)"
        row = (f"| {c} | {m.verdict} | {m.seconds:.1f} | {recall[c]:.3f} | "
               f"{'yes' if ours is not None else 'no'} | {agree} | {m.reason} |")
        lines.append(row)
        print(row, flush=True)
    tail = ["", f"disagreements: {clashes}; wall {time.monotonic() - t0:.0f} s",
            f"load (uptime) at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}"]
    print("\n".join(tail))
    if args.out:
        args.out.write_text("\n".join(lines + tail) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

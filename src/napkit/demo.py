"""The whole pipeline on the embedded digits data: train, capture, mine, monitor, report.

Everything is seeded, so two runs give the same network, NAPs and figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from napkit.capture import record
from napkit.cli_output import json_text
from napkit.datasets import load_digits_split
from napkit.errors import NapkitError
from napkit.network import save_model
from napkit.patterns import NAPMonitor, NAPStats, evaluate_many, mine_store, syntactic_disjoint
from napkit.report import build_report, staged_output
from napkit.zoo import train_mlp

DEMO_DELTAS = (1.0, 0.99, 0.95, 0.9)
DEMO_HIDDEN = (64, 64)
DEMO_EPS = 0.05
DEMO_DELTA = 0.95  # the δ whose NAPs are written to naps.json and monitored
DEMO_TIMEOUT = 5.0  # seconds per verification query: a demo, not a study


def run_demo(out: str | Path = "napkit-demo", progress: bool = True, seed: int = 0) -> dict:
    """Run the demo into folder ``out``; returns the figures it printed and wrote.

    ``out`` is checked as ``napkit report --out`` checks it (new, empty, or an earlier report)
    before any work, and the demo is built in a temporary sibling folder renamed to ``out`` at
    the end: an interrupted or failed demo leaves no half-written folder.
    """
    t0 = time.perf_counter()
    out = Path(out)
    try:
        with staged_output(out) as work:
            res = _build(work, out, progress, seed)
    except OSError as exc:
        raise NapkitError(f"cannot write the demo to {out}: {exc.strerror or exc}") from None
    return {**res, "seconds": time.perf_counter() - t0}


def _build(work: Path, out: Path, progress: bool, seed: int) -> dict:
    """The demo's files written into ``work``; the paths it reports are those under ``out``."""
    x_tr, x_te, y_tr, y_te = load_digits_split(seed=seed)
    net = train_mlp(x_tr, y_tr, hidden=DEMO_HIDDEN, epochs=60, seed=seed)
    save_model(net, work / "model.safetensors")
    acc = float((net.predict(x_te) == y_te).mean())

    store = record(net, x_tr, y_tr, work / "activations.zarr", mode="bits", batch_size=512, progress=progress)
    napsets = [mine_store(store, d, n_classes=net.n_outputs) for d in DEMO_DELTAS]
    fit = evaluate_many(net, napsets, x_tr, y_tr, only_correct=True, progress=progress)
    test = evaluate_many(net, napsets, x_te, y_te, progress=progress)
    rows = [
        {"delta": d, "naps": n, "fit": f, "eval": e}
        for d, n, f, e in zip(DEMO_DELTAS, napsets, fit, test, strict=True)
    ]
    main = napsets[DEMO_DELTAS.index(DEMO_DELTA)]
    main.save(work / "naps.json")

    monitor = NAPMonitor(net, delta=DEMO_DELTA).set_naps(main)
    report0 = monitor.evaluate(x_te, y_te)
    monitor.set_params(tolerance=2)
    report2 = monitor.evaluate(x_te, y_te)

    # novelty: a network that never saw class 9, monitored with the NAPs of classes 0..8
    held_out = [9]
    seen = y_tr != 9
    net9 = train_mlp(x_tr[seen], y_tr[seen], hidden=DEMO_HIDDEN, epochs=60, seed=seed)
    novelty = (
        NAPMonitor(net9, delta=DEMO_DELTA)
        .fit(x_tr[seen], y_tr[seen])
        .evaluate(x_te, y_te, novel_classes=held_out)
    )
    disjoint = syntactic_disjoint(main)
    n_pairs = len(main.labels) * (len(main.labels) - 1) // 2
    figures = build_report(
        net, main, x_te, y_te, work, mine_data=(x_tr, y_tr), sweep=rows, sweep_names=("train", "test"),
        verify_timeout=DEMO_TIMEOUT, eps=DEMO_EPS, title="napkit demo: an MLP on scikit-learn's digits",
        source="model.safetensors", data_name="digits, test split",
        novelty={"what": "a network trained without class 9, monitored with the NAPs of classes 0-8",
                 **novelty.to_dict()},
        merge=True, progress=progress,
    )
    figures["report"] = str(out / "index.html")
    verification = _verdicts(figures["verification"])
    metrics = {
        "model": {
            "layers": list(net.layer_sizes),
            "test_accuracy": acc,
            "fingerprint": net.fingerprint(),
        },
        "sweep": [
            {
                "delta": r["delta"],
                "neurons": r["naps"].sizes().tolist(),
                "train_correct": r["fit"].to_dict(),
                "test": r["eval"].to_dict(),
            }
            for r in rows
        ],
        "monitor": {"delta": DEMO_DELTA, "gamma0": report0.to_dict(), "gamma2": report2.to_dict()},
        "novelty": {"held_out": held_out, **novelty.to_dict()},
        "syntactically_disjoint_pairs": int(np.triu(disjoint, 1).sum()),
        "pairs": n_pairs,
        "verification": verification,
        "report": figures,
    }
    (work / "metrics.json").write_text(json_text(metrics, indent=2))
    return {
        "report": str(out / "index.html"),
        "naps": str(out / "naps.json"),
        "metrics": str(out / "metrics.json"),
        "test_accuracy": acc,
        "delta": DEMO_DELTA,
        "recall": [None if np.isnan(v) else float(v) for v in main_stats(rows).recall],
        "precision": [None if np.isnan(v) else float(v) for v in main_stats(rows).precision],
        "rows": rows,
        "monitor": report0,
        "monitor_gamma2": report2,
        "novelty": novelty,
        "verified": verification["verified"],
        "verification": verification,
        **{k: metrics[k] for k in ("syntactically_disjoint_pairs", "pairs")},
    }


def _verdicts(ver: dict) -> dict:
    """The report's verification figures as the demo prints them: verdicts by class and pair."""
    verdicts = {
        "domain": {r["label"]: r["domain"]["result"] for r in ver["classes"]},
        "local": {r["label"]: r["local"]["result"] for r in ver["classes"] if r["centre_index"] is not None},
        "pairs": {f"{p['i']}-{p['j']}": p["result"] for p in ver["pairs"]},
    }
    return {**verdicts, "eps": ver["eps"], "timeout": ver["timeout"], "verified": ver["verified"],
            "queries": sum(len(v) for v in verdicts.values())}


def main_stats(rows: list[dict]) -> NAPStats:
    return next(r["eval"] for r in rows if r["delta"] == DEMO_DELTA)

"""The whole pipeline on the embedded digits data: train, capture, mine, monitor, report.

Everything is seeded, so two runs give the same network, NAPs and figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from napkit.capture import record
from napkit.datasets import load_digits_split
from napkit.errors import NapkitError
from napkit.network import save_model
from napkit.patterns import NAPMonitor, NAPStats, evaluate_many, mine_store, syntactic_disjoint
from napkit.progress import status_line
from napkit.report import plot_delta_sweep, plot_naps, table_html, write_report
from napkit.zoo import train_mlp

DEMO_DELTAS = (1.0, 0.99, 0.95, 0.9)
DEMO_HIDDEN = (64, 64)
DEMO_EPS = 0.05
DEMO_DELTA = 0.95  # the δ whose NAPs are written to naps.json and monitored


def _writable_dir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".napkit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise NapkitError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def run_demo(out: str | Path = "napkit-demo", progress: bool = True, seed: int = 0) -> dict:
    """Run the demo into folder ``out``; returns the figures it printed and wrote."""
    t0 = time.perf_counter()
    out = _writable_dir(Path(out))
    x_tr, x_te, y_tr, y_te = load_digits_split(seed=seed)
    net = train_mlp(x_tr, y_tr, hidden=DEMO_HIDDEN, epochs=60, seed=seed)
    save_model(net, out / "model.safetensors")
    acc = float((net.predict(x_te) == y_te).mean())

    store_path = out / "activations.zarr"
    if store_path.exists():
        import shutil

        shutil.rmtree(store_path)
    store = record(net, x_tr, y_tr, store_path, mode="bits", batch_size=512, progress=progress)
    napsets = [mine_store(store, d, n_classes=net.n_outputs) for d in DEMO_DELTAS]
    fit = evaluate_many(net, napsets, x_tr, y_tr, only_correct=True, progress=progress)
    test = evaluate_many(net, napsets, x_te, y_te, progress=progress)
    rows = [
        {"delta": d, "naps": n, "fit": f, "eval": e}
        for d, n, f, e in zip(DEMO_DELTAS, napsets, fit, test, strict=True)
    ]
    main = napsets[DEMO_DELTAS.index(DEMO_DELTA)]
    main.save(out / "naps.json")

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
    with status_line("verifying the NAPs (5 s per query at most)", progress):
        verification = verify_naps(net, main, x_te, y_te, monitor)

    plot_naps(main, out / "naps.png")
    plot_delta_sweep(rows, out / "delta_sweep.png")
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
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _write_html(out, metrics, rows)
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
        "seconds": time.perf_counter() - t0,
        **{k: metrics[k] for k in ("syntactically_disjoint_pairs", "pairs")},
    }


def verify_naps(
    net, naps, x_te, y_te, monitor: NAPMonitor, eps: float = DEMO_EPS, timeout: float = 5.0
) -> dict:
    """Prove or refute NAP properties of the demo network (short timeouts: a demo, not a study).

    - NAP robustness over the whole domain [0, 1]^64 for each class;
    - NAP-augmented local robustness in an L-inf ball of radius ``eps`` around the first
      test image of each class that is classified correctly and follows its NAP;
    - non-ambiguity of every pair of NAPs over the domain.
    """
    from napkit.verify import domain_box, linf_ball, verify_disjoint, verify_robustness

    box = domain_box(net.n_inputs)
    labels = naps.labels.tolist()
    domain = {c: verify_robustness(net, box, c, naps.phases(c), timeout=timeout).verdict for c in labels}
    follows = (monitor.predict(x_te) == 1) & (net.predict(x_te) == y_te)
    local = {}
    for c in labels:
        rows = np.flatnonzero(follows & (y_te == c))
        if len(rows):
            ball = linf_ball(np.asarray(x_te[rows[0]], float), eps)
            local[c] = verify_robustness(net, ball, c, naps.phases(c), timeout=timeout).verdict
    syntactic = syntactic_disjoint(naps)
    pairs = {}
    for a in range(len(labels)):
        for b in range(a + 1, len(labels)):
            if syntactic[a, b]:
                pairs[f"{labels[a]}-{labels[b]}"] = "verified"
            else:
                res = verify_disjoint(
                    net, box, naps.phases(labels[a]), naps.phases(labels[b]), timeout=timeout
                )
                pairs[f"{labels[a]}-{labels[b]}"] = res.verdict
    verdicts = [*domain.values(), *local.values(), *pairs.values()]
    return {
        "domain": domain,
        "local": local,
        "eps": eps,
        "pairs": pairs,
        "verified": sum(v == "verified" for v in verdicts),
        "queries": len(verdicts),
    }


def main_stats(rows: list[dict]) -> NAPStats:
    return next(r["eval"] for r in rows if r["delta"] == DEMO_DELTA)


def _write_html(out: Path, metrics: dict, rows: list[dict]) -> None:
    sweep_rows = []
    for r in rows:
        sweep_rows.append(
            [
                f"{r['delta']:g}",
                f"{np.nanmean(r['fit'].recall):.3f}",
                f"{np.nanmean(r['eval'].recall):.3f}",
                f"{np.nanmean(r['eval'].precision):.3f}",
                int(np.mean(r["naps"].sizes())),
            ]
        )
    mon = metrics["monitor"]["gamma0"]
    sections = [
        (
            "Model",
            f"<p>MLP {metrics['model']['layers']}, test accuracy {metrics['model']['test_accuracy']:.3f}</p>",
        ),
        (
            "Recall and precision against δ (mean over classes)",
            table_html(["δ", "recall train", "recall test", "precision test", "neurons"], sweep_rows),
        ),
        (
            f"Run-time monitor (δ = {metrics['monitor']['delta']}, γ = 0)",
            table_html(
                ["flagged", "errors caught", "AUROC (NAP)", "AUROC (max softmax)"],
                [
                    [
                        mon["flagged_rate"],
                        mon["misclassified_caught"],
                        mon["auroc"],
                        mon["max_softmax_auroc"],
                    ]
                ],
            ),
        ),
    ]
    v = metrics["verification"]
    verdicts = ("verified", "falsified", "unknown", "vacuous")
    rows_v = [
        [what, *[sum(x == k for x in d.values()) for k in verdicts]]
        for what, d in (
            ("NAP robustness over [0,1]^64, per class", v["domain"]),
            (f"NAP robustness within ε = {v['eps']} of a test image, per class", v["local"]),
            ("non-ambiguity, per pair of NAPs", v["pairs"]),
        )
    ]
    sections.append(("Verification (timeout 5 s per query)", table_html(["query", *verdicts], rows_v)))
    write_report(out / "index.html", "napkit demo: digits", sections, ["naps.png", "delta_sweep.png"])

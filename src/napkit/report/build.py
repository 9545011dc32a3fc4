"""``build_report``: the whole report of a model, its NAPs and labelled data, as a static folder.

The figures are computed first (:mod:`figures`, :mod:`verification`), then drawn and
written into a temporary folder that replaces ``out`` only when everything is written.
The returned dict (rounded by :func:`napkit.report.fmt.rounded`) is what ``--json`` prints.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napkit.cli_output import json_text
from napkit.errors import NapkitError
from napkit.patterns import NAPSet, delta_sweep, nap_stats
from napkit.report import sections
from napkit.report.figures import (
    image_shape_of,
    model_summary,
    monitor_figures,
    nap_rows,
    sweep_deltas,
    sweep_rows,
)
from napkit.report.fmt import DIGITS, fmt, rounded
from napkit.report.html import DRAWN_PREFIX, check_report_target, page_html, publish
from napkit.report.journal import QueryJournal, journal_path
from napkit.report.plots import plot_delta_sweep, plot_naps
from napkit.report.plots_monitor import plot_roc, plot_violation_hist
from napkit.report.plots_verify import plot_ambiguity, plot_counterexample
from napkit.report.verification import verification_json, verify_for_report
from napkit.staging import staging_folder

MAX_DRAWN = 20  # counterexamples drawn as images at most (the table lists them all)


def _nearest(pool_x: np.ndarray, pool_y: np.ndarray, label: int, x: np.ndarray):
    """The image of class ``label`` in the pool closest to ``x`` (L2), and its distance."""
    rows = np.flatnonzero(pool_y == label)
    if not len(rows):
        return None, None
    cand = pool_x[rows].astype(np.float64)
    d2 = np.einsum("ij,ij->i", cand, cand) - 2 * cand @ x + x @ x
    k = int(np.argmin(d2))
    return cand[k], float(np.sqrt(max(d2[k], 0.0)))


def _counterexamples(ver: dict, pool: tuple, shape, folder: Path) -> list[dict]:
    """One entry per falsified query; images when inputs are images (at most MAX_DRAWN)."""
    found = []
    for r in ver["classes"]:
        for kind, name in (("domain", "over the domain"), ("local", f"within ε = {fmt(ver['eps'])}")):
            q = r[kind]
            if q.counterexample is not None:
                found.append((f"class {r['label']}, {name}", r["label"], q,
                              f"{DRAWN_PREFIX}{kind}_{r['label']}.png"))
    labels = ver["labels"]
    for (a, b), q in sorted(ver["pairs"].items()):
        if q.counterexample is not None:
            found.append((f"NAPs {labels[a]} and {labels[b]}: an input follows both", labels[a], q,
                          f"{DRAWN_PREFIX}pair_{labels[a]}_{labels[b]}.png"))
    items = []
    for k, (query, label, q, png) in enumerate(found):
        near, dist = _nearest(*pool, label, q.counterexample)
        item = {"query": query, "label": label, "predicted": q.predicted, "distance": dist, "image": None}
        if shape is not None and k < MAX_DRAWN:
            plot_counterexample(q.counterexample, q.predicted, label, near, dist, shape, folder / png)
            item["image"] = png
        items.append(item)
    return items


def build_report(
    net,
    naps: NAPSet,
    x: np.ndarray,
    y: np.ndarray,
    out: str | Path,
    *,
    mine_data: tuple[np.ndarray, np.ndarray] | None = None,
    sweep: Sequence[dict] | None = None,
    sweep_names: tuple[str, str] = ("mining data", "data"),
    verify_timeout: float = 5.0,
    eps: float = 0.05,
    max_queries: int | None = None,
    image_shape: Sequence[int] | None = None,
    lo: float = 0.0,
    hi: float = 1.0,
    title: str | None = None,
    source: str = "",
    data_name: str = "data",
    onnx_model=None,
    novelty: dict | None = None,
    merge: bool = False,
    progress: bool = False,
    resumable: bool = False,
) -> dict:
    """Write ``out/index.html`` with its images and ``figures.json``; return the figures.

    ``mine_data`` (inputs, labels) adds the δ sweep (mined from it, evaluated on the data)
    and is where counterexamples find their nearest image; ``sweep`` gives the sweep's rows
    directly (as :func:`napkit.patterns.delta_sweep` returns them). ``merge`` adds the
    report's files to an existing folder instead of replacing it. ``resumable`` keeps the
    finished verification queries beside ``out`` (:func:`napkit.report.journal.journal_path`)
    until the report is written, so that a rerun after Ctrl-C does not run them again.
    """
    out = Path(out)
    check_report_target(out, merge)
    x, y = net.reshape_inputs(x), np.asarray(y)  # kept in its own dtype (float32 data stays small)
    if len(x) != len(y):
        raise NapkitError(f"{len(x)} inputs but {len(y)} labels")
    naps.check_model(net.fingerprint())
    shape = image_shape_of(net.n_inputs, net.input_shape, image_shape)
    if shape is not None and int(np.prod(shape)) != net.n_inputs:
        raise NapkitError(f"an image shape of {shape} does not hold the model's {net.n_inputs} inputs")
    accuracy = float((net.predict(x) == y).mean())
    stats = nap_stats(net, naps, x, y, progress=progress)
    if sweep is None and mine_data is not None:
        sweep = delta_sweep(net, *mine_data, sweep_deltas(naps.delta), x, y, naps.all_samples,
                            progress=progress)
    mon = monitor_figures(net, naps, x, y, progress)
    journal = QueryJournal(journal_path(out)) if resumable else None
    ver = verify_for_report(net, naps, x, y, verify_timeout, eps, max_queries, lo, hi, onnx_model, progress,
                            journal=journal)
    figures = {
        "model": model_summary(net, accuracy, len(x), source),
        "naps": {"delta": naps.delta, "all_samples": naps.all_samples, "classes": nap_rows(naps, stats)},
        "sweep": None if sweep is None else sweep_rows(sweep),
        "monitor": {k: v for k, v in mon.items() if k not in ("violations", "wrong", "roc")},
        "verification": verification_json(ver),
        "image_shape": None if shape is None else list(shape),
    }
    if novelty:
        figures["novelty"] = novelty
    pool = mine_data if mine_data is not None else (x, y)
    pool = (net.reshape_inputs(pool[0]), np.asarray(pool[1]))
    staged = staging_folder(out)
    try:
        plot_naps(naps, staged / "naps.png")
        if sweep is not None:
            plot_delta_sweep(list(sweep), staged / "delta_sweep.png", sweep_names)
        plot_roc(mon, staged / "roc.png")
        plot_violation_hist(mon, staged / "violations.png")
        plot_ambiguity(ver["labels"], ver["pairs"], staged / "ambiguity.png")
        cex = _counterexamples(ver, pool, shape, staged)
        figures["counterexamples"] = [{k: v for k, v in c.items()} for c in cex]
        figures = rounded(figures)
        region = f"[{lo:g}, {hi:g}]^{net.n_inputs}"
        page = sections.page_sections(figures, mon, ver, sweep_names, novelty, region, data_name,
                                      has_sweep=sweep is not None, cex=cex)
        name = title or f"napkit report: {Path(source).name or 'model'}"
        subtitle = (f"{data_name}: {len(x)} samples; NAPs at δ = {fmt(naps.delta)}. All numbers are "
                    f"rounded to {DIGITS} decimals.")
        (staged / "index.html").write_text(page_html(name, subtitle, page), encoding="utf-8")
        (staged / "figures.json").write_text(json_text(figures, indent=1), encoding="utf-8")
        publish(staged, out, merge)
        if journal is not None:
            journal.remove()
    except OSError as exc:
        raise NapkitError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    figures["report"] = str(out / "index.html")
    return figures

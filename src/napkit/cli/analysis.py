"""Analysis commands: report, codes, similarity."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from napkit.cli.common import (
    ForceOpt,
    HiOpt,
    Interrupted,
    JsonOpt,
    LoOpt,
    ModelArg,
    ProgressOpt,
    SplitOpt,
    app,
    check_output,
    layer_list,
    load_pair,
    out_console,
)
from napkit.cli.queries import onnx_proto
from napkit.cli_output import emit_json as emit
from napkit.errors import NapkitError
from napkit.staging import replacing


def _image_shape(text: str | None) -> tuple[int, int] | None:
    """``H,W`` as two positive integers."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise NapkitError(f"--image-shape must be two positive integers H,W, got {text!r}")
    return int(parts[0]), int(parts[1])


def _figure_path(path: Path, force: bool) -> Path:
    """``--png``: a new file (or ``force``) whose suffix names a format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    check_output(path, force)
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if path.suffix.lower().lstrip(".") not in formats:
        known = ", .".join(formats)
        raise NapkitError(f"--png {path}: the name must end in a format matplotlib writes (.{known})")
    return path


@app.command()
def report(
    model: ModelArg,
    naps: Annotated[Path, typer.Option("--naps", help="NAP file from `napkit mine`")],
    data: Annotated[Path, typer.Option("--data", help=".npz the report evaluates on (x, y)")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (new, empty, or an earlier report)")],
    split: SplitOpt = None,
    mine_data: Annotated[
        Path | None, typer.Option("--mine-data", help=".npz the NAPs were mined from: adds the δ sweep")
    ] = None,
    mine_split: Annotated[
        str | None, typer.Option("--mine-split", help="Read x_<S>/y_<S> of --mine-data")
    ] = None,
    verify_timeout: Annotated[
        float, typer.Option("--verify-timeout", help="Seconds per verification query")
    ] = 5.0,
    eps: Annotated[float, typer.Option("--eps", help="L-inf radius of the local queries")] = 0.05,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", help="Run at most N solver queries (the rest: skipped)")
    ] = None,
    image_shape: Annotated[
        str | None, typer.Option("--image-shape", help="H,W to draw inputs as images (default: squares)")
    ] = None,
    lo: LoOpt = 0.0,
    hi: HiOpt = 1.0,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """An HTML report of a model and its NAPs: NAPs, δ sweep, monitor, verification, counterexamples."""
    from napkit.datasets import load_npz
    from napkit.report import build_report

    shape = _image_shape(image_shape)
    if not (math.isfinite(verify_timeout) and verify_timeout > 0):
        raise NapkitError(f"--verify-timeout must be a positive number of seconds, got {verify_timeout}")
    if not (math.isfinite(eps) and eps > 0):
        raise NapkitError(f"--eps must be a positive number, got {eps}")
    if max_queries is not None and max_queries < 0:
        raise NapkitError(f"--max-queries must be ≥ 0, got {max_queries}")
    if not lo < hi:
        raise NapkitError(f"the domain needs --lo < --hi, got {lo} and {hi}")
    if mine_split is not None and mine_data is None:
        raise NapkitError("--mine-split needs --mine-data")
    net, napset = load_pair(model, naps)
    x, y = load_npz(data, split)
    mined = load_npz(mine_data, mine_split) if mine_data is not None else None
    t0 = time.perf_counter()
    try:
        figs = build_report(
            net,
            napset,
            x,
            y,
            out,
            mine_data=mined,
            verify_timeout=verify_timeout,
            eps=eps,
            max_queries=max_queries,
            image_shape=shape,
            lo=lo,
            hi=hi,
            source=str(model),
            data_name=data.name + (f" ({split})" if split else ""),
            onnx_model=onnx_proto(model),
            progress=progress,
            resumable=True,
        )
    except KeyboardInterrupt:
        from napkit.report.journal import journal_path

        if journal_path(out).is_file():
            raise Interrupted(
                f"finished verification queries are in {journal_path(out)}; the same command resumes"
            ) from None
        raise
    figs["seconds"] = round(time.perf_counter() - t0, 3)
    if not as_json:
        from napkit.report import fmt

        m, mon, ver = figs["model"], figs["monitor"], figs["verification"]
        counts = ver["counts"]
        out_console.print(
            f"{model.name}: accuracy {fmt(m['accuracy'])} on {m['samples']} samples; NAP-violation AUROC "
            f"{fmt(mon['auroc'])} (max-softmax {fmt(mon['max_softmax_auroc'])})",
            soft_wrap=True,
        )
        for kind, name in (
            ("domain", "robust over the domain"),
            ("local", f"robust within ε = {fmt(eps)}"),
            ("pairs", "NAP pairs disjoint"),
        ):
            c = counts[kind]
            out_console.print(
                f"{name}: {c['verified']} verified, {c['falsified']} falsified, {c['unknown']} unknown, "
                f"{c['vacuous']} vacuous, {c['skipped']} skipped",
                soft_wrap=True,
            )
        out_console.print(f"wrote {figs['report']} in {fmt(figs['seconds'])} s", soft_wrap=True)
    emit(figs, as_json)


# ---- representations ------------------------------------------------------------------------


def _train_test(data: Path, split: str | None, test_split: str | None, seed: int = 0):
    """(x_train, y_train, x_test, y_test): named splits, the file's train/test, or a seeded 80/20 split."""
    from sklearn.model_selection import train_test_split

    from napkit.datasets import load_npz, npz_keys

    if split is None and test_split is None:
        if {"x_train", "y_train", "x_test", "y_test"} <= set(npz_keys(data)):
            split, test_split = "train", "test"
    x, y = load_npz(data, split)
    if test_split is not None:
        xt, yt = load_npz(data, test_split)
        return x, y, xt, yt
    if len(x) < 2:
        raise NapkitError(f"{data} holds {len(x)} input: splitting it into train and test needs at least 2")
    x, xt, y, yt = train_test_split(x, y, test_size=0.2, random_state=seed)
    return x, y, xt, yt


@app.command()
def codes(
    model: ModelArg,
    data: Annotated[Path, typer.Argument(help=".npz: x_train/x_test, or x and y (split 80/20, seeded)")],
    split: SplitOpt = None,
    test_split: Annotated[
        str | None, typer.Option("--test-split", help="Read the test set from x_<S>")
    ] = None,
    layers: Annotated[list[str] | None, typer.Option("--layers", help="Hidden layers of the code")] = None,
    kmeans: Annotated[bool, typer.Option("--kmeans/--no-kmeans", help="k-means categorisation")] = True,
    samples: Annotated[
        int | None, typer.Option("--samples", min=2, help="Use the first N training and N test inputs")
    ] = None,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Binary activation codes: redundancy, and k-NN, logistic regression and k-means on codes."""
    from napkit.codes import codes_report
    from napkit.network import load_model
    from napkit.progress import status_line

    net = load_model(model)
    x, y, xt, yt = _train_test(data, split, test_split)
    if samples is not None:
        x, y, xt, yt = x[:samples], y[:samples], xt[:samples], yt[:samples]
    with status_line(f"activation codes of {len(x)} + {len(xt)} inputs", progress):
        rep = codes_report(net, x, y, xt, yt, layers=layer_list(layers), kmeans=kmeans)
    if not as_json:
        table = Table(
            title=f"Activation codes of {model.name} ({rep['bits']} varying of {rep['units']} units)"
        )
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, value in rep.items():
            if isinstance(value, float):
                table.add_row(key, f"{value:.4f}")
            elif isinstance(value, int):
                table.add_row(key, str(value))
        out_console.print(table)
    emit(rep, as_json)


@app.command()
def similarity(
    paths: Annotated[list[Path], typer.Argument(help="MODEL_A \\[MODEL_B] DATA")],
    method: Annotated[str, typer.Option("--method", help="cka, debiased_cka or rsa_<spearman|...>")] = "cka",
    split: SplitOpt = None,
    samples: Annotated[int, typer.Option("--samples", help="Use the first N inputs")] = 2000,
    pre: Annotated[bool, typer.Option("--pre", help="Compare pre-activations, not ReLU outputs")] = False,
    png: Annotated[Path | None, typer.Option("--png", help="Write the heat map here")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Layer × layer representational similarity of two models (or one with itself)."""
    from napkit.capture import iter_activations
    from napkit.datasets import load_npz
    from napkit.geometry import plot_similarity, similarity_matrix
    from napkit.network import load_model

    if len(paths) not in (2, 3):
        raise NapkitError("give MODEL DATA or MODEL_A MODEL_B DATA")
    if samples < 2:
        raise NapkitError("--samples must be at least 2")
    if png is not None:
        _figure_path(png, force)
    *models, data = paths
    x, _ = load_npz(data, split)
    x = x[:samples]

    def acts(path: Path) -> dict[str, np.ndarray]:
        net = load_model(path)
        parts: dict[str, list[np.ndarray]] = {}
        for batch in iter_activations(net, x, progress=False):
            for k, a in batch.acts.items():
                parts.setdefault(k, []).append(a if pre else np.maximum(a, 0))
        return {k: np.concatenate(v) for k, v in parts.items()}

    acts_a = acts(models[0])
    acts_b = acts(models[1]) if len(models) == 2 else None
    try:
        matrix, names_a, names_b = similarity_matrix(acts_a, acts_b, method=method)
    except NapkitError as exc:
        if pre or "zero variance" not in str(exc):
            raise
        raise NapkitError(
            f"{exc}; ReLU outputs of units that never fire are constant: compare pre-activations with --pre"
        ) from None
    if png is not None:
        labels = (models[0].name, models[-1].name)
        title = f"{method} between layers"
        with replacing(png) as tmp:
            plot_similarity(matrix, names_a, names_b, title=title, labels=labels, path=tmp)
    if not as_json:
        table = Table(title=f"{method}: rows {models[0].name}, columns {models[-1].name}")
        table.add_column("")
        for n in names_b:
            table.add_column(n, justify="right")
        for n, row in zip(names_a, matrix, strict=True):
            table.add_row(n, *[f"{v:.3f}" for v in row])
        out_console.print(table)
    emit(
        {
            "method": method,
            "rows": names_a,
            "columns": names_b,
            "matrix": matrix.tolist(),
            "samples": len(x),
            "png": None if png is None else str(png),
        },
        as_json,
    )

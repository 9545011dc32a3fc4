"""The ``napkit`` command: parses arguments, calls the library, prints. No logic of its own.

Exit codes: 0 success, 1 a verification failure it was asked to detect, 2 bad input
(one line on stderr, no traceback). ``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from napkit.cli_output import emit_json as _emit
from napkit.errors import NapkitError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural activation patterns: capture, mine, monitor and verify them.",
)
out_console = Console()


def _version(value: bool) -> None:
    if value:
        from napkit import __version__

        print(f"napkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Neural activation patterns: capture, mine, monitor and verify them."""


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Read x_<split>/y_<split> from DATA.")]
ModelArg = Annotated[Path, typer.Argument(help="ONNX (.onnx, .onnx.gz), napkit (.safetensors) or .pt")]
DataArg = Annotated[Path, typer.Argument(help=".npz with x and y")]
ToleranceOpt = Annotated[int, typer.Option("--tolerance", help="Hamming tolerance γ")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output.")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="A dask.distributed scheduler (tcp://HOST:PORT): run on its workers."),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Local worker processes (default: the CPU count): a batch runs "
                 "that many queries side by side; one query proves and falsifies in parallel"),
]
ResultsOpt = Annotated[
    Path | None,
    typer.Option("--results", help="JSON-lines file of finished queries; a run resumes from it."),
]


INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C (128 + SIGINT)


class Interrupted(Exception):
    """Ctrl-C, with where the work can be resumed from."""


def _positive_seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive number of seconds, got {value:g}")
    return value


def _check_output(path: Path, force: bool = True) -> Path:
    """``path`` can be written; an existing file is refused unless ``force``."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise NapkitError(f"cannot write {path}: folder {parent} does not exist")
    if path.exists() and not force:
        raise NapkitError(f"{path} exists: choose another path, or pass --force to replace it")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise NapkitError(f"cannot write {path}: permission denied")
    return path


def _check_folder(path: Path, force: bool) -> Path:
    """An output folder: created when missing; a non-empty one is refused unless ``force``."""
    if path.exists() and not path.is_dir():
        raise NapkitError(f"cannot write into {path}: it exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise NapkitError(f"{path} is not empty: choose another folder, or pass --force to write into it")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NapkitError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


@contextmanager
def _atomic(path: Path):
    """Yield a temporary path beside ``path``; renamed to ``path`` only when the block succeeds."""
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _stats_table(title: str, stats_by_delta: list[tuple[str, object]]) -> Table:
    table = Table(title=title)
    table.add_column("class", justify="right")
    for name, _ in stats_by_delta:
        table.add_column(f"{name} R" if name else "recall", justify="right")
        table.add_column(f"{name} P" if name else "precision", justify="right")
    labels = stats_by_delta[0][1].labels
    for i, c in enumerate(labels.tolist()):
        cells = []
        for _, s in stats_by_delta:
            cells += [_fmt(float(s.recall[i])), _fmt(float(s.precision[i]))]
        table.add_row(str(c), *cells)
    return table


def _layers(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the report.")] = Path("napkit-demo"),
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """The whole pipeline on scikit-learn's bundled digits: train, capture, mine, monitor, report."""
    from napkit.demo import run_demo

    res = run_demo(out, progress=progress and not as_json)
    if not as_json:
        out_console.print(f"[bold]MLP 64-64-64-10 on digits[/]: test accuracy {res['test_accuracy']:.3f}")
        out_console.print(
            _stats_table(
                "NAP recall (R) and precision (P) on the test split",
                [(f"δ={r['delta']:g}", r["eval"]) for r in res["rows"]],
            )
        )
        for key, label in (("monitor", "γ = 0"), ("monitor_gamma2", "γ = 2")):
            m = res[key]
            out_console.print(
                f"monitor (δ = {res['delta']}, {label}): flagged {m.flagged_rate:.1%}, "
                f"errors caught {_fmt(m.misclassified_caught)}, AUROC {_fmt(m.auroc)} "
                f"(max softmax {_fmt(m.max_softmax_auroc)})"
            )
        nov = res["novelty"]
        out_console.print(
            f"novelty (a network trained without class 9): {_fmt(nov.novel_flagged)} of class-9 "
            f"inputs flagged, AUROC {_fmt(nov.novelty_auroc)}"
        )
        out_console.print(
            f"{res['syntactically_disjoint_pairs']} of {res['pairs']} NAP pairs are disjoint by syntax"
        )
        v = res["verification"]
        count = lambda d, what: sum(x == what for x in d.values())  # noqa: E731
        out_console.print(
            f"verification (timeout 5 s each): NAP robustness over [0,1]^64 verified for "
            f"{count(v['domain'], 'verified')} of {len(v['domain'])} classes "
            f"({count(v['domain'], 'falsified')} falsified with a re-checked counterexample); "
            f"within ε = {v['eps']} of a test image {count(v['local'], 'verified')} of {len(v['local'])}; "
            f"NAP pairs proved disjoint {count(v['pairs'], 'verified')} of {len(v['pairs'])}"
        )
        out_console.print(f"report: {res['report']}")
    _emit(
        {
            "report": res["report"],
            "naps": res["naps"],
            "metrics": res["metrics"],
            "delta": res["delta"],
            "test_accuracy": res["test_accuracy"],
            "recall": res["recall"],
            "precision": res["precision"],
            "flagged_rate": res["monitor"].flagged_rate,
            "misclassified_caught": res["monitor"].misclassified_caught,
            "auroc": res["monitor"].auroc,
            "verified": res["verified"],
            "seconds": res["seconds"],
        },
        as_json,
    )


@app.command()
def mine(
    model: Annotated[Path, typer.Argument(help="ONNX (.onnx, .onnx.gz), napkit (.safetensors) or .pt")],
    data: Annotated[Path, typer.Argument(help=".npz with x and y, or a store from `napkit capture`")],
    delta: Annotated[float, typer.Option("--delta", help="δ in (0.5, 1]")],
    out: Annotated[Path, typer.Option("--out", help="NAP file to write")],
    all_samples: Annotated[
        bool, typer.Option("--all-samples", help="Mine misclassified samples too.")
    ] = False,
    layers: Annotated[
        list[str] | None, typer.Option("--layers", help="Hidden layers to use (names).")
    ] = None,
    split: SplitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 4096,
    scheduler: SchedulerOpt = None,
    force: ForceOpt = False,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Mine one NAP per class with the δ rule (from a store: on a dask cluster with --scheduler)."""
    from napkit.datasets import load_npz
    from napkit.network import load_model
    from napkit.patterns import check_delta
    from napkit.patterns import mine as mine_naps

    check_delta(delta)
    _check_output(out, force)
    net = load_model(model)
    t0 = time.perf_counter()
    if (data / "zarr.json").exists():  # an activation store from `napkit capture`
        from napkit.capture import ActivationStore
        from napkit.patterns import mine_store

        if layers or split:
            raise NapkitError("--layers and --split do not apply to a store: choose them at `napkit capture`")
        store = ActivationStore.open(data, fingerprint=net.fingerprint())
        if not store.complete:
            raise NapkitError(f"the store at {data} is incomplete: run `napkit capture` again to finish it")
        naps = mine_store(store, delta, net.n_outputs, all_samples, scheduler=scheduler)
    else:
        if scheduler is not None:
            raise NapkitError("--scheduler mines from a store: record one with `napkit capture` first")
        x, y = load_npz(data, split)
        naps = mine_naps(
            net,
            x,
            y,
            delta,
            all_samples,
            _layers(layers),
            batch_size=batch_size,
            progress="mining" if progress and not as_json else False,
        )
    seconds = time.perf_counter() - t0
    naps.save(out)
    sizes = naps.sizes().tolist()
    if not as_json:
        table = Table(
            title=f"NAPs at δ = {delta:g} ({naps.n_neurons} neurons in {len(naps.layer_names)} layers)"
        )
        for col in ("class", "samples", "active", "inactive", "constrained"):
            table.add_column(col, justify="right")
        for i, c in enumerate(naps.labels.tolist()):
            table.add_row(
                str(c),
                str(naps.support[i]),
                str(naps.active[i].sum()),
                str(naps.inactive[i].sum()),
                str(sizes[i]),
            )
        out_console.print(table)
        out_console.print(f"wrote {out} in {seconds:.2f} s")
    _emit(
        {
            "classes": naps.labels.tolist(),
            "neurons": sizes,
            "support": naps.support.tolist(),
            "total_neurons": naps.n_neurons,
            "delta": delta,
            "out": str(out),
            "seconds": seconds,
        },
        as_json,
    )


@app.command()
def capture(
    model: Annotated[Path, typer.Argument(help="ONNX, napkit (.safetensors) or .pt model")],
    data: Annotated[Path, typer.Argument(help=".npz with x and y")],
    out: Annotated[Path, typer.Option("--out", help="Activation store (a zarr folder) to write or resume")],
    bits: Annotated[bool, typer.Option("--bits", help="Store bit-packed signs, not float32 values.")] = False,
    layers: Annotated[list[str] | None, typer.Option("--layers", help="Hidden layers to record.")] = None,
    split: SplitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per chunk")] = 4096,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Record the hidden pre-activations over DATA into a resumable zarr store."""
    from napkit.capture import ActivationStore, record
    from napkit.datasets import load_npz
    from napkit.network import load_model

    net = load_model(model)
    x, y = load_npz(data, split)
    resumed = ActivationStore.open(out).n_committed if (out / "zarr.json").exists() else 0
    if not (out / "zarr.json").exists():
        _check_output(out)
    t0 = time.perf_counter()
    try:
        mode = "bits" if bits else "float32"
        store = record(net, x, y, out, _layers(layers), mode, batch_size, progress and not as_json)
    except KeyboardInterrupt:
        done = ActivationStore.open(out).n_committed if (out / "zarr.json").exists() else 0
        raise Interrupted(
            f"{done} of {len(x)} rows are committed in {out}; run the same command again to resume "
            f"from row {done}"
        ) from None
    seconds = time.perf_counter() - t0
    if not as_json:
        what = f"resumed at row {resumed}, " if resumed else ""
        out_console.print(
            f"{what}{store.n_committed} rows of {sum(store.layer_sizes)} neurons in layers "
            f"{', '.join(store.layer_names)} ({store.mode}) at {out} in {seconds:.2f} s"
        )
    _emit(
        {
            "store": str(out),
            "rows": store.n_committed,
            "layers": store.layer_names,
            "sizes": store.layer_sizes,
            "mode": store.mode,
            "resumed_from": resumed,
            "seconds": seconds,
        },
        as_json,
    )


def _load_pair(model: Path, naps_path: Path):
    from napkit.network import load_model
    from napkit.patterns import NAPSet

    net = load_model(model)
    return net, NAPSet.load(naps_path, net)


@app.command()
def stats(
    model: ModelArg,
    naps: Annotated[Path, typer.Argument(help="NAP file from `napkit mine`")],
    data: DataArg,
    tolerance: ToleranceOpt = 0,
    only_correct: Annotated[
        bool, typer.Option("--only-correct", help="Count only correctly classified inputs.")
    ] = False,
    split: SplitOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Recall and precision of each class's NAP on DATA."""
    from napkit.datasets import load_npz
    from napkit.patterns import nap_stats

    net, napset = _load_pair(model, naps)
    x, y = load_npz(data, split)
    label = "evaluating" if progress and not as_json else False
    s = nap_stats(net, napset, x, y, tolerance, only_correct, progress=label)
    if not as_json:
        title = f"NAPs at δ = {napset.delta:g}, γ = {tolerance}"
        out_console.print(_stats_table(title, [("", s)]))
    _emit({**s.to_dict(), "delta": napset.delta}, as_json)


@app.command()
def monitor(
    model: ModelArg,
    naps: Annotated[Path, typer.Argument(help="NAP file from `napkit mine`")],
    data: DataArg,
    tolerance: ToleranceOpt = 0,
    split: SplitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows per batch (per task)")] = 4096,
    scheduler: SchedulerOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Flag inputs that do not follow the NAP of their predicted class."""
    from napkit.datasets import load_npz
    from napkit.patterns import NAPMonitor

    net, napset = _load_pair(model, naps)
    x, y = load_npz(data, split)
    label = "monitoring" if progress and not as_json else False
    mon = NAPMonitor(net, tolerance=tolerance, batch_size=batch_size, progress=label, scheduler=scheduler)
    mon.set_naps(napset)
    rep = mon.evaluate(x, y)
    if not as_json:
        out_console.print(
            f"{rep.n} inputs, accuracy {rep.accuracy:.3f}: flagged {rep.flagged_rate:.1%}, "
            f"misclassifications caught {_fmt(rep.misclassified_caught)}, correct ones flagged "
            f"{_fmt(rep.correct_flagged)}, AUROC {_fmt(rep.auroc)} "
            f"(max softmax {_fmt(rep.max_softmax_auroc)})"
        )
    _emit({**rep.to_dict(), "delta": napset.delta}, as_json)


# ---- verification ----------------------------------------------------------------------------

DomainOpt = Annotated[bool, typer.Option("--domain", help="The whole input domain \\[lo, hi]^n.")]
CenterOpt = Annotated[Path | None, typer.Option("--center", help=".npz holding the centre point")]
IndexOpt = Annotated[int, typer.Option("--index", help="Row of --center's data")]
EpsOpt = Annotated[float | None, typer.Option("--eps", help="L-inf radius around the centre")]
LoOpt = Annotated[float, typer.Option("--lo", help="Lower end of the input domain")]
HiOpt = Annotated[float, typer.Option("--hi", help="Upper end of the input domain")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds per query (> 0)", callback=_positive_seconds)
]


def _region(net, domain: bool, center: Path | None, index: int, eps: float | None, split, lo, hi):
    """(input box, centre or None, notes): the whole domain or an L-inf ball clipped to it."""
    from napkit.datasets import load_npz
    from napkit.verify import domain_box, linf_ball

    if not lo < hi:
        raise NapkitError(f"the domain needs --lo < --hi, got {lo} and {hi}")
    if domain == (center is not None):
        raise NapkitError("give exactly one region: --domain, or --center DATA --index I --eps E")
    if domain:
        return domain_box(net.n_inputs, lo, hi), None, []
    if eps is None or not math.isfinite(eps) or eps <= 0:
        raise NapkitError(f"--eps must be a positive number, got {eps}")
    x, _ = load_npz(center, split)
    x = net.reshape_inputs(x)
    if not 0 <= index < len(x):
        raise NapkitError(f"--index {index} is outside the {len(x)} rows of {center}")
    x0 = x[index].astype(float)
    return linf_ball(x0, eps, lo, hi), x[index], _ball_notes(x0, eps, lo, hi)


def _ball_notes(x0: np.ndarray, eps: float, lo: float, hi: float) -> list[str]:
    if bool(np.all(x0 - eps <= lo) and np.all(x0 + eps >= hi)):
        return [f"the ball of radius {eps:g} covers the whole domain [{lo:g}, {hi:g}]^{x0.size}: "
                "this is the --domain query"]
    return []


def _label_notes(net, x0: np.ndarray | None, label: int, index: int) -> list[str]:
    """A note when the centre itself is not classified as the class asked about."""
    if x0 is None:
        return []
    predicted = int(net.predict(np.asarray(x0, float)[None])[0])
    if predicted == label:
        return []
    return [f"the centre (row {index}) is classified {predicted}, not {label}"]


def _onnx_proto(model: Path):
    """The ONNX model itself when MODEL is ONNX: counterexamples are re-checked on it too."""
    from napkit.network import load_onnx_model

    return load_onnx_model(model) if model.name.lower().endswith((".onnx", ".onnx.gz")) else None


def _phases_for(net, naps: Path | None, label: int | None):
    if naps is None:
        return None, None
    from napkit.patterns import NAPSet

    if label is None:
        raise NapkitError("--naps needs --label C: the class whose NAP constrains the query")
    napset = NAPSet.load(naps, net)
    return napset, napset.phases(label, net.layer_names, net.layer_sizes)


def _check_label(net, label: int) -> int:
    if not 0 <= label < net.n_outputs:
        raise NapkitError(f"--label must be a class of the model (0..{net.n_outputs - 1}), got {label}")
    return label


def _parse_label(value: str) -> int | None:
    """``--label``: a class number, or ``all`` (None)."""
    if value.strip().lower() == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise NapkitError(f"--label must be a class number or 'all', got {value!r}") from None


def _nap_query(model: Path, naps: Path | None, label: int, region: tuple):
    """(network, NAP set, phases of ``label``, input box, notes) for verify, export-vnnlib, minimize."""
    from napkit.network import load_model

    net = load_model(model)
    _check_label(net, label)
    napset, phases = _phases_for(net, naps, label)
    box, x0, notes = _region(net, *region)
    return net, napset, phases, box, notes + _label_notes(net, x0, label, region[2])


def _batch_exit(counts: dict[str, int], failure: str) -> int:
    """Exit code of a batch: 1 when a ``failure`` verdict was found, 2 when some query crashed.

    A query that ended in an error decided nothing: it is named on stderr, never read as success.
    """
    if counts.get("error"):
        print(f"napkit: error: {counts['error']} queries ended in an error (their reason says why)",
              file=sys.stderr)
    if counts.get(failure):
        return 1
    return 2 if counts.get("error") else 0


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"napkit: note: {note}", file=sys.stderr)


def _result_line(res, what: str) -> str:
    colour = {"verified": "green", "unsat": "green", "falsified": "red", "sat": "red"}.get(
        res.verdict, "yellow"
    )
    return f"{what}: [bold {colour}]{res.verdict}[/] in {res.seconds:.2f} s ({res.reason})"


@contextmanager
def _results_file(results: Path | None):
    """The batch's JSON-lines file: the one given (resumable), or a temporary one."""
    if results is not None:
        yield results
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="napkit-batch-") as tmp:
        yield Path(tmp) / "results.jsonl"


def _run_batch(jobs, results: Path | None, workers: int | None, scheduler: str | None, progress: bool):
    """run_batch with the CLI's Ctrl-C message: where the finished queries are kept."""
    from napkit.verify import run_batch

    with _results_file(results) as path:
        try:
            return run_batch(jobs, path, workers=workers, scheduler=scheduler, progress=progress)
        except KeyboardInterrupt:
            if results is None:
                raise Interrupted("pass --results FILE to keep finished queries and resume") from None
            raise Interrupted(f"finished queries are in {results}; the same command resumes") from None


@app.command()
def verify(
    model: ModelArg,
    label: Annotated[
        str,
        typer.Option("--label", help="The class C: is every input of the region classified C? "
                     "'all': every class, one query each, in parallel"),
    ],
    naps: Annotated[
        Path | None, typer.Option("--naps", help="NAP file; the NAP of C constrains the region")
    ] = None,
    domain: DomainOpt = False,
    center: CenterOpt = None,
    index: IndexOpt = 0,
    eps: EpsOpt = None,
    split: SplitOpt = None,
    lo: LoOpt = 0.0,
    hi: HiOpt = 1.0,
    timeout: TimeoutOpt = 60.0,
    witnesses: Annotated[
        Path | None,
        typer.Option("--witnesses", help=".npz of inputs (e.g. the mining data): one that follows "
                     "the NAP shows its region is not empty, which `verified` needs; one that follows "
                     "and is classified otherwise is a counterexample"),
    ] = None,
    workers: WorkersOpt = None,
    results: ResultsOpt = None,
    scheduler: SchedulerOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> int:
    """NAP robustness: every input of the region that follows NAP_C is classified C."""
    region = (domain, center, index, eps, split, lo, hi)
    chosen = _parse_label(label)
    if chosen is None:
        if witnesses is not None:
            raise NapkitError("--witnesses applies to one class; with --label all the engine searches")
        return _verify_all(model, naps, region, timeout, workers, results, scheduler, progress, as_json)
    if scheduler is not None or results is not None:
        raise NapkitError("--results and --scheduler apply to --label all")
    from napkit.progress import status_line
    from napkit.verify import verify_robustness

    net, _, phases, box, notes = _nap_query(model, naps, chosen, region)
    _print_notes(notes)
    witness = None
    if witnesses is not None and phases is not None:
        from napkit.datasets import load_npz

        wx, _ = load_npz(witnesses, split)
        witness = net.reshape_inputs(wx)  # every row: the engine checks which follow (napfalsify.py)
    with status_line(f"verifying class {chosen} (at most {timeout:g} s)", progress and not as_json):
        res = verify_robustness(net, box, chosen, phases, timeout=timeout, onnx_model=_onnx_proto(model),
                                witness=witness, workers=workers)
    if not as_json:
        with_nap = f" following the NAP of class {chosen}" if phases is not None else ""
        out_console.print(_result_line(res, f"class {chosen}{with_nap}"))
    _emit({**res.to_dict(), "label": chosen, "nap": phases is not None, "notes": notes}, as_json)
    return 1 if res.verdict == "falsified" else 0


def _class_centres(net, napset, center: Path, split, start: int) -> dict[int, int]:
    """Per class c: the first row from ``start`` on of class c, classified c, following NAP_c strictly."""
    from napkit.datasets import load_npz
    from napkit.verify import follows_phases

    x, y = load_npz(center, split)
    if not 0 <= start < len(x):
        raise NapkitError(f"--index {start} is outside the {len(x)} rows of {center}")
    x, y = net.reshape_inputs(x)[start:], y[start:]
    logits, pre = net.forward(x)
    ok = logits.argmax(axis=1) == y
    rows = {}
    classes = range(net.n_outputs) if napset is None else napset.labels.tolist()
    for c in classes:
        mask = ok & (y == c)
        if napset is not None:
            phases = napset.phases(c, net.layer_names, net.layer_sizes)
            mask &= follows_phases(pre, phases, strict=True)
        hit = np.flatnonzero(mask)
        if len(hit):
            rows[c] = start + int(hit[0])
    return rows


def _verify_all(model, naps, region, timeout, workers, results, scheduler, progress, as_json) -> int:
    """verify --label all: one query per class on run_batch, a table (or a JSON list) of verdicts."""
    from napkit.datasets import load_npz
    from napkit.network import load_model
    from napkit.patterns import NAPSet
    from napkit.verify import BatchJob, Property, linf_ball, query_id, robustness_spec

    domain, center, index, eps, split, lo, hi = region
    net = load_model(model)
    napset = None if naps is None else NAPSet.load(naps, net)
    box, _, notes = _region(net, *region)  # validates the region once
    classes = list(range(net.n_outputs)) if napset is None else napset.labels.tolist()
    centres: dict[int, int] = {}
    if center is not None:
        centres = _class_centres(net, napset, center, split, index)
        x = net.reshape_inputs(load_npz(center, split)[0])
        notes = []
        for c in classes:
            if c not in centres:
                notes.append(f"class {c}: no row from {index} on is classified {c}"
                             + (" and follows its NAP" if napset is not None else "") + "; skipped")
        for c, r in centres.items():
            notes += [f"class {c}: {n}" for n in _ball_notes(x[r].astype(float), eps, lo, hi)]
    _print_notes(notes)
    jobs, meta = [], {}
    for c in classes:
        if center is not None and c not in centres:
            continue
        ball = box if center is None else linf_ball(x[centres[c]].astype(float), eps, lo, hi)
        phases = None if napset is None else napset.phases(c, net.layer_names, net.layer_sizes)
        prop = Property(ball, robustness_spec(c, net.n_outputs), phases)
        job = BatchJob(query_id(f"class{c}", net, prop, timeout), net, prop, timeout)
        jobs.append(job)
        meta[job.id] = c
    if not jobs:
        raise NapkitError("no class has a centre to verify around")
    recs = _run_batch(jobs, results, workers, scheduler, progress and not as_json)
    rows = []
    for job in jobs:
        rec = recs.get(job.id, {"result": "error", "reason": "no result", "seconds": None})
        row = {"label": meta[job.id], "result": rec["result"], "seconds": rec.get("seconds"),
               "reason": rec.get("reason", "")}
        if center is not None:
            row["index"] = centres[meta[job.id]]
        if rec.get("counterexample") is not None:
            row["counterexample"] = rec["counterexample"]
        rows.append(row)
    counts = {v: sum(r["result"] == v for r in rows)
              for v in ("verified", "falsified", "unknown", "vacuous", "error")}
    if not as_json:
        where = f"[{lo:g}, {hi:g}]^{net.n_inputs}" if center is None else f"ε = {eps:g} around {center}"
        nap = f"NAP (δ = {napset.delta:g}) " if napset is not None else ""
        table = Table(title=f"{nap}robustness of every class over {where}, at most {timeout:g} s each")
        for col in ("class", *(("row",) if center is not None else ()), "verdict", "seconds", "reason"):
            table.add_column(col, justify="left" if col in ("verdict", "reason") else "right")
        for r in rows:
            secs = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
            cells = [str(r["label"]), *((str(r["index"]),) if center is not None else ()), r["result"], secs,
                     r["reason"]]
            table.add_row(*cells)
        out_console.print(table)
        out_console.print(", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no verdicts")
    _emit({"results": rows, **counts, "notes": notes, "timeout": timeout,
           "delta": None if napset is None else napset.delta}, as_json)
    return _batch_exit(counts, "falsified")


@app.command()
def ambiguity(
    model: ModelArg,
    naps: Annotated[Path, typer.Argument()],
    lo: LoOpt = 0.0,
    hi: HiOpt = 1.0,
    timeout: TimeoutOpt = 30.0,
    scheduler: SchedulerOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> int:
    """Non-ambiguity of every NAP pair: can any input of the domain follow both?"""
    from napkit.network import load_model
    from napkit.patterns import NAPSet, syntactic_disjoint
    from napkit.progress import progress_bar
    from napkit.verify import domain_box

    net = load_model(model)
    napset = NAPSet.load(naps, net)
    if not lo < hi:
        raise NapkitError(f"the domain needs --lo < --hi, got {lo} and {hi}")
    box = domain_box(net.n_inputs, lo, hi)
    syntactic = syntactic_disjoint(napset)
    labels = napset.labels.tolist()
    todo = [(a, b) for a in range(len(labels)) for b in range(a + 1, len(labels))]
    phases = {c: napset.phases(c, net.layer_names, net.layer_sizes) for c in labels}
    solved = {}
    if scheduler is not None:
        from napkit.verify import BatchJob, Property, query_id, robustness_spec

        spec = robustness_spec(0, net.n_outputs)  # not used by a disjointness job
        jobs = {}
        for a, b in todo:
            if not syntactic[a, b]:
                i, j = labels[a], labels[b]
                prop = Property(box, spec, phases[i])
                jid = query_id(f"pair{i}-{j}", net, prop, timeout, disjoint_with=phases[j])
                jobs[(a, b)] = BatchJob(jid, net, prop, timeout, disjoint_with=phases[j])
        recs = _run_batch(list(jobs.values()), None, None, scheduler, progress and not as_json)
        solved = {ab: recs[job.id] for ab, job in jobs.items()}
    pairs = []
    with progress_bar(len(todo), "pairs", progress and not as_json and scheduler is None) as advance:
        for a, b in todo:
            i, j = labels[a], labels[b]
            if syntactic[a, b]:
                pair = {"result": "verified", "reason": "disjoint by syntax", "seconds": 0.0}
            elif (a, b) in solved:
                rec = solved[(a, b)]
                pair = {k: rec.get(k) for k in ("result", "reason", "seconds")}
            else:
                from napkit.verify import verify_disjoint

                res = verify_disjoint(net, box, phases[i], phases[j], timeout=timeout)
                pair = {"result": res.verdict, "reason": res.reason, "seconds": res.seconds}
            pairs.append({"i": i, "j": j, **pair})
            advance()
    counts = {v: sum(p["result"] == v for p in pairs) for v in ("verified", "falsified", "unknown", "error")}
    if not as_json:
        table = Table(title=f"Non-ambiguity of {len(pairs)} NAP pairs (δ = {napset.delta:g})")
        for col in ("i", "j", "result", "seconds", "reason"):
            table.add_column(col, justify="left" if col in ("result", "reason") else "right")
        for p in pairs:
            if p["reason"] != "disjoint by syntax":
                table.add_row(str(p["i"]), str(p["j"]), p["result"], f"{p['seconds'] or 0:.2f}", p["reason"])
        out_console.print(table)
        n_syntactic = int(syntactic[np.triu_indices(len(labels), 1)].sum())
        out_console.print(
            f"{counts['verified']} disjoint ({n_syntactic} by syntax), "
            f"{counts['falsified']} ambiguous, {counts['unknown']} unknown"
        )
    _emit({"pairs": pairs, **counts, "delta": napset.delta}, as_json)
    return _batch_exit(counts, "falsified")


@app.command()
def vnnlib(
    model: Annotated[Path | None, typer.Argument(help="ONNX model (not with --instances)")] = None,
    prop: Annotated[
        Path | None, typer.Argument(help="VNN-LIB 1.0 file (.vnnlib or .vnnlib.gz)")
    ] = None,
    naps: Annotated[Path | None, typer.Option("--naps", help="Intersect the query with a NAP")] = None,
    label: Annotated[int | None, typer.Option("--label", help="Class of the NAP")] = None,
    timeout: TimeoutOpt = 60.0,
    instances: Annotated[
        Path | None,
        typer.Option("--instances", help="VNN-COMP instances.csv (onnx,vnnlib,timeout per line, paths "
                     "relative to it): run them all"),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="With --instances: the results CSV (VNN-COMP's format)")
    ] = Path("results.csv"),
    workers: WorkersOpt = None,
    results: ResultsOpt = None,
    scheduler: SchedulerOpt = None,
    force: ForceOpt = False,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> int:
    """A VNN-COMP query: sat (a counterexample exists), unsat or unknown; or a whole instances.csv."""
    from napkit.network import load_model
    from napkit.progress import status_line
    from napkit.verify import verify_vnnlib

    if instances is not None:
        if model is not None or prop is not None or naps is not None:
            raise NapkitError("--instances takes no MODEL, PROP or --naps: the CSV names them")
        return _vnnlib_instances(instances, out, workers, results, scheduler, force, progress, as_json)
    if model is None or prop is None:
        raise NapkitError("give MODEL PROP, or --instances instances.csv")
    if scheduler is not None or results is not None:
        raise NapkitError("--results and --scheduler apply to --instances")
    net = load_model(model)
    if label is not None:
        _check_label(net, label)
    _, phases = _phases_for(net, naps, label)
    with status_line(f"deciding {prop.name} (at most {timeout:g} s)", progress and not as_json):
        res = verify_vnnlib(net, prop, phases, timeout=timeout, onnx_model=_onnx_proto(model),
                            workers=workers)
    if not as_json:
        out_console.print(_result_line(res, prop.name))
    _emit(res.to_dict(), as_json)
    return 1 if res.verdict == "sat" else 0


def _vnnlib_instances(instances: Path, out: Path, workers, results, scheduler, force, progress, as_json):
    from napkit.verify import instance_jobs, read_instances, vnncomp_result, write_vnncomp_csv

    _check_output(out, force)
    todo = read_instances(instances)
    jobs = instance_jobs(todo)
    recs = _run_batch(jobs, results, workers, scheduler, progress and not as_json)
    ordered = [recs.get(j.id, {"result": "error", "reason": "no result"}) for j in jobs]
    benchmark = instances.resolve().parent.name
    write_vnncomp_csv(out, benchmark, todo, ordered)
    rows = [{"onnx": i.onnx, "vnnlib": i.vnnlib, "result": vnncomp_result(r), "seconds": r.get("seconds"),
             "reason": r.get("reason", "")} for i, r in zip(todo, ordered, strict=True)]
    counts = {v: sum(r["result"] == v for r in rows) for v in ("sat", "unsat", "timeout", "unknown", "error")}
    if not as_json:
        table = Table(title=f"{len(rows)} instances of {benchmark}")
        for col in ("onnx", "vnnlib", "result", "seconds", "reason"):
            table.add_column(col, justify="right" if col == "seconds" else "left", overflow="fold")
        for r in rows:
            secs = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
            table.add_row(Path(r["onnx"]).name, Path(r["vnnlib"]).name, r["result"], secs, r["reason"])
        out_console.print(table)
        out_console.print(", ".join(f"{n} {v}" for v, n in counts.items() if n) + f"; wrote {out}")
    _emit({"instances": rows, **counts, "out": str(out)}, as_json)
    return _batch_exit(counts, "sat")


@app.command("export-vnnlib")
def export_vnnlib(
    model: ModelArg,
    naps: Annotated[Path, typer.Option("--naps", help="NAP file")],
    label: Annotated[int, typer.Option("--label", help="Class whose NAP and robustness to state")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the ONNX and VNN-LIB files")],
    domain: DomainOpt = False,
    center: CenterOpt = None,
    index: IndexOpt = 0,
    eps: EpsOpt = None,
    split: SplitOpt = None,
    lo: LoOpt = 0.0,
    hi: HiOpt = 1.0,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write an ONNX exposing the pre-activations and a VNN-LIB spec of the NAP property."""
    from napkit.network import to_onnx
    from napkit.verify import robustness_spec, write_vnnlib

    net, _, phases, box, notes = _nap_query(model, naps, label, (domain, center, index, eps, split, lo, hi))
    _print_notes(notes)
    _check_folder(out, force)
    onnx_path = _check_output(out / f"{model.name.split('.')[0]}-preacts.onnx")
    spec_path = _check_output(out / f"nap_class{label}.vnnlib")
    with _atomic(onnx_path) as tmp:
        to_onnx(net, tmp, expose_preactivations=True)
    with _atomic(spec_path) as tmp:
        write_vnnlib(tmp, box, robustness_spec(label, net.n_outputs), phases)
    if not as_json:
        out_console.print(f"wrote {onnx_path} and {spec_path}")
    _emit({"onnx": str(onnx_path), "vnnlib": str(spec_path), "label": label, "notes": notes}, as_json)


@app.command()
def minimize(
    model: ModelArg,
    naps: Annotated[Path, typer.Option("--naps", help="NAP file")],
    label: Annotated[int, typer.Option("--label", help="Class whose NAP to minimise")],
    out: Annotated[Path, typer.Option("--out", help="NAP file to write, with the minimised NAP")],
    method: Annotated[
        str, typer.Option("--method", help="ranked (fast) or greedy (conservative)")
    ] = "ranked",
    domain: DomainOpt = False,
    center: CenterOpt = None,
    index: IndexOpt = 0,
    eps: EpsOpt = None,
    split: Annotated[str | None, typer.Option("--split", help="Read --center from x_<split>")] = None,
    lo: LoOpt = 0.0,
    hi: HiOpt = 1.0,
    data: Annotated[
        Path | None, typer.Option("--data", help=".npz: rank by activation statistics, report recall")
    ] = None,
    data_split: Annotated[
        str | None, typer.Option("--data-split", help="Read --data from x_<split>/y_<split>")
    ] = None,
    timeout: TimeoutOpt = 10.0,
    budget: Annotated[
        float,
        typer.Option("--budget", help="Seconds for the whole search (> 0)", callback=_positive_seconds),
    ] = 300.0,
    force: ForceOpt = False,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """The coarsest NAP of class C that still proves its robustness over the region."""
    from napkit.datasets import load_npz
    from napkit.patterns import count_patterns, nap_stats
    from napkit.progress import status_line
    from napkit.verify import minimize_nap

    if out.resolve() == naps.resolve():
        raise NapkitError(f"--out {out} is the --naps file: minimize would overwrite its own input")
    _check_output(out, force)
    region = (domain, center, index, eps, split, lo, hi)
    net, napset, phases, box, notes = _nap_query(model, naps, label, region)
    _print_notes(notes)
    priority, xy = None, None
    if data is not None:
        xy = load_npz(data, data_split)
        miner = count_patterns(net, *xy, progress=False)
        if miner.totals[label]:
            p = miner.counts[label] / miner.totals[label]
            priority = 1.0 - np.abs(2 * p - 1)  # the least certain constraints go first
    with status_line(f"minimising the NAP of class {label} (at most {budget:g} s)", progress and not as_json):
        res = minimize_nap(net, box, label, phases, method, priority, timeout, budget)
    smaller = napset.with_phases(label, res.phases, net.layer_names)
    smaller.save(out)
    payload = {**res.to_dict(), "out": str(out), "notes": notes}
    if xy is not None:
        before = nap_stats(net, napset, *xy, progress=False)
        after = nap_stats(net, smaller, *xy, progress=False)
        r = smaller.row(label)
        payload["recall_before"], payload["recall_after"] = float(before.recall[r]), float(after.recall[r])
    if not as_json:
        msg = (
            f"class {label}: kept {res.kept} of {res.original} constraints "
            f"({res.implied} implied by the region), re-verified: {res.final.verdict}; "
            f"{res.calls} verifier calls in {res.seconds:.1f} s"
        )
        if xy is not None:
            msg += f"; recall {payload['recall_before']:.3f} -> {payload['recall_after']:.3f}"
        out_console.print(msg)
        out_console.print(f"wrote {out}")
    _emit(payload, as_json)



def _image_shape(text: str | None) -> tuple[int, int] | None:
    """``H,W`` as two positive integers."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise NapkitError(f"--image-shape must be two positive integers H,W, got {text!r}")
    return int(parts[0]), int(parts[1])


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
    net, napset = _load_pair(model, naps)
    x, y = load_npz(data, split)
    mined = load_npz(mine_data, mine_split) if mine_data is not None else None
    t0 = time.perf_counter()
    figs = build_report(
        net, napset, x, y, out, mine_data=mined, verify_timeout=verify_timeout, eps=eps,
        max_queries=max_queries, image_shape=shape, lo=lo, hi=hi, source=str(model),
        data_name=data.name + (f" ({split})" if split else ""), onnx_model=_onnx_proto(model),
        progress=progress and not as_json,
    )
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
        for kind, name in (("domain", "robust over the domain"), ("local", f"robust within ε = {fmt(eps)}"),
                           ("pairs", "NAP pairs disjoint")):
            c = counts[kind]
            out_console.print(
                f"{name}: {c['verified']} verified, {c['falsified']} falsified, {c['unknown']} unknown, "
                f"{c['vacuous']} vacuous, {c['skipped']} skipped",
                soft_wrap=True,
            )
        out_console.print(f"wrote {figs['report']} in {fmt(figs['seconds'])} s", soft_wrap=True)
    _emit(figs, as_json)


# ---- representations ------------------------------------------------------------------------


def _train_test(data: Path, split: str | None, test_split: str | None, seed: int = 0):
    """(x_train, y_train, x_test, y_test): named splits, the file's train/test, or a seeded 80/20 split."""
    from sklearn.model_selection import train_test_split

    from napkit.datasets import load_npz

    if split is None and test_split is None:
        try:
            with np.load(data, allow_pickle=False) as f:
                keys = set(f.files)
        except (OSError, ValueError) as exc:
            raise NapkitError(f"{data} is not a readable .npz file: {exc}") from None
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            split, test_split = "train", "test"
    x, y = load_npz(data, split)
    if test_split is not None:
        xt, yt = load_npz(data, test_split)
        return x, y, xt, yt
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
    with status_line(f"activation codes of {len(x)} + {len(xt)} inputs", progress and not as_json):
        rep = codes_report(net, x, y, xt, yt, layers=_layers(layers), kmeans=kmeans)
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
    _emit(rep, as_json)


@app.command()
def similarity(
    paths: Annotated[list[Path], typer.Argument(help="MODEL_A \\[MODEL_B] DATA")],
    method: Annotated[str, typer.Option("--method", help="cka, debiased_cka or rsa_<spearman|...>")] = "cka",
    split: SplitOpt = None,
    samples: Annotated[int, typer.Option("--samples", help="Use the first N inputs")] = 2000,
    pre: Annotated[bool, typer.Option("--pre", help="Compare pre-activations, not ReLU outputs")] = False,
    png: Annotated[Path | None, typer.Option("--png", help="Write the heat map here")] = None,
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
        _check_output(png)
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
        raise NapkitError(f"{exc}; ReLU outputs of units that never fire are constant: compare "
                          "pre-activations with --pre") from None
    if png is not None:
        labels = (models[0].name, models[-1].name)
        plot_similarity(matrix, names_a, names_b, title=f"{method} between layers", labels=labels, path=png)
    if not as_json:
        table = Table(title=f"{method}: rows {models[0].name}, columns {models[-1].name}")
        table.add_column("")
        for n in names_b:
            table.add_column(n, justify="right")
        for n, row in zip(names_a, matrix, strict=True):
            table.add_row(n, *[f"{v:.3f}" for v in row])
        out_console.print(table)
    _emit(
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


app.add_typer(__import__("napkit.lm.cli", fromlist=["app"]).app, name="lm")  # the LM pillar: napkit lm ...


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and maps errors to exit codes."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="napkit")
        if rv == INTERRUPTED:  # typer's answer to Ctrl-C; no command returns this code itself
            print("napkit: interrupted", file=sys.stderr)
        return int(rv) if isinstance(rv, int) else 0
    except NapkitError as exc:
        print(f"napkit: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"napkit: interrupted; {_one_line(exc)}", file=sys.stderr)
        return INTERRUPTED
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort as exc:
        if isinstance(exc.__cause__, EOFError):  # a file that ended too early, not the user
            print(f"napkit: error: an input file ended too early ({_one_line(exc.__cause__)})",
                  file=sys.stderr)
            return 2
        print("napkit: interrupted", file=sys.stderr)
        return INTERRUPTED
    except typer.TyperException as exc:
        msg = " ".join(str(exc.format_message() if hasattr(exc, "format_message") else exc).split())
        if msg:  # a bare `napkit` shows the help and has nothing more to say
            print(f"napkit: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napkit: interrupted", file=sys.stderr)
        return INTERRUPTED


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line, without terminal colour codes."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split()) or type(exc).__name__


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    run()

"""The ``napkit`` command: parses arguments, calls the library, prints. No logic of its own.

Exit codes: 0 success, 1 a verification failure it was asked to detect, 2 bad input
(one line on stderr, no traceback). ``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from napkit.errors import NapkitError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural activation patterns: capture, mine, monitor and verify them.",
)
out_console = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Read x_<split>/y_<split> from DATA.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")]


def _emit(payload: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(_clean(payload)) + "\n")


def _clean(v):
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def _check_output(path: Path) -> Path:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise NapkitError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise NapkitError(f"cannot write {path}: permission denied")
    return path


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
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Mine one NAP per class with the δ rule."""
    from napkit.datasets import load_npz
    from napkit.network import load_model
    from napkit.patterns import check_delta
    from napkit.patterns import mine as mine_naps

    check_delta(delta)
    _check_output(out)
    net = load_model(model)
    t0 = time.perf_counter()
    if (data / "zarr.json").exists():  # an activation store from `napkit capture`
        from napkit.capture import ActivationStore
        from napkit.patterns import mine_store

        store = ActivationStore.open(data, fingerprint=net.fingerprint())
        if not store.complete:
            raise NapkitError(f"the store at {data} is incomplete: run `napkit capture` again to finish it")
        naps = mine_store(store, delta, net.n_outputs, all_samples)
    else:
        x, y = load_npz(data, split)
        naps = mine_naps(
            net,
            x,
            y,
            delta,
            all_samples,
            _layers(layers),
            batch_size=batch_size,
            progress=progress and not as_json,
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
    store = record(
        net, x, y, out, _layers(layers), "bits" if bits else "float32", batch_size, progress and not as_json
    )
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
    model: Annotated[Path, typer.Argument()],
    naps: Annotated[Path, typer.Argument(help="NAP file from `napkit mine`")],
    data: Annotated[Path, typer.Argument()],
    tolerance: Annotated[int, typer.Option("--tolerance", help="Hamming tolerance γ")] = 0,
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
    s = nap_stats(net, napset, x, y, tolerance, only_correct, progress=progress and not as_json)
    if not as_json:
        title = f"NAPs at δ = {napset.delta:g}, γ = {tolerance}"
        out_console.print(_stats_table(title, [("", s)]))
    _emit({**s.to_dict(), "delta": napset.delta}, as_json)


@app.command()
def monitor(
    model: Annotated[Path, typer.Argument()],
    naps: Annotated[Path, typer.Argument()],
    data: Annotated[Path, typer.Argument()],
    tolerance: Annotated[int, typer.Option("--tolerance", help="Hamming tolerance γ")] = 0,
    split: SplitOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Flag inputs that do not follow the NAP of their predicted class."""
    from napkit.datasets import load_npz
    from napkit.patterns import NAPMonitor

    net, napset = _load_pair(model, naps)
    x, y = load_npz(data, split)
    if tolerance < 0:
        raise NapkitError(f"tolerance γ must be ≥ 0, got {tolerance}")
    mon = NAPMonitor(net, tolerance=tolerance, progress=progress and not as_json).set_naps(napset)
    rep = mon.evaluate(x, y)
    if not as_json:
        out_console.print(
            f"{rep.n} inputs, accuracy {rep.accuracy:.3f}: flagged {rep.flagged_rate:.1%}, "
            f"misclassifications caught {_fmt(rep.misclassified_caught)}, correct ones flagged "
            f"{_fmt(rep.correct_flagged)}, AUROC {_fmt(rep.auroc)} "
            f"(max softmax {_fmt(rep.max_softmax_auroc)})"
        )
    _emit({**rep.to_dict(), "delta": napset.delta}, as_json)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and maps errors to exit codes."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="napkit")
        return int(rv) if isinstance(rv, int) else 0
    except NapkitError as exc:
        print(f"napkit: error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort:
        print("napkit: interrupted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:
        msg = " ".join(str(exc.format_message() if hasattr(exc, "format_message") else exc).split())
        if msg:  # a bare `napkit` shows the help and has nothing more to say
            print(f"napkit: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napkit: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    run()

"""What every ``napkit`` command shares: the Typer app, option types, output checks."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from napkit.errors import NapkitError
from napkit.staging import check_parent

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,  # a bare `napkit` is bad input: one line on stderr, exit 2 (entry.py)
    pretty_exceptions_enable=False,
    help="Neural activation patterns: capture, mine, monitor and verify them.",
)


class _LineConsole(Console):
    """A console whose text lines are never wrapped (a result line is one line in a terminal,
    a file or a pipe, whose width rich takes as 80); tables still fit the width."""

    def print(self, *objects, soft_wrap: bool | None = None, **kw) -> None:
        if soft_wrap is None and objects and all(isinstance(o, str) for o in objects):
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **kw)


out_console = _LineConsole()


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
    typer.Option(
        "--workers",
        min=1,
        help="Local worker processes (default: the CPU count): a batch runs "
        "that many queries side by side; one query proves and falsifies in parallel",
    ),
]
ResultsOpt = Annotated[
    Path | None,
    typer.Option("--results", help="JSON-lines file of finished queries; a run resumes from it."),
]


INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C (128 + SIGINT)


class Interrupted(Exception):
    """Ctrl-C, with where the work can be resumed from."""


def positive_seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive number of seconds, got {value:g}")
    return value


def check_output(path: Path, force: bool = True) -> Path:
    """``path`` can be written; an existing file is refused unless ``force``."""
    parent = check_parent(path)
    if path.is_dir():  # even with --force: replacing a folder by a file would lose it
        raise NapkitError(f"cannot write {path}: it is a folder, give a file name")
    if path.exists() and not force:
        raise NapkitError(f"{path} exists: choose another path, or pass --force to replace it")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise NapkitError(f"cannot write {path}: permission denied")
    return path


def check_not_input(out: Path, inputs: dict[str, Path | None]) -> None:
    """``--out`` is none of the command's own inputs: even ``--force`` must not replace those."""
    for option, path in inputs.items():
        if path is not None and out.resolve() == path.resolve():
            raise NapkitError(f"--out {out} is the {option} file: writing it would lose the input")


def check_new_store(path: Path) -> Path:
    """Where ``napkit capture`` creates a store: a new path or an empty folder, in a folder."""
    check_parent(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "a file" if not path.is_dir() else "a folder that holds no activation store"
        raise NapkitError(f"cannot write a store at {path}: it is {what}; choose a new path")
    return path


def fmt3(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def stats_table(title: str, stats_by_delta: list[tuple[str, object]]) -> Table:
    table = Table(title=title)
    table.add_column("class", justify="right")
    for name, _ in stats_by_delta:
        table.add_column(f"{name} R" if name else "recall", justify="right")
        table.add_column(f"{name} P" if name else "precision", justify="right")
    labels = stats_by_delta[0][1].labels
    for i, c in enumerate(labels.tolist()):
        cells = []
        for _, s in stats_by_delta:
            cells += [fmt3(float(s.recall[i])), fmt3(float(s.precision[i]))]
        table.add_row(str(c), *cells)
    return table


def layer_list(values: list[str] | None) -> list[str] | None:
    """Layer names from ``--layers`` (repeatable, comma-separated); None when not given.

    Given but naming no layer (``--layers ""``), or naming one twice, is refused.
    """
    if not values:
        return None
    from napkit.capture.layers import check_layer_names

    names = [v.strip() for item in values for v in item.split(",") if v.strip()]
    if not names:
        raise NapkitError("--layers names no layer: give layer names, or leave --layers out for all")
    return check_layer_names(names, "--layers")


# ---- verification ----------------------------------------------------------------------------

DomainOpt = Annotated[bool, typer.Option("--domain", help="The whole input domain \\[lo, hi]^n.")]
CenterOpt = Annotated[Path | None, typer.Option("--center", help=".npz holding the centre point")]
IndexOpt = Annotated[int, typer.Option("--index", help="Row of --center's data")]
EpsOpt = Annotated[float | None, typer.Option("--eps", help="L-inf radius around the centre")]
LoOpt = Annotated[float, typer.Option("--lo", help="Lower end of the input domain")]
HiOpt = Annotated[float, typer.Option("--hi", help="Upper end of the input domain")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds per query (> 0)", callback=positive_seconds)
]


def load_pair(model: Path, naps_path: Path):
    from napkit.network import load_model
    from napkit.patterns import NAPSet

    net = load_model(model)
    return net, NAPSet.load(naps_path, net)

"""VNN-LIB commands: vnnlib (one query or an instances.csv) and export-vnnlib."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from napkit.cli.common import (
    CenterOpt,
    DomainOpt,
    EpsOpt,
    ForceOpt,
    HiOpt,
    IndexOpt,
    JsonOpt,
    LoOpt,
    ModelArg,
    ProgressOpt,
    ResultsOpt,
    SchedulerOpt,
    SplitOpt,
    TimeoutOpt,
    WorkersOpt,
    app,
    check_output,
    out_console,
)
from napkit.cli.queries import (
    batch_exit,
    check_label,
    nap_query,
    onnx_proto,
    phases_for,
    print_notes,
    result_line,
    run_batch_cli,
)
from napkit.cli_output import emit_json as emit
from napkit.errors import NapkitError


@app.command()
def vnnlib(
    model: Annotated[Path | None, typer.Argument(help="ONNX model (not with --instances)")] = None,
    prop: Annotated[Path | None, typer.Argument(help="VNN-LIB 1.0 file (.vnnlib or .vnnlib.gz)")] = None,
    naps: Annotated[Path | None, typer.Option("--naps", help="Intersect the query with a NAP")] = None,
    label: Annotated[int | None, typer.Option("--label", help="Class of the NAP")] = None,
    timeout: TimeoutOpt = 60.0,
    instances: Annotated[
        Path | None,
        typer.Option(
            "--instances",
            help="VNN-COMP instances.csv (onnx,vnnlib,timeout per line, paths relative to it): run them all",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With --instances: the results CSV, VNN-COMP's format (results.csv)"),
    ] = None,
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
        if model is not None or prop is not None or naps is not None or label is not None:
            raise NapkitError("--instances takes no MODEL, PROP, --naps or --label: the CSV names them")
        out = Path("results.csv") if out is None else out
        return _vnnlib_instances(instances, out, workers, results, scheduler, force, progress, as_json)
    if model is None or prop is None:
        raise NapkitError("give MODEL PROP, or --instances instances.csv")
    if scheduler is not None or results is not None or out is not None:
        raise NapkitError("--out, --results and --scheduler apply to --instances")
    if label is not None and naps is None:
        raise NapkitError("--label names the class of a NAP: give --naps NAPS.json too, or leave --label out")
    net = load_model(model)
    if label is not None:
        check_label(net, label)
    _, phases = phases_for(net, naps, label)
    with status_line(f"deciding {prop.name} (at most {timeout:g} s)", progress):
        res = verify_vnnlib(net, prop, phases, timeout=timeout, onnx_model=onnx_proto(model), workers=workers)
    if not as_json:
        out_console.print(result_line(res, prop.name))
    emit(res.to_dict(), as_json)
    return 1 if res.verdict == "sat" else 0


def _vnnlib_instances(instances: Path, out: Path, workers, results, scheduler, force, progress, as_json):
    from napkit.verify import (
        check_results_file,
        instance_jobs,
        read_instances,
        vnncomp_result,
        write_vnncomp_csv,
    )

    if results is not None and results.resolve() == out.resolve():
        raise NapkitError(f"--results {results} is the --out CSV: give the finished queries their own file")
    check_output(out, force)
    if results is not None:
        check_results_file(results)  # before any work; run_batch checks it the same way
    todo = read_instances(instances)
    jobs = instance_jobs(todo)
    recs = run_batch_cli(jobs, results, workers, scheduler, progress)
    ordered = [recs.get(j.id, {"result": "error", "reason": "no result"}) for j in jobs]
    benchmark = instances.resolve().parent.name
    write_vnncomp_csv(out, benchmark, todo, ordered)
    rows = [
        {
            "onnx": i.onnx,
            "vnnlib": i.vnnlib,
            "result": vnncomp_result(r),
            "seconds": r.get("seconds"),
            "reason": r.get("reason", ""),
        }
        for i, r in zip(todo, ordered, strict=True)
    ]
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
    emit({"instances": rows, **counts, "out": str(out)}, as_json)
    return batch_exit(counts, "sat")


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
    from napkit.verify import export_nap_query

    net, _, phases, box, notes = nap_query(model, naps, label, (domain, center, index, eps, split, lo, hi))
    print_notes(notes)
    stem = model.name.split(".")[0]
    onnx_path, spec_path = export_nap_query(net, label, phases, box, out, stem, force)
    if not as_json:
        out_console.print(f"wrote {onnx_path} and {spec_path}")
    emit({"onnx": str(onnx_path), "vnnlib": str(spec_path), "label": label, "notes": notes}, as_json)

"""Commands on activation patterns: demo, mine, capture, stats, monitor."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from napkit.cli.common import (
    DataArg,
    ForceOpt,
    Interrupted,
    JsonOpt,
    ModelArg,
    ProgressOpt,
    SchedulerOpt,
    SplitOpt,
    ToleranceOpt,
    app,
    check_new_store,
    check_not_input,
    check_output,
    fmt3,
    layer_list,
    load_pair,
    out_console,
    stats_table,
)
from napkit.cli_output import emit_json as emit
from napkit.errors import NapkitError


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the report.")] = Path("napkit-demo"),
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """The whole pipeline on scikit-learn's bundled digits: train, capture, mine, monitor, report."""
    from napkit.demo import run_demo

    res = run_demo(out, progress=progress)
    if not as_json:
        out_console.print(f"[bold]MLP 64-64-64-10 on digits[/]: test accuracy {res['test_accuracy']:.3f}")
        out_console.print(
            stats_table(
                "NAP recall (R) and precision (P) on the test split",
                [(f"δ={r['delta']:g}", r["eval"]) for r in res["rows"]],
            )
        )
        for key, label in (("monitor", "γ = 0"), ("monitor_gamma2", "γ = 2")):
            m = res[key]
            out_console.print(
                f"monitor (δ = {res['delta']}, {label}): flagged {m.flagged_rate:.1%}, "
                f"errors caught {fmt3(m.misclassified_caught)}, AUROC {fmt3(m.auroc)} "
                f"(max softmax {fmt3(m.max_softmax_auroc)})"
            )
        nov = res["novelty"]
        out_console.print(
            f"novelty (a network trained without class 9): {fmt3(nov.novel_flagged)} of class-9 "
            f"inputs flagged, AUROC {fmt3(nov.novelty_auroc)}"
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
    emit(
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
    check_not_input(out, {"MODEL": model, "DATA": data})
    check_output(out, force)
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
            layer_list(layers),
            batch_size=batch_size,
            progress="mining" if progress else False,
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
    emit(
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

    if not (out / "zarr.json").exists():
        check_new_store(out)
    net = load_model(model)
    x, y = load_npz(data, split)
    resumed = ActivationStore.open(out).n_committed if (out / "zarr.json").exists() else 0
    t0 = time.perf_counter()
    try:
        mode = "bits" if bits else "float32"
        store = record(net, x, y, out, layer_list(layers), mode, batch_size, progress)
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
    emit(
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

    net, napset = load_pair(model, naps)
    x, y = load_npz(data, split)
    label = "evaluating" if progress else False
    s = nap_stats(net, napset, x, y, tolerance, only_correct, progress=label)
    if not as_json:
        title = f"NAPs at δ = {napset.delta:g}, γ = {tolerance}"
        out_console.print(stats_table(title, [("", s)]))
    emit({**s.to_dict(), "delta": napset.delta}, as_json)


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

    net, napset = load_pair(model, naps)
    x, y = load_npz(data, split)
    label = "monitoring" if progress else False
    mon = NAPMonitor(net, tolerance=tolerance, batch_size=batch_size, progress=label, scheduler=scheduler)
    mon.set_naps(napset)
    rep = mon.evaluate(x, y)
    if not as_json:
        out_console.print(
            f"{rep.n} inputs, accuracy {rep.accuracy:.3f}: flagged {rep.flagged_rate:.1%}, "
            f"misclassifications caught {fmt3(rep.misclassified_caught)}, correct ones flagged "
            f"{fmt3(rep.correct_flagged)}, AUROC {fmt3(rep.auroc)} "
            f"(max softmax {fmt3(rep.max_softmax_auroc)})"
        )
    emit({**rep.to_dict(), "delta": napset.delta}, as_json)

"""Verification commands: verify (one class or all), ambiguity, minimize."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
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
    check_not_input,
    check_output,
    out_console,
    positive_seconds,
)
from napkit.cli.queries import (
    _ball_notes,
    batch_exit,
    nap_query,
    onnx_proto,
    parse_label,
    print_notes,
    query_region,
    result_line,
    run_batch_cli,
)
from napkit.cli_output import emit_json as emit
from napkit.errors import NapkitError


@app.command()
def verify(
    model: ModelArg,
    label: Annotated[
        str,
        typer.Option(
            "--label",
            help="The class C: is every input of the region classified C? "
            "'all': every class, one query each, in parallel",
        ),
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
        typer.Option(
            "--witnesses",
            help=".npz of inputs (e.g. the mining data): one that follows "
            "the NAP shows its region is not empty, which `verified` needs; one that follows "
            "and is classified otherwise is a counterexample",
        ),
    ] = None,
    workers: WorkersOpt = None,
    results: ResultsOpt = None,
    scheduler: SchedulerOpt = None,
    progress: ProgressOpt = True,
    as_json: JsonOpt = False,
) -> int:
    """NAP robustness: every input of the region that follows NAP_C is classified C."""
    region = (domain, center, index, eps, split, lo, hi)
    chosen = parse_label(label)
    if chosen is None:
        if witnesses is not None:
            raise NapkitError("--witnesses applies to one class; with --label all the engine searches")
        return _verify_all(model, naps, region, timeout, workers, results, scheduler, progress, as_json)
    if scheduler is not None or results is not None:
        raise NapkitError("--results and --scheduler apply to --label all")
    if witnesses is not None and naps is None:
        raise NapkitError("--witnesses are inputs that follow a NAP: give --naps NAPS.json too")
    from napkit.progress import status_line
    from napkit.verify import verify_robustness

    net, _, phases, box, notes = nap_query(model, naps, chosen, region)
    print_notes(notes)
    witness = None
    if witnesses is not None and phases is not None:
        from napkit.datasets import load_npz

        wx, _ = load_npz(witnesses, split)
        witness = net.reshape_inputs(wx)  # every row: the engine checks which follow (napfalsify.py)
    with status_line(f"verifying class {chosen} (at most {timeout:g} s)", progress):
        res = verify_robustness(
            net,
            box,
            chosen,
            phases,
            timeout=timeout,
            onnx_model=onnx_proto(model),
            witness=witness,
            workers=workers,
        )
    if not as_json:
        with_nap = f" following the NAP of class {chosen}" if phases is not None else ""
        out_console.print(result_line(res, f"class {chosen}{with_nap}"))
    emit({**res.to_dict(), "label": chosen, "nap": phases is not None, "notes": notes}, as_json)
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
    from napkit.verify import BatchJob, Property, check_results_file, linf_ball, query_id, robustness_spec

    domain, center, index, eps, split, lo, hi = region
    if results is not None:
        check_results_file(results)  # before any work; run_batch checks it the same way
    net = load_model(model)
    napset = None if naps is None else NAPSet.load(naps, net)
    box, _, notes = query_region(net, *region)  # validates the region once
    classes = list(range(net.n_outputs)) if napset is None else napset.labels.tolist()
    centres: dict[int, int] = {}
    if center is not None:
        centres = _class_centres(net, napset, center, split, index)
        x = net.reshape_inputs(load_npz(center, split)[0])
        notes = []
        for c in classes:
            if c not in centres:
                notes.append(
                    f"class {c}: no row from {index} on is classified {c}"
                    + (" and follows its NAP" if napset is not None else "")
                    + "; skipped"
                )
        for c, r in centres.items():
            notes += [f"class {c}: {n}" for n in _ball_notes(x[r].astype(float), eps, lo, hi)]
    print_notes(notes)
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
    recs = run_batch_cli(jobs, results, workers, scheduler, progress)
    rows = []
    for job in jobs:
        rec = recs.get(job.id, {"result": "error", "reason": "no result", "seconds": None})
        row = {
            "label": meta[job.id],
            "result": rec["result"],
            "seconds": rec.get("seconds"),
            "reason": rec.get("reason", ""),
        }
        if center is not None:
            row["index"] = centres[meta[job.id]]
        if rec.get("counterexample") is not None:
            row["counterexample"] = rec["counterexample"]
        rows.append(row)
    counts = {
        v: sum(r["result"] == v for r in rows)
        for v in ("verified", "falsified", "unknown", "vacuous", "error")
    }
    if not as_json:
        where = f"[{lo:g}, {hi:g}]^{net.n_inputs}" if center is None else f"ε = {eps:g} around {center}"
        nap = f"NAP (δ = {napset.delta:g}) " if napset is not None else ""
        table = Table(title=f"{nap}robustness of every class over {where}, at most {timeout:g} s each")
        for col in ("class", *(("row",) if center is not None else ()), "verdict", "seconds", "reason"):
            table.add_column(col, justify="left" if col in ("verdict", "reason") else "right")
        for r in rows:
            secs = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
            cells = [
                str(r["label"]),
                *((str(r["index"]),) if center is not None else ()),
                r["result"],
                secs,
                r["reason"],
            ]
            table.add_row(*cells)
        out_console.print(table)
        out_console.print(", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no verdicts")
    emit(
        {
            "results": rows,
            **counts,
            "notes": notes,
            "timeout": timeout,
            "delta": None if napset is None else napset.delta,
        },
        as_json,
    )
    return batch_exit(counts, "falsified")


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
        recs = run_batch_cli(list(jobs.values()), None, None, scheduler, progress)
        solved = {ab: recs[job.id] for ab, job in jobs.items()}
    pairs = []
    with progress_bar(len(todo), "pairs", progress and scheduler is None) as advance:
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
    emit({"pairs": pairs, **counts, "delta": napset.delta}, as_json)
    return batch_exit(counts, "falsified")


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
        typer.Option("--budget", help="Seconds for the whole search (> 0)", callback=positive_seconds),
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

    if data_split is not None and data is None:
        raise NapkitError("--data-split needs --data")
    if out.resolve() == naps.resolve():
        raise NapkitError(f"--out {out} is the --naps file: minimize would overwrite its own input")
    check_not_input(out, {"MODEL": model, "--center": center, "--data": data})
    check_output(out, force)
    region = (domain, center, index, eps, split, lo, hi)
    net, napset, phases, box, notes = nap_query(model, naps, label, region)
    print_notes(notes)
    priority, xy = None, None
    if data is not None:
        xy = load_npz(data, data_split)
        miner = count_patterns(net, *xy, progress=False)
        if miner.totals[label]:
            p = miner.counts[label] / miner.totals[label]
            priority = 1.0 - np.abs(2 * p - 1)  # the least certain constraints go first
    with status_line(f"minimising the NAP of class {label} (at most {budget:g} s)", progress):
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
    emit(payload, as_json)

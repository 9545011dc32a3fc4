"""Batches: many properties in parallel worker processes, streamed to a resumable JSON-lines file.

Each :class:`BatchJob` (an id, a network, a property, its own timeout, a backend) runs
in a worker process; the parent writes one JSON object per finished job as one line
(``{"id": ..., "result": ..., "seconds": ..., ...}``), flushed and fsynced, so a batch
that is interrupted (Ctrl-C, a killed machine) resumes where it stopped: ids already
in the file are skipped. A line is counted only when it is complete (ends in a newline)
and parses as JSON with an ``id``; a torn last line is cut off before appending.

Where the workers run: locally, a ``concurrent.futures.ProcessPoolExecutor`` (spawned
processes; dask's own local schedulers cannot stream results as they finish); with
``scheduler="tcp://host:8786"``, the workers of that ``dask.distributed`` cluster (the
extra ``napkit[cluster]``). Each job's timeout is the verifier's own; a worker is killed
from outside only when the batch itself is interrupted (Ctrl-C).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import numbers
import os
import pickle
import signal
import traceback
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from napkit.errors import NapkitError
from napkit.jsonlines import append_record, read_records
from napkit.network import ReluNetwork
from napkit.progress import progress_bar
from napkit.staging import check_parent
from napkit.verify.properties import Phases, Property

BACKENDS = ("napkit", "marabou")


@dataclass(frozen=True)
class BatchJob:
    """One query of a batch; ``id`` names it in the results file (unique within the batch).

    With ``disjoint_with`` the job asks instead whether any x of ``prop.box`` follows both
    ``prop.phases`` and ``disjoint_with`` (non-ambiguity; ``prop.output`` is not used).
    """

    id: str
    net: ReluNetwork
    prop: Property
    timeout: float = 60.0
    backend: str = "napkit"
    disjoint_with: Phases | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", str(self.id))
        if self.backend not in BACKENDS:
            raise NapkitError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if not self.timeout > 0:
            raise NapkitError(f"job {self.id}: the timeout must be > 0, got {self.timeout}")


def query_id(name: str, net: ReluNetwork, prop: Property, timeout: float, backend: str = "napkit",
             disjoint_with: Phases | None = None) -> str:
    """``name`` plus a digest of the query (model, region, output, phases, timeout, backend).

    Used as a job id, a results file resumed with other parameters (another model, ε or
    timeout) matches none of its old lines: nothing is reused from a different query.
    """
    h = hashlib.sha256(net.fingerprint().encode())
    h.update(pickle.dumps((prop, disjoint_with, float(timeout), backend), protocol=4))
    return f"{name}-{h.hexdigest()[:12]}"


def run_job(job: BatchJob) -> dict:
    """Run one job (in a worker): its result as a JSON-ready dict; an error is a result too."""
    try:
        if job.disjoint_with is not None:
            if job.backend == "marabou":
                from napkit.verify.marabou import verify_disjoint_marabou as disjoint
            else:
                from napkit.verify.engine import verify_disjoint as disjoint

            res = disjoint(job.net, job.prop.box, job.prop.phases, job.disjoint_with, timeout=job.timeout)
        elif job.backend == "marabou":
            from napkit.verify.marabou import verify_property_marabou

            res = verify_property_marabou(job.net, job.prop, job.timeout)
        else:
            from napkit.verify.engine import verify_property

            res = verify_property(job.net, job.prop, job.timeout, workers=1)  # the pool is the parallelism
        return {"id": job.id, "backend": job.backend, "timeout": job.timeout, **res.to_dict()}
    except Exception as err:  # one bad job must not sink the batch
        kind = "bad input" if isinstance(err, NapkitError) else "error"
        return {"id": job.id, "backend": job.backend, "timeout": job.timeout, "result": "error",
                "reason": f"{kind}: {type(err).__name__}: {err}",
                "traceback": "" if isinstance(err, NapkitError) else traceback.format_exc()}


RECORD_START = b'{"id": '  # how every line this module writes begins (json.dumps, id first)


def check_results_file(path: str | Path) -> Path:
    """``path`` can hold a batch's results: absent, or a results file to resume from.

    The one check of a results file (the CLI's ``--results`` calls it before any work, and
    ``run_batch`` again). Refused (NapkitError): a folder, a path whose folder is missing or a
    file (:func:`napkit.staging.check_parent`; it is never created), an unwritable path, and
    an existing file that is not a results file (its first line is no result record, nor the torn start
    of one), which resuming would cut and append to. Damage after a first good record (a torn
    or NUL-filled tail after a crash) is ``read_results``'s to repair, as before.
    """
    p = Path(path)
    if p.is_dir():
        raise NapkitError(f"cannot use {p} for results: it is a folder, give a file name")
    parent = check_parent(p)
    if not os.access(p if p.exists() else parent, os.W_OK):  # appends and repairs touch the file only
        raise NapkitError(f"cannot write {p}: permission denied")
    if not p.exists():
        return p
    with p.open("rb") as f:
        first = f.readline()
    if first.endswith(b"\n"):
        ours = _is_record(first)
    else:  # no complete line yet: empty, or the torn start of the first record
        ours = RECORD_START.startswith(first[: len(RECORD_START)])
    if not ours:
        raise NapkitError(
            f"{p} is not a napkit results file (JSON lines of finished queries); resuming would "
            "cut and append to it: choose another path"
        )
    return p


def _is_result(rec) -> bool:
    """A finished query's record: a JSON object with its id and result."""
    return isinstance(rec, dict) and "id" in rec and "result" in rec


def _is_record(line: bytes) -> bool:
    try:
        return _is_result(json.loads(line))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def read_results(path: str | Path, repair: bool = False) -> dict[str, dict]:
    """The complete records of a results file by id (a later line for an id wins).

    With ``repair`` a torn last line (no final newline) is cut off the file, so that
    appending starts on a fresh line.
    """
    records = read_records(path, repair=repair)
    return {str(rec["id"]): rec for rec in records if _is_result(rec)}


def run_batch(
    jobs: Iterable[BatchJob],
    out: str | Path,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    retry_errors: bool = False,
) -> dict[str, dict]:
    """Run every job not yet in ``out`` and append its result there; all results by id.

    ``workers`` bounds the local processes (default: the CPU count); ``scheduler`` is a
    ``dask.distributed`` scheduler address to run on a cluster instead. ``retry_errors``
    runs again the jobs whose recorded result is ``error``.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1
    ):
        raise NapkitError(f"workers must be a whole number >= 1 (or None), got {workers!r}")
    workers = None if workers is None else int(workers)
    jobs = list(jobs)
    if not all(isinstance(j, BatchJob) for j in jobs):
        raise NapkitError("run_batch takes BatchJob objects (instance_jobs makes them from a CSV)")
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise NapkitError(f"job ids must be unique within a batch; {dup!r} repeats")
    out = check_results_file(out)
    done = read_results(out, repair=True)
    if retry_errors:
        done = {k: v for k, v in done.items() if v.get("result") != "error"}
    pending = [j for j in jobs if j.id not in done]
    results = {i: done[i] for i in ids if i in done}
    if not pending:
        return results
    with open(out, "ab") as f, progress_bar(len(pending), "verifying", progress) as advance:
        def record(rec: dict) -> None:
            append_record(f, rec)
            results[rec["id"]] = rec
            advance(1)

        if scheduler is not None:
            _run_distributed(pending, scheduler, record)
        else:
            _run_local(pending, workers, record)
    return {i: results[i] for i in ids if i in results}


def _quiet_worker() -> None:
    """Workers leave Ctrl-C to the parent, which stops them (no traceback from each worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool(n: int, ctx) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_quiet_worker)


def _stop_workers(ex: ProcessPoolExecutor) -> None:
    """End the worker processes now: an interrupted batch must not wait for running queries."""
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        proc.terminate()


def _close_pool(ex: ProcessPoolExecutor) -> None:
    """Shut the pool down and wait for its thread and processes (they are idle, done or
    terminated by now, so this is quick). A pool left shutting down in the background races
    ``concurrent.futures``' exit hook, which then writes to a closed wake-up pipe and prints
    a traceback after the command's output."""
    ex.shutdown(wait=True, cancel_futures=True)


def _run_local(pending: list[BatchJob], workers: int | None, record) -> None:
    n = max(1, min(int(workers or os.cpu_count() or 1), len(pending)))
    ctx = multiprocessing.get_context("spawn")  # torch in the parent: no fork
    ex = _pool(n, ctx)
    queue = iter(pending)
    running: dict = {}

    def submit_next() -> None:
        job = next(queue, None)
        if job is not None:
            running[ex.submit(run_job, job)] = job

    try:
        for _ in range(2 * n):  # at most 2 jobs per worker in flight (each pickles its network)
            submit_next()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                job = running.pop(fut)
                try:
                    rec = fut.result()
                except BrokenProcessPool:  # a worker died (e.g. a crash in a native solver)
                    broken = True
                    running[fut] = job
                    continue
                record(rec)
                submit_next()
            if broken:  # every job of the dead pool is lost: run each alone to find the culprit
                lost = list(running.values())
                running.clear()
                _close_pool(ex)
                for job in lost:
                    record(_run_alone(job, ctx))
                ex = _pool(n, ctx)
                for _ in range(2 * n):
                    submit_next()
    except BaseException:  # Ctrl-C or an error here: the workers go with us
        _stop_workers(ex)
        raise
    finally:
        _close_pool(ex)


def _run_alone(job: BatchJob, ctx) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as solo:
        try:
            return solo.submit(run_job, job).result()
        except BrokenProcessPool as err:
            return {"id": job.id, "backend": job.backend, "timeout": job.timeout, "result": "error",
                    "reason": f"the worker process died: {err}"}


def _run_distributed(pending: list[BatchJob], scheduler: str, record) -> None:
    from napkit.cluster import connect

    with connect(scheduler) as client:  # refuses clearly when dask.distributed is missing
        from dask.distributed import as_completed

        futures = {client.submit(run_job, job, pure=False): job for job in pending}
        try:
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    rec = fut.result()
                except Exception as err:
                    rec = {"id": job.id, "backend": job.backend, "timeout": job.timeout,
                           "result": "error", "reason": f"worker failed: {type(err).__name__}: {err}"}
                record(rec)
        finally:
            client.cancel(list(futures))

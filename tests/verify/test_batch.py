"""Batches: parallel workers, JSON-lines streaming, resume after an interruption."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from verify_helpers import random_net

from napkit.errors import NapkitError
from napkit.verify import Property, domain_box, linf_ball, robustness_spec, verify_property
from napkit.verify.batch import BatchJob, check_results_file, read_results, run_batch
from napkit.verify.marabou import marabou_available


def _jobs(n: int = 6) -> list[BatchJob]:
    rng = np.random.default_rng(7)
    jobs = []
    for i in range(n):
        net = random_net(rng, 3, [6, 5], 3)
        x0 = rng.random(3)
        label = int(net.predict(x0[None])[0])
        box = linf_ball(x0, 0.05) if i % 2 else domain_box(3)
        jobs.append(BatchJob(f"q{i}", net, Property(box, robustness_spec(label, 3)), timeout=5.0))
    return jobs


def test_batch_runs_in_workers_and_streams_lines(tmp_path):
    jobs = _jobs()
    out = tmp_path / "res.jsonl"
    res = run_batch(jobs, out, workers=2, progress=False)
    assert list(res) == [j.id for j in jobs]
    lines = out.read_text().splitlines()
    assert len(lines) == len(jobs) and all(json.loads(ln)["id"] for ln in lines)
    for j in jobs:
        here = verify_property(j.net, j.prop, 5.0).verdict
        assert res[j.id]["result"] == here, (j.id, res[j.id]["reason"])
        assert res[j.id]["backend"] == "napkit" and res[j.id]["timeout"] == 5.0


def test_resume_skips_done_ids_and_cuts_a_torn_line(tmp_path):
    jobs = _jobs()
    out = tmp_path / "res.jsonl"
    old = [{"id": "q0", "result": "verified", "seconds": 123.0}, {"id": "q3", "result": "unknown"}]
    out.write_text("".join(json.dumps(r) + "\n" for r in old) + '{"id": "q1", "result": "verif')
    assert set(read_results(out)) == {"q0", "q3"}  # the torn line does not count
    res = run_batch(jobs, out, workers=2, progress=False)
    assert res["q0"]["seconds"] == 123.0 and res["q3"]["result"] == "unknown"  # not run again
    recs = [json.loads(ln) for ln in out.read_text().splitlines()]  # every line parses
    assert sorted(r["id"] for r in recs) == sorted(j.id for j in jobs)
    again = run_batch(jobs, out, workers=2, progress=False)  # nothing left to do
    assert again == res and len(out.read_text().splitlines()) == len(jobs)


def test_bad_jobs(tmp_path):
    jobs = _jobs(2)
    with pytest.raises(NapkitError, match="unique"):
        run_batch([jobs[0], jobs[0]], tmp_path / "x.jsonl", progress=False)
    with pytest.raises(NapkitError, match="backend"):
        BatchJob("b", jobs[0].net, jobs[0].prop, backend="cplex")
    wrong = BatchJob("w", jobs[0].net, Property(domain_box(5), robustness_spec(0, 3)), timeout=1.0)
    res = run_batch([wrong, jobs[1]], tmp_path / "y.jsonl", workers=1, progress=False)
    assert res["w"]["result"] == "error" and "bad input" in res["w"]["reason"]
    assert res[jobs[1].id]["result"] in ("verified", "falsified", "vacuous", "unknown")


def test_scheduler_address_without_distributed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(NapkitError, match=r"needs dask.distributed: pip install 'napkit\[cluster\]'"):
        run_batch(_jobs(1), tmp_path / "z.jsonl", scheduler="tcp://127.0.0.1:1", progress=False)


@pytest.mark.skipif(not marabou_available(), reason="maraboupy is not importable: pip install maraboupy")
def test_marabou_backend_in_a_batch(tmp_path):
    jobs = [BatchJob(j.id, j.net, j.prop, j.timeout, backend="marabou") for j in _jobs(4)]
    res = run_batch(jobs, tmp_path / "m.jsonl", workers=2, progress=False)
    for j in jobs:
        ours = verify_property(j.net, j.prop, 5.0).verdict
        assert res[j.id]["backend"] == "marabou"
        assert res[j.id]["result"] == ours or "unknown" in (ours, res[j.id]["result"])


def _pool_threads() -> list:
    import threading
    from concurrent.futures.process import _ExecutorManagerThread

    return [t for t in threading.enumerate() if isinstance(t, _ExecutorManagerThread) and t.is_alive()]


def test_batch_returns_with_its_worker_pool_shut_down(tmp_path):
    """No pool thread outlives ``run_batch``: one still running at interpreter exit races
    ``concurrent.futures``' exit hook (its wake-up pipe closed under it), which printed an
    'Exception ignored in: <module threading>' traceback after the batch's JSON line."""
    assert not _pool_threads()
    res = run_batch(_jobs(2), tmp_path / "r.jsonl", workers=1, progress=False)
    assert len(res) == 2
    assert not _pool_threads()


def test_run_batch_refuses_a_missing_parent_folder_and_creates_none(tmp_path):
    """It created the missing folders before, where every other output refuses them."""
    with pytest.raises(NapkitError, match="nowhere does not exist"):
        run_batch(_jobs(1), tmp_path / "nowhere" / "r.jsonl", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "where, msg",
    [("folder", "it is a folder"), ("under_file", "is a file, not a folder"), ("missing", "does not exist")],
)
def test_check_results_file_refuses_paths_no_results_file_can_take(tmp_path, where, msg):
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    path = {"folder": tmp_path / "folder", "under_file": tmp_path / "a_file" / "r.jsonl",
            "missing": tmp_path / "nowhere" / "r.jsonl"}[where]
    with pytest.raises(NapkitError, match=msg):
        check_results_file(path)


def test_a_writable_results_file_in_a_read_only_folder_is_resumable(tmp_path, monkeypatch):
    """Appending and the in-place repair need the file writable, not its folder: such a file
    was refused as 'permission denied'; a new file there still is."""
    import napkit.verify.batch as batch

    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "q0", "result": "verified"}) + "\n")
    real = os.access
    monkeypatch.setattr(batch.os, "access", lambda p, mode: Path(p) != tmp_path and real(p, mode))
    assert check_results_file(path) == path
    with pytest.raises(NapkitError, match="permission denied"):
        check_results_file(tmp_path / "new.jsonl")

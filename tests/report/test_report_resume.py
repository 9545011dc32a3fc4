"""`napkit report` after Ctrl-C: exit 130 with one line, no folder, and a rerun that resumes
(runs only the verification queries that had not finished, and writes the same report)."""

import json

import numpy as np
import pytest

import napkit.verify
from helpers import last_json, run_cli, three_class_files
from napkit.report.journal import QueryJournal, journal_path, query_key


@pytest.fixture
def setup(tmp_path):
    return three_class_files(tmp_path)


class Counting:
    """Counts the solver queries of a report; raises KeyboardInterrupt on call ``stop_at``."""

    def __init__(self, monkeypatch, stop_at=None):
        self.calls, self.stop_at = 0, stop_at
        for name in ("verify_robustness", "verify_disjoint"):
            real = getattr(napkit.verify, name)
            monkeypatch.setattr(napkit.verify, name, self._wrap(real))

    def _wrap(self, real):
        def call(*a, **k):
            self.calls += 1
            if self.calls == self.stop_at:
                raise KeyboardInterrupt
            return real(*a, **k)

        return call


def report_args(setup, out, eps="0.05"):
    tmp, model, data, naps, _ = setup
    return ["report", model, "--naps", naps, "--data", data, "--out", out, "--eps", eps,
            "--verify-timeout", "20", "--no-progress", "--json"]


def verdicts(ver: dict) -> dict:
    """The verdicts (time, the stage that decided, and which counterexample won a race vary)."""
    drop = lambda q: {k: v for k, v in q.items() if k == "result" or k in ("i", "j")}  # noqa: E731
    return {
        "classes": [{k: drop(v) if isinstance(v, dict) else v for k, v in c.items()} for c in ver["classes"]],
        "pairs": [drop(p) for p in ver["pairs"]],
        "counts": ver["counts"],
        "queries": ver["queries"],
    }


def test_interrupted_report_resumes_without_running_finished_queries_again(setup, capsys, monkeypatch):
    tmp = setup[0]
    full = Counting(monkeypatch)
    code, out, err = run_cli(capsys, *report_args(setup, tmp / "full"))
    assert code == 0, err
    total, reference = full.calls, last_json(out)["verification"]  # read now: wrappers stack
    assert total >= 4

    stopped = Counting(monkeypatch, stop_at=3)
    code, out, err = run_cli(capsys, *report_args(setup, tmp / "rep"))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 130 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("napkit: interrupted") and "resumes" in lines[0]
    assert not (tmp / "rep").exists()
    assert not list(tmp.glob(".rep.*.tmp")) and not list(tmp.glob("*partial*"))
    assert len(QueryJournal(journal_path(tmp / "rep")).done) == stopped.calls - 1 == 2

    resumed = Counting(monkeypatch)
    code, out, err = run_cli(capsys, *report_args(setup, tmp / "rep"))
    assert code == 0, err
    assert resumed.calls == total - 2  # the two finished queries are not run again
    assert verdicts(last_json(out)["verification"]) == verdicts(reference)
    on_disk = json.loads((tmp / "rep" / "figures.json").read_text())
    assert verdicts(on_disk["verification"]) == verdicts(reference)
    assert not journal_path(tmp / "rep").exists()  # written: nothing left to resume


def test_a_resumed_report_with_another_eps_runs_its_local_queries_again(setup, capsys, monkeypatch):
    tmp = setup[0]
    Counting(monkeypatch, stop_at=3)  # class 0: domain and local query recorded, then Ctrl-C
    code, out, err = run_cli(capsys, *report_args(setup, tmp / "rep", eps="0.05"))
    assert code == 130, err
    full = Counting(monkeypatch)
    code, out, err = run_cli(capsys, *report_args(setup, tmp / "other", eps="0.1"))
    assert code == 0, err
    total = full.calls  # read now: the wrappers stack, later runs count here too
    resumed = Counting(monkeypatch)
    code, out, err = run_cli(capsys, *report_args(setup, tmp / "rep", eps="0.1"))
    assert code == 0, err
    assert resumed.calls == total - 1  # only the domain query of class 0 is the same query


def test_journal_ignores_and_cuts_a_torn_last_line(tmp_path):
    path = tmp_path / ".r.queries.jsonl"
    key = query_key("robust", "fp", 0, [np.zeros(3, dtype=np.int8)], np.zeros(2), np.ones(2), None, 1.0)
    QueryJournal(path).add(key, "falsified", "attack", 0.5, np.array([0.1, 1 / 3]))
    with open(path, "ab") as f:
        f.write(b'{"key": "abc", "verdict": "veri')
    journal = QueryJournal(path)
    assert list(journal.done) == [key]
    assert journal.get(key)["counterexample"] == [0.1, 1 / 3]  # exact through JSON
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 1

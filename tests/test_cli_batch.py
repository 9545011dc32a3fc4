"""Batch runs from the command line: `verify --label all` and `vnnlib --instances` (issue 10, §2)."""

import csv
import json

import numpy as np
import pytest

from helpers import MNIST_FC, last_json, need_shared, run_cli, three_class_files
from napkit.network import to_onnx
from napkit.patterns import NAPSet
from napkit.verify import follows_phases, linf_ball, read_results, robustness_spec, write_vnnlib


@pytest.fixture
def setup(tmp_path):
    return three_class_files(tmp_path, relabel=30)


def run(capsys, *args):
    return run_cli(capsys, *args)


def test_verify_label_all_matches_one_query_per_class(setup, capsys):
    tmp, model, data, naps, net = setup
    code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", "all", "--domain",
                         "--timeout", "60", "--workers", "2", "--json")
    res = last_json(out)
    assert [r["label"] for r in res["results"]] == [0, 1, 2]
    assert code == (1 if res["falsified"] else 0)
    for r in res["results"]:
        c, o, e = run(capsys, "verify", model, "--naps", naps, "--label", r["label"], "--domain",
                      "--timeout", "60", "--json")
        single = last_json(o)
        assert r["result"] == single["result"], (r, single)
        assert r["result"] != "unknown"  # a network this small is decided well within the timeout
    code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", "all", "--domain",
                         "--timeout", "60", "--workers", "1", "--no-progress")
    header = next(line for line in out.splitlines() if "class" in line and "verdict" in line)
    assert all(col in header for col in ("seconds", "reason"))


def test_label_all_around_centres_takes_the_first_fitting_row_of_each_class(setup, capsys):
    tmp, model, data, naps, net = setup
    code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", "all", "--center", data,
                         "--index", "5", "--eps", "0.01", "--timeout", "10", "--workers", "1", "--json")
    res = last_json(out)
    d = np.load(data)
    x, y = d["x"].astype(float), d["y"]
    logits, pre = net.forward(x)
    napset = NAPSet.load(naps, net)
    for r in res["results"]:
        c = r["label"]
        phases = napset.phases(c, net.layer_names, net.layer_sizes)
        fits = (logits.argmax(1) == y) & (y == c) & follows_phases(pre, phases, strict=True)
        fits[:5] = False
        assert r["index"] == int(np.flatnonzero(fits)[0])
        assert r["result"] in ("verified", "falsified", "unknown")


def test_an_interrupted_batch_resumes_and_counts_nothing_twice(setup, capsys):
    tmp, model, data, naps, net = setup
    results = tmp / "run.jsonl"
    args = ["verify", model, "--naps", naps, "--label", "all", "--domain", "--timeout", "10",
            "--workers", "1", "--results", results, "--json"]
    code, out, err = run(capsys, *args)
    first = last_json(out)
    lines = results.read_text().splitlines()
    assert len(lines) == 3
    # as if the run had died while writing its second line
    results.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    code, out, err = run(capsys, *args)
    again = last_json(out)
    assert [r["result"] for r in again["results"]] == [r["result"] for r in first["results"]]
    kept = results.read_text().splitlines()
    assert len(kept) == 3 and kept[0] == lines[0]  # the finished query was not run again
    assert len({json.loads(line)["id"] for line in kept}) == 3
    code, out, err = run(capsys, *args)  # nothing left to do: the file does not grow
    assert results.read_text().splitlines() == kept


def test_a_results_file_of_another_query_is_not_reused(setup, capsys):
    tmp, model, data, naps, net = setup
    results = tmp / "run.jsonl"
    base = ["verify", model, "--naps", naps, "--label", "all", "--domain", "--workers", "1", "--results",
            results, "--json"]
    run(capsys, *base, "--timeout", "10")
    run(capsys, *base, "--timeout", "9")
    ids = [json.loads(line)["id"] for line in results.read_text().splitlines()]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert len(read_results(results)) == 6


def _instances(tmp, net, model):
    """An instances.csv in a benchmark folder: two robustness queries around data points."""
    bench = tmp / "bench"
    (bench / "specs").mkdir(parents=True)
    (bench / "nets").mkdir()
    to_onnx(net, bench / "nets" / "m.onnx")
    rows = []
    for k, (x0, eps) in enumerate([(np.full(3, 0.5), 0.01), (np.full(3, 0.5), 0.5)]):
        label = int(net.predict(x0[None])[0])
        write_vnnlib(bench / "specs" / f"p{k}.vnnlib", linf_ball(x0, eps), robustness_spec(label, 3))
        rows.append(f"nets/m.onnx,specs/p{k}.vnnlib,10")
    (bench / "instances.csv").write_text("\n".join(rows) + "\n")
    return bench


def test_vnnlib_instances_writes_vnncomp_results(setup, capsys):
    tmp, model, data, naps, net = setup
    bench = _instances(tmp, net, model)
    out_csv = tmp / "results.csv"
    code, out, err = run(capsys, "vnnlib", "--instances", bench / "instances.csv", "--out", out_csv,
                         "--workers", "1", "--json")
    res = last_json(out)
    rows = list(csv.reader(out_csv.open()))
    assert len(rows) == 2 and all(len(r) == 6 for r in rows)
    for k, r in enumerate(rows):
        assert r[:3] == ["bench", "nets/m.onnx", f"specs/p{k}.vnnlib"]
        c, o, e = run(capsys, "vnnlib", bench / "nets" / "m.onnx", bench / "specs" / f"p{k}.vnnlib",
                      "--timeout", "10", "--json")
        assert r[4] == last_json(o)["result"] == res["instances"][k]["result"]
        assert float(r[5]) >= 0
    assert code == (1 if res["sat"] else 0)
    code, out, err = run(capsys, "vnnlib", "--instances", bench / "instances.csv", "--out", out_csv)
    assert code == 2 and "--force" in err


@pytest.mark.parametrize(
    "text, msg",
    [("nets/m.onnx,specs/p0.vnnlib\n", "expected onnx,vnnlib,timeout"),
     ("nets/m.onnx,specs/none.vnnlib,10\n", "none.vnnlib does not exist"),
     ("nets/m.onnx,specs/p0.vnnlib,soon\n", "is not a number"),
     ("nets/m.onnx,specs/p0.vnnlib,0\n", "must be > 0"),
     ("\n", "lists no instances")],
)
def test_bad_instances_file_is_one_line(setup, capsys, text, msg):
    tmp, model, data, naps, net = setup
    bench = _instances(tmp, net, model)
    (bench / "bad.csv").write_text(text)
    code, out, err = run(capsys, "vnnlib", "--instances", bench / "bad.csv", "--out", tmp / "r.csv")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and msg in lines[0], err
    assert not (tmp / "r.csv").exists()


def test_vnnlib_instances_on_mnist_agree_with_the_truth(tmp_path, capsys):
    onnx_dir = need_shared("benchmarks", "mnist_fc", "onnx")
    truth = {r["inst"]: r["truth"] for r in csv.DictReader(open(MNIST_FC / "truth.csv"))}
    picks = ["prop_0_0.03", "prop_1_0.05", "prop_3_0.03"]
    (tmp_path / "instances.csv").write_text("".join(
        f"{onnx_dir}/mnist-net_256x2.onnx.gz,{MNIST_FC}/vnnlib/{p}.vnnlib.gz,20\n" for p in picks))
    code, out, err = run(capsys, "vnnlib", "--instances", tmp_path / "instances.csv", "--out",
                         tmp_path / "r.csv", "--workers", "2", "--json")
    got = [r["result"] for r in last_json(out)["instances"]]
    assert got == [truth[f"mnist-net_256x2-{p}"] for p in picks]


def test_a_query_that_crashed_is_never_read_as_success(setup, capsys, monkeypatch):
    from napkit.cli import verification, vnnlib_cmds

    tmp, model, data, naps, net = setup

    def crashed(jobs, *args):  # what run_batch records for a worker that raised
        return {j.id: {"id": j.id, "result": "error", "reason": "error: RuntimeError: boom", "seconds": None}
                for j in jobs}

    monkeypatch.setattr(verification, "run_batch_cli", crashed)
    monkeypatch.setattr(vnnlib_cmds, "run_batch_cli", crashed)
    code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", "all", "--domain", "--json")
    assert code == 2
    assert last_json(out)["error"] == 3
    assert "3 queries ended in an error" in err
    instances = _instances(tmp, net, model) / "instances.csv"
    code, out, err = run(capsys, "vnnlib", "--instances", instances, "--out", tmp / "r.csv", "--json")
    assert code == 2 and last_json(out)["error"] > 0

"""`--scheduler`: the same commands on a real dask.distributed cluster give the local results (§3).

One LocalCluster per module: 2 worker processes on loopback TCP, one thread each, no dashboard.
"""

import json

import numpy as np
import pytest

from helpers import last_json, run_cli, three_class_files
from napkit.cli import main
from napkit.verify import linf_ball, robustness_spec, write_vnnlib

distributed = pytest.importorskip("distributed", reason="the cluster tests need napkit[cluster]")


@pytest.fixture(scope="module")
def scheduler():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return three_class_files(tmp_path_factory.mktemp("cluster"), n=2000, relabel=100)


def run(capsys, *args):
    code, out, err = run_cli(capsys, *args)
    assert code in (0, 1), err
    return code, last_json(out)


def test_verify_label_all_on_the_cluster_equals_local(setup, scheduler, capsys):
    tmp, model, data, naps, net = setup
    args = ["verify", model, "--naps", naps, "--label", "all", "--domain", "--timeout", "60", "--json"]
    code_local, local = run(capsys, *args, "--workers", "1")
    code_cluster, remote = run(capsys, *args, "--scheduler", scheduler)
    assert code_cluster == code_local
    assert [(r["label"], r["result"]) for r in remote["results"]] == [
        (r["label"], r["result"]) for r in local["results"]]


def test_vnnlib_instances_on_the_cluster_equal_local(setup, scheduler, capsys):
    tmp, model, data, naps, net = setup
    bench = tmp / "bench"
    bench.mkdir(exist_ok=True)
    lines = []
    for k, eps in enumerate((0.01, 0.3)):
        x0 = np.full(3, 0.5)
        label = int(net.predict(x0[None])[0])
        write_vnnlib(bench / f"p{k}.vnnlib", linf_ball(x0, eps), robustness_spec(label, 3))
        lines.append(f"../m.onnx,p{k}.vnnlib,60\n")
    (bench / "instances.csv").write_text("".join(lines))
    args = ["vnnlib", "--instances", bench / "instances.csv", "--json"]
    _, local = run(capsys, *args, "--out", tmp / "local.csv", "--workers", "1")
    _, remote = run(capsys, *args, "--out", tmp / "remote.csv", "--scheduler", scheduler)
    assert [r["result"] for r in remote["instances"]] == [r["result"] for r in local["instances"]]
    strip_time = lambda p: [ln.rsplit(",", 1)[0] for ln in p.read_text().splitlines()]  # noqa: E731
    assert strip_time(tmp / "remote.csv") == strip_time(tmp / "local.csv")


def test_ambiguity_on_the_cluster_equals_local(setup, scheduler, capsys):
    tmp, model, data, naps, net = setup
    _, local = run(capsys, "ambiguity", model, naps, "--timeout", "60", "--json")
    _, remote = run(capsys, "ambiguity", model, naps, "--timeout", "60", "--scheduler", scheduler, "--json")
    pick = lambda res: [(p["i"], p["j"], p["result"]) for p in res["pairs"]]  # noqa: E731
    assert pick(remote) == pick(local)


def test_mining_a_store_on_the_cluster_gives_identical_naps(setup, scheduler, capsys):
    tmp, model, data, naps, net = setup
    store = tmp / "acts.zarr"
    run(capsys, "capture", model, data, "--bits", "--batch-size", "300", "--out", store, "--json")
    run(capsys, "mine", model, store, "--delta", "0.95", "--out", tmp / "local.json", "--json")
    _, res = run(capsys, "mine", model, store, "--delta", "0.95", "--out", tmp / "remote.json",
                 "--scheduler", scheduler, "--json")
    local, remote = (json.loads((tmp / f).read_text()) for f in ("local.json", "remote.json"))
    assert remote == local and sum(res["support"]) > 0


def test_monitor_on_the_cluster_equals_local(setup, scheduler, capsys):
    tmp, model, data, naps, net = setup
    args = ["monitor", model, naps, data, "--tolerance", "1", "--batch-size", "300", "--json"]
    _, local = run(capsys, *args)
    _, remote = run(capsys, *args, "--scheduler", scheduler)
    assert remote == local and remote["n"] == 2000


def test_an_unreachable_scheduler_is_one_line(setup, capsys):
    tmp, model, data, naps, net = setup
    code = main([str(a) for a in ["monitor", model, naps, data, "--scheduler", "tcp://127.0.0.1:9"]])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "cannot reach the dask scheduler" in lines[0], err

"""Whole runs (slow, left out of `make test`): the demo's report and mnist-net_256x2 on MNIST."""

import json

import pytest

from helpers import need_shared
from napkit.cli import main

pytestmark = pytest.mark.slow


def _rows(html: str, table: str) -> int:
    body = html.split(f"<table id='{table}'>", 1)[1].split("</table>", 1)[0]
    return body.count("<tr>") - 1  # minus the heading row


def test_demo_writes_the_report(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"report", "naps", "recall", "verified"} <= set(res)
    html = (tmp_path / "d" / "index.html").read_text()
    assert _rows(html, "per-class-naps") == _rows(html, "per-class-verification") == 10
    assert "Novelty" in html and (tmp_path / "d" / "figures.json").exists()
    figs = json.loads((tmp_path / "d" / "figures.json").read_text())
    assert figs["verification"]["verified"] == res["verified"]


def test_mnist_256x2(tmp_path, capsys):
    model = need_shared("benchmarks", "mnist_fc", "onnx", "mnist-net_256x2.onnx.gz")
    data = need_shared("data", "mnist.npz")
    naps = tmp_path / "naps.json"
    assert main(["mine", str(model), str(data), "--split", "train", "--delta", "0.99", "--out", str(naps),
                 "--no-progress"]) == 0
    out = tmp_path / "r"
    code = main(["report", str(model), "--naps", str(naps), "--data", str(data), "--split", "test",
                 "--mine-data", str(data), "--mine-split", "train", "--verify-timeout", "1",
                 "--out", str(out), "--image-shape", "28,28", "--json", "--no-progress"])
    assert code == 0
    figs = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figs["model"]["accuracy"] > 0.97
    assert figs["monitor"]["operating_points"][0]["gamma"] == 0
    assert len(figs["verification"]["pairs"]) == 45
    assert all((out / c["image"]).exists() for c in figs["counterexamples"] if c["image"])

"""VNN-COMP 2022 mnist_fc on the 256x2 network: never contradict the ground truth."""

import csv

import pytest

from napkit.network import from_onnx, load_onnx_model
from napkit.verify import verify_vnnlib


@pytest.mark.parametrize(
    "prop", ["prop_0_0.03", "prop_3_0.05", "prop_7_0.05", "prop_1_0.05", "prop_4_0.03", "prop_2_0.05"]
)
def test_256x2_agrees_with_truth(mnist_fc, prop):
    truth = {r["inst"]: r["truth"] for r in csv.DictReader(open(mnist_fc / "truth.csv"))}
    proto = load_onnx_model(mnist_fc / "onnx" / "mnist-net_256x2.onnx.gz")
    net = from_onnx(proto)
    r = verify_vnnlib(net, mnist_fc / "vnnlib" / f"{prop}.vnnlib.gz", timeout=8, onnx_model=proto)
    want = truth[f"mnist-net_256x2-{prop}"]
    assert r.verdict in (want, "unknown"), r.reason
    if r.verdict == "sat":
        assert r.stats.get("onnx_checked") and r.counterexample.shape == (784,)

"""VNN-COMP 2022 mnist_fc on the 256x2 network: never contradict the ground truth."""

import csv

from napkit.network import from_onnx, load_onnx_model
from napkit.verify import verify_vnnlib


def test_256x2_agrees_with_truth(mnist_fc):
    """Six 256x2 instances at 8 s each (about 0.5 s idle): no verdict contradicts the ground
    truth, a timeout is no failure, but at least one must be decided, or nothing was checked."""
    truth = {r["inst"]: r["truth"] for r in csv.DictReader(open(mnist_fc / "truth.csv"))}
    proto = load_onnx_model(mnist_fc / "onnx" / "mnist-net_256x2.onnx.gz")
    net = from_onnx(proto)
    decided = 0
    for prop in ["prop_0_0.03", "prop_3_0.05", "prop_7_0.05", "prop_1_0.05", "prop_4_0.03", "prop_2_0.05"]:
        r = verify_vnnlib(net, mnist_fc / "vnnlib" / f"{prop}.vnnlib.gz", timeout=8, onnx_model=proto)
        want = truth[f"mnist-net_256x2-{prop}"]
        assert r.verdict in (want, "unknown"), (prop, r.reason)
        decided += r.verdict != "unknown"
        if r.verdict == "sat":
            assert r.stats.get("onnx_checked") and r.counterexample.shape == (784,)
    assert decided, "every instance timed out"

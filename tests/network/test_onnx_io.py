import gzip

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import MNIST_FC, need_shared, random_net
from napkit.errors import NapkitError
from napkit.network import from_onnx, load_model, load_onnx_model, onnx_logits, to_onnx


def _graph(nodes, inits, in_shape=(1, 3), out_shape=(1, 2)):
    g = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_normalisation_and_matmul_fold_into_layers():
    rng = np.random.default_rng(0)
    w0, b0, w1 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2))
    mean, std = np.array([0.1, 0.2, 0.3]), np.array([2.0, 4.0, 0.5])
    model = _graph(
        [
            helper.make_node("Sub", ["x", "mean"], ["a"]),
            helper.make_node("Div", ["a", "std"], ["b"]),
            helper.make_node("MatMul", ["b", "w0"], ["c"]),
            helper.make_node("Add", ["c", "b0"], ["d"]),
            helper.make_node("Relu", ["d"], ["e"], name="hidden"),
            helper.make_node("MatMul", ["e", "w1"], ["y"]),
        ],
        {"mean": mean, "std": std, "w0": w0, "b0": b0, "w1": w1},
    )
    net = from_onnx(model)
    assert net.layer_names == ("hidden",) and net.layer_sizes == (4,)
    x = rng.uniform(size=(25, 3))
    x32 = x.astype(np.float32).astype(np.float64)
    expected = np.maximum(((x32 - mean) / std) @ w0 + b0, 0) @ w1
    np.testing.assert_allclose(net.logits(x32), expected, atol=1e-5)
    np.testing.assert_allclose(net.logits(x32), onnx_logits(model, x32, net.input_shape), atol=1e-5)


def test_unsupported_operator_names_the_node():
    model = _graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["a"]),
            helper.make_node("Sigmoid", ["a"], ["y"], name="squash"),
        ],
        {"w": np.ones((3, 2))},
    )
    with pytest.raises(NapkitError, match="squash.*Sigmoid"):
        from_onnx(model)


def test_round_trip_and_gzip(tmp_path):
    net = random_net(3)
    path = tmp_path / "m.onnx.gz"
    to_onnx(net, path)
    back = load_model(path)
    x = np.random.default_rng(1).normal(size=(30, 4))
    np.testing.assert_allclose(back.logits(x), net.logits(x), atol=1e-5)
    with gzip.open(path) as f:
        assert onnx.load_model_from_string(f.read()).graph.node


def test_exposed_preactivations_are_outputs():
    net = random_net(4)
    model = to_onnx(net, expose_preactivations=True)
    names = [o.name for o in model.graph.output]
    assert names == ["logits", *[f"pre_{n}" for n in net.layer_names]]


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(NapkitError, match="not a readable ONNX"):
        load_onnx_model(bad)
    with pytest.raises(NapkitError, match="not found"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(NapkitError, match="unknown model format"):
        load_model(bad.rename(tmp_path / "bad.bin"))


@pytest.mark.parametrize("name", ["mnist-net_256x2", "mnist-net_256x4", "mnist-net_256x6"])
def test_mnist_fc_networks_agree_with_onnxruntime(name, mnist_small):
    path = need_shared("benchmarks", "mnist_fc", "onnx", f"{name}.onnx.gz")
    net = load_model(path)
    x, y = mnist_small
    ours = net.logits(x)
    theirs = onnx_logits(load_onnx_model(path), x, net.input_shape)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert (ours.argmax(1) == y).mean() > 0.95
    assert MNIST_FC.exists()


def test_initializers_listed_as_graph_inputs_are_ignored():
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    g = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["shift"], value=numpy_helper.from_array(np.float32([1.0, -1.0]))
            ),
            helper.make_node("MatMul", ["x", "w"], ["a"]),
            helper.make_node("Add", ["a", "shift"], ["y"]),
        ],
        "old-exporter",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(w, "w")],
    )
    net = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    assert net.layer_sizes == () and net.n_inputs == 3
    np.testing.assert_allclose(net.logits(np.array([[1.0, 2.0, 3.0]])), [[17.0, 21.0]])


def test_model_with_exposed_preactivations_loads_as_the_same_network(tmp_path):
    net = random_net(6)
    to_onnx(net, tmp_path / "pre.onnx", expose_preactivations=True)
    back = load_model(tmp_path / "pre.onnx")
    assert back.layer_sizes == net.layer_sizes and back.n_outputs == net.n_outputs
    x = np.random.default_rng(2).normal(size=(20, 4))
    np.testing.assert_allclose(back.logits(x), net.logits(x), atol=1e-5)


@pytest.mark.parametrize("label", [0, 1, 2])
def test_export_with_trailing_singleton_input_reads_back_and_verifies(tmp_path, label):
    """An input shaped (n, 1), as VNN-COMP's MNIST models declare it, survives the
    export-vnnlib round trip: the library reads the pair back, onnxruntime agrees, and
    the VNN-LIB pair gets the same verdict as the original network."""
    from napkit.network import ReluNetwork
    from napkit.verify import domain_box, robustness_spec, verify_vnnlib, write_vnnlib

    base = random_net(7)
    net = ReluNetwork(base.weights, base.biases, input_shape=(4, 1))
    onnx_path, spec_path = tmp_path / "m-preacts.onnx", tmp_path / "nap.vnnlib"
    model = to_onnx(net, onnx_path, expose_preactivations=True)
    back = load_model(onnx_path)
    assert back.input_shape == (4, 1) and back.layer_sizes == net.layer_sizes
    x = np.random.default_rng(3).uniform(size=(50, 4))
    np.testing.assert_allclose(back.logits(x), net.logits(x), atol=1e-5)
    np.testing.assert_allclose(onnx_logits(model, x, back.input_shape), net.logits(x), atol=1e-5)
    _, pre = net.forward(x[:1])
    phases = [np.sign(z[0]).astype(np.int8) for z in pre]  # the pattern of one point: not vacuous
    write_vnnlib(spec_path, domain_box(4), robustness_spec(label, net.n_outputs), phases)
    got = verify_vnnlib(back, spec_path, timeout=30, onnx_model=model, workers=1)
    want = verify_vnnlib(net, spec_path, timeout=30, workers=1)
    assert got.verdict == want.verdict and got.verdict in ("sat", "unsat")


def _two_layer_model(input_type: int, input_dims: list[int], batched: bool) -> onnx.ModelProto:
    """y = W2 relu(W1 x) as ONNX, with an input of ``input_type`` and ``input_dims``."""
    rng = np.random.default_rng(7)
    np_type = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}[input_type]
    w1, w2 = rng.normal(size=(3, 5)).astype(np_type), rng.normal(size=(2, 3)).astype(np_type)
    if batched:
        nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
                 helper.make_node("Gemm", ["f", "W1"], ["h"], transB=1),
                 helper.make_node("Relu", ["h"], ["r"]),
                 helper.make_node("Gemm", ["r", "W2"], ["y"], transB=1)]
        out_dims = [1, 2]
    else:
        nodes = [helper.make_node("MatMul", ["W1", "x"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
                 helper.make_node("MatMul", ["W2", "r"], ["y"])]
        out_dims = [2]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", input_type, input_dims)],
        [helper.make_tensor_value_info("y", input_type, out_dims)],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize(
    "input_type, dims, batched",
    [(TensorProto.DOUBLE, [1, 5], True), (TensorProto.FLOAT, [5], False), (TensorProto.DOUBLE, [5], False)],
)
def test_onnxruntime_recheck_feeds_the_models_own_input_type_and_rank(input_type, dims, batched):
    """float64 inputs and inputs without a batch axis (both read by from_onnx) run in
    onnxruntime as the model declares them, and agree with napkit's logits."""
    model = _two_layer_model(input_type, dims, batched)
    net = from_onnx(model)
    x = np.random.default_rng(8).random((4, 5))
    got = onnx_logits(model, x, net.input_shape)
    tol = 1e-12 if input_type == TensorProto.DOUBLE else 1e-5
    np.testing.assert_allclose(got, net.logits(x), atol=tol, rtol=tol)

"""ReluNetwork from and to ONNX.

Import walks the graph of a feed-forward ReLU network (Gemm, MatMul, Add, Sub, Mul, Div
by constants, Relu and shape-only ops) and collapses it into affine layers; any other
operator is refused with its name and node. Export writes Gemm/Relu, optionally with the
hidden pre-activations as extra outputs (so external verifiers can see the neurons).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from napkit.errors import NapkitError
from napkit.network.affine_chain import AffineChain
from napkit.network.relu_network import ReluNetwork, check_network
from napkit.staging import replacing

_SHAPE_OPS = {"Flatten", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Dropout"}
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
_ARITH_OPS = {"Add", "Sub", "Mul", "Div"}


def load_onnx_model(path: str | Path) -> onnx.ModelProto:
    """Read an ``.onnx`` or ``.onnx.gz`` file, with a clear error when it is not ONNX."""
    if not isinstance(path, str | os.PathLike):
        raise NapkitError(f"an ONNX model is a path or an onnx.ModelProto, not {type(path).__name__}")
    p = Path(path)
    try:
        data = p.read_bytes()
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        model = onnx.load_model_from_string(data)
    except FileNotFoundError:
        raise NapkitError(f"model file not found: {p}") from None
    except Exception as exc:
        raise NapkitError(f"{p} is not a readable ONNX model: {exc}") from None
    if not model.graph.node and not model.graph.input:  # protobuf reads any empty bytes as a model
        what = "is empty" if not data else "holds no ONNX graph"
        raise NapkitError(f"{p} {what}: it is not an ONNX model")
    return model


def _graph_input(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    inits = {t.name for t in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in inits]
    if len(real) != 1:
        raise NapkitError(f"the ONNX graph must have exactly one input, it has {len(real)}")
    dims = [d.dim_value for d in real[0].type.tensor_type.shape.dim]
    if len(dims) > 1 and dims[0] in (0, 1):
        dims = dims[1:]  # a leading batch dimension: symbolic (0) or fixed at 1
    # Decided on the declared dims, not the known ones: [N, 784, 1] (VNN-COMP's input, kept by
    # to_onnx) is one input of shape (784, 1), whose trailing 1 is not a batch axis.
    return real[0].name, tuple(d for d in dims if d > 0)


def from_onnx(source: str | Path | onnx.ModelProto) -> ReluNetwork:
    """Convert an ONNX feed-forward ReLU network into a ReluNetwork."""
    model = source if isinstance(source, onnx.ModelProto) else load_onnx_model(source)
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    name, shape = _graph_input(model)
    if not shape:
        raise NapkitError("the ONNX graph input has no known size")
    chain = AffineChain(int(np.prod(shape)))
    current = name
    relu_inputs: list[str] = []
    for node in graph.node:
        where = f"node '{node.name or node.output[0]}' ({node.op_type})"
        if node.op_type == "Constant":
            value = helper.get_attribute_value(node.attribute[0])
            consts[node.output[0]] = (
                numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)
            )
            continue
        data_inputs = [i for i in node.input if i and i not in consts]
        if data_inputs != [current]:
            raise NapkitError(f"{where}: only a chain of layers on the input is supported")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op == "Gemm":
            if node.input[0] != current or attrs.get("transA", 0):
                raise NapkitError(f"{where}: Gemm must take the data as its first, untransposed input")
            w = consts[node.input[1]].astype(np.float64)
            w = w if attrs.get("transB", 0) else w.T
            chain.matmul(attrs.get("alpha", 1.0) * w, where)
            if len(node.input) > 2 and node.input[2]:
                chain.add(attrs.get("beta", 1.0) * consts[node.input[2]], where)
        elif op == "MatMul":
            if node.input[0] == current:
                chain.matmul(consts[node.input[1]].astype(np.float64).T, where)
            else:
                chain.matmul(consts[node.input[0]].astype(np.float64), where)
        elif op in _ARITH_OPS:
            other = consts[node.input[1] if node.input[0] == current else node.input[0]]
            data_first = node.input[0] == current
            if op == "Add":
                chain.add(other, where)
            elif op == "Sub":
                if data_first:
                    chain.add(-other, where)
                else:
                    chain.scale(np.asarray(-1.0), where)
                    chain.add(other, where)
            elif op == "Mul":
                chain.scale(other, where)
            elif data_first:  # Div
                chain.scale(1.0 / np.asarray(other, dtype=np.float64), where)
            else:
                raise NapkitError(f"{where}: dividing a constant by the data is not affine")
        elif op == "Relu":
            relu_inputs.append(current)
            chain.relu(node.name or f"relu{len(chain.names)}")
        elif op == "Cast":
            if attrs.get("to") not in _FLOAT_TYPES:
                raise NapkitError(f"{where}: a Cast to a non-float type changes the function")
        elif op not in _SHAPE_OPS:
            raise NapkitError(f"{where}: operator {op} is not supported")
        current = node.output[0]
    outs = [o.name for o in graph.output]
    # extra outputs are allowed when they expose the hidden pre-activations (napkit export-vnnlib)
    if not outs or outs[0] != current or any(o not in relu_inputs for o in outs[1:]):
        raise NapkitError(
            "the ONNX graph's first output must be the end of its layer chain and any other "
            "outputs hidden pre-activations"
        )
    return chain.finish(shape, "onnx")


def to_onnx(
    net: ReluNetwork,
    path: str | Path | None = None,
    expose_preactivations: bool = False,
) -> onnx.ModelProto:
    """An ONNX model of ``net`` (input shaped as ``net.input_shape`` with a batch axis).

    With ``expose_preactivations`` every hidden pre-activation is an extra output named
    after its layer, after the logits.
    """
    check_network(net)
    inits, nodes = [], []
    x = "input"
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    cur = "flat"
    outputs = [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [None, net.n_outputs])]
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        last = k == len(net.weights) - 1
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"W{k}"))
        inits.append(numpy_helper.from_array(b.astype(np.float32), f"b{k}"))
        z = "logits" if last else f"pre_{net.layer_names[k]}"
        nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"b{k}"], [z], transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [z], [f"post{k}"], name=net.layer_names[k]))
            cur = f"post{k}"
            if expose_preactivations:
                outputs.append(helper.make_tensor_value_info(z, onnx.TensorProto.FLOAT, [None, w.shape[0]]))
    graph = helper.make_graph(
        nodes,
        "napkit",
        [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, [None, *net.input_shape])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if path is not None:
        data = model.SerializeToString()
        p = Path(path)
        with replacing(p) as tmp:  # never a half-written model
            tmp.write_bytes(gzip.compress(data) if p.suffix == ".gz" else data)
    return model


ORT_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def onnx_logits(model: onnx.ModelProto, x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Logits of ``model`` computed by onnxruntime (an independent re-check of napkit's).

    The inputs are fed in the element type the model declares (float32, float64 or float16),
    with a batch axis when the model's input has one, else one input per run."""
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    batched = len(dims) != len(input_shape)  # an input of the network's own rank has no batch axis
    if dims and batched:
        dims[0].dim_param = "batch"  # make a fixed batch of 1 dynamic
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = ORT_FLOAT_TYPES.get(inp.type)
    if dtype is None:
        raise NapkitError(f"the ONNX model takes {inp.type}: napkit re-checks models of float inputs")
    xs = np.asarray(x)
    n_in = int(np.prod(input_shape))
    if xs.dtype.kind not in "biuf" or xs.ndim < 1 or xs.size != len(xs) * n_in:
        raise NapkitError(
            f"inputs of shape {xs.shape} ({xs.dtype}) do not fit the input shape {tuple(input_shape)}"
        )
    if not np.isfinite(xs).all():
        raise NapkitError("inputs contain NaN or infinity")
    xs = xs.astype(dtype).reshape(len(xs), *input_shape)
    if batched:
        return np.asarray(sess.run(None, {inp.name: xs})[0]).reshape(len(xs), -1)
    # no batch axis (rare; re-checks run on a few points): one run per input
    return np.stack([np.asarray(sess.run(None, {inp.name: row})[0]).reshape(-1) for row in xs])

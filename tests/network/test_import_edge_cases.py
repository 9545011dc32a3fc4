"""Import edge cases: torch normalisation folding, execution order, reused ReLUs, unusual
ONNX nodes, checkpoint key order."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from helpers import gaussian_inputs, reused_relu_model
from napkit.errors import NapkitError
from napkit.network import from_onnx, from_torch, load_model, onnx_logits


def test_from_torch_folds_normalisation_as_the_readme_says():
    class Norm(nn.Module):
        def __init__(self):
            super().__init__()
            self.l, self.o = nn.Linear(4, 5), nn.Linear(5, 3)

        def forward(self, x):
            return self.o(F.relu(self.l((x - 0.5) / 0.25)))

    torch.manual_seed(0)
    model = Norm().double()
    net = from_torch(model)
    x = gaussian_inputs().astype(np.float64)
    np.testing.assert_allclose(net.logits(x), model(torch.from_numpy(x)).detach().numpy(), atol=1e-9)


def test_from_torch_uses_execution_order():
    class Order(nn.Module):
        def __init__(self):
            super().__init__()
            self.out, self.inp, self.r = nn.Linear(5, 3), nn.Linear(4, 5), nn.ReLU()

        def forward(self, x):
            return self.out(self.r(self.inp(x)))

    assert from_torch(Order()).layer_sizes == (5,)


def test_from_torch_reused_relu_module():
    torch.manual_seed(0)
    assert from_torch(reused_relu_model()).layer_sizes == (5, 6)


def _onnx(nodes, inits):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _onnx_tail():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    w1 = rng.normal(size=(2, 4)).astype(np.float32)
    inits = [numpy_helper.from_array(w0, "W0"), numpy_helper.from_array(w1, "W1")]
    tail = [
        helper.make_node("Gemm", ["xf", "W0"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W1"], ["y"], transB=1),
    ]
    return inits, tail


def test_onnx_cast_to_integer_is_refused():
    inits, tail = _onnx_tail()
    nodes = [
        helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT32),
        helper.make_node("Cast", ["xi"], ["xf"], to=TensorProto.FLOAT),
        *tail,
    ]
    with pytest.raises(NapkitError, match="Cast to a non-float type"):
        from_onnx(_onnx(nodes, inits))


def test_onnx_constant_value_float_is_imported_exactly():
    inits, tail = _onnx_tail()
    nodes = [
        helper.make_node("Constant", [], ["c"], value_float=0.5),
        helper.make_node("Sub", ["x", "c"], ["xf"]),
        *tail,
    ]
    m = _onnx(nodes, inits)
    net = from_onnx(m)
    x = gaussian_inputs(5, 3)
    np.testing.assert_allclose(net.logits(x), onnx_logits(m, x, net.input_shape), atol=1e-4)


def test_checkpoint_layer_order_is_kept(tmp_path):
    torch.manual_seed(0)
    layers = [nn.Linear(3, 3) for _ in range(11)]
    sd = collections.OrderedDict()
    for i, lin in enumerate(layers, 1):
        sd[f"fc{i}.weight"], sd[f"fc{i}.bias"] = lin.weight.detach(), lin.bias.detach()
    torch.save(sd, tmp_path / "m.pt")
    seq = nn.Sequential(*[m for lin in layers for m in (lin, nn.ReLU())][:-1]).double()
    x = gaussian_inputs(5, 3).astype(np.float64)
    net = load_model(tmp_path / "m.pt")
    np.testing.assert_allclose(net.logits(x), seq(torch.from_numpy(x)).detach().numpy(), atol=1e-9)


def _save_in_order(path, items):
    torch.save(collections.OrderedDict(items), path)


def test_checkpoint_with_mixed_key_names_keeps_the_file_order(tmp_path):
    """Keys ``layers.0`` then ``layers.out`` (no biases): the layers are taken in file order."""
    g = torch.Generator().manual_seed(0)
    first, out = torch.randn(3, 3, generator=g), torch.randn(2, 3, generator=g)
    _save_in_order(tmp_path / "m.pt", [("layers.0.weight", first), ("layers.out.weight", out)])
    x = gaussian_inputs(5, 3).astype(np.float64)
    expected = np.maximum(x @ first.double().numpy().T, 0) @ out.double().numpy().T
    np.testing.assert_allclose(load_model(tmp_path / "m.pt").logits(x), expected, atol=1e-12)


def test_checkpoint_whose_file_order_mismatches_widths_is_a_clear_error(tmp_path):
    g = torch.Generator().manual_seed(0)
    first, out = torch.randn(3, 3, generator=g), torch.randn(2, 3, generator=g)
    _save_in_order(tmp_path / "m.pt", [("layers.out.weight", out), ("layers.0.weight", first)])
    with pytest.raises(NapkitError, match="takes 3 inputs but layer 0 gives 2"):
        load_model(tmp_path / "m.pt")

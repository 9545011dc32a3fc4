"""The one intermediate representation of a feed-forward ReLU network, and its I/O."""

from napkit.network.model_file import load_model, save_model
from napkit.network.onnx_io import from_onnx, load_onnx_model, onnx_logits, to_onnx
from napkit.network.relu_network import ReluNetwork
from napkit.network.torch_io import from_torch, to_torch

__all__ = [
    "ReluNetwork",
    "from_onnx",
    "from_torch",
    "load_model",
    "load_onnx_model",
    "onnx_logits",
    "save_model",
    "to_onnx",
    "to_torch",
]

"""The one intermediate representation of a feed-forward ReLU network, and its I/O.

torch loads only when a torch conversion is used (``from_torch``/``to_torch``).
"""

from napkit._lazy import lazy_exports
from napkit.network.model_file import load_model, save_model
from napkit.network.onnx_io import from_onnx, load_onnx_model, onnx_logits, to_onnx
from napkit.network.relu_network import ReluNetwork

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

__getattr__, __dir__ = lazy_exports(__name__, {"from_torch": "torch_io", "to_torch": "torch_io"})

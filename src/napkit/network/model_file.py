"""Load any supported model file as a ReluNetwork, and napkit's own model file.

napkit never unpickles a file it is given. Its own format is one safetensors file
(weights) whose metadata holds a JSON description of the layers. PyTorch checkpoints
are read with ``weights_only=True`` and must be the state dict of a Linear/ReLU chain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napkit.errors import NapkitError
from napkit.network.onnx_io import from_onnx
from napkit.network.relu_network import ReluNetwork, check_network
from napkit.staging import check_parent, replacing

MODEL_FORMAT = "napkit.model/1"


def save_model(net: ReluNetwork, path: str | Path) -> Path:
    """Write ``net`` as safetensors weights with a JSON layer description."""
    from safetensors.numpy import save_file

    check_network(net)
    tensors = {}
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        tensors[f"layers.{k}.weight"] = np.ascontiguousarray(w)
        tensors[f"layers.{k}.bias"] = np.ascontiguousarray(b)
    meta = {
        "format": MODEL_FORMAT,
        "description": json.dumps(
            {
                "layer_names": list(net.layer_names),
                "input_shape": list(net.input_shape),
                "n_layers": len(net.weights),
                "fingerprint": net.fingerprint(),
            }
        ),
    }
    p = Path(path)
    check_parent(p)
    try:
        with replacing(p) as tmp:  # never a half-written model
            save_file(tensors, str(tmp), metadata=meta)
    except NapkitError:
        raise
    except Exception as exc:  # safetensors reports I/O failures as its own error type
        raise NapkitError(f"cannot write {p}: {getattr(exc, 'strerror', None) or exc}") from None
    return p


def _load_napkit(p: Path) -> ReluNetwork:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != MODEL_FORMAT:
                raise NapkitError(f"{p} is a safetensors file but not a napkit model")
            desc = json.loads(meta["description"])
            n = int(desc["n_layers"])
            ws = [f.get_tensor(f"layers.{k}.weight") for k in range(n)]
            bs = [f.get_tensor(f"layers.{k}.bias") for k in range(n)]
    except NapkitError:
        raise
    except Exception as exc:
        raise NapkitError(f"{p} is not a readable napkit model: {exc}") from None
    net = ReluNetwork(tuple(ws), tuple(bs), tuple(desc["layer_names"]), tuple(desc["input_shape"]), "napkit")
    if desc.get("fingerprint") not in (None, net.fingerprint()):
        raise NapkitError(f"{p}: weights do not match the fingerprint stored with them (corrupt file)")
    return net


def _load_torch_checkpoint(p: Path) -> ReluNetwork:
    import torch

    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):  # a pickled object
            raise NapkitError(
                f"{p} holds a pickled Python object, not a state dict: napkit reads only state dicts "
                "(weights only) and never unpickles a file; save one with torch.save(model.state_dict(), p)"
            ) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NapkitError(f"{p} is not a readable PyTorch state dict (weights only): {first}") from None
    if not isinstance(state, dict):
        raise NapkitError(f"{p} must hold a state dict (a mapping of tensor names to tensors)")
    # the state dict keeps the order in which the layers were registered: that is the chain
    prefixes = [k.rsplit(".", 1)[0] for k in state if k.endswith(".weight")]
    if not prefixes:
        raise NapkitError(f"{p} has no '*.weight' tensors")
    try:
        ws = [state[f"{q}.weight"].double().numpy() for q in prefixes]
    except (AttributeError, TypeError) as exc:
        raise NapkitError(f"{p}: '*.weight' entries must be tensors ({exc})") from None
    bs = [
        state[f"{q}.bias"].double().numpy() if f"{q}.bias" in state else np.zeros(w.shape[0])
        for q, w in zip(prefixes, ws, strict=True)
    ]
    if any(w.ndim != 2 for w in ws):
        raise NapkitError(f"{p}: only Linear layers (2-D weights) can be read from a checkpoint")
    return ReluNetwork(tuple(ws), tuple(bs), source="torch-checkpoint")


def load_model(path: str | Path) -> ReluNetwork:
    """Read an ONNX (``.onnx``, ``.onnx.gz``), napkit (``.safetensors``) or ``.pt`` model."""
    p = Path(path)
    if not p.exists():
        raise NapkitError(f"model file not found: {p}")
    name = p.name.lower()
    if name.endswith((".onnx", ".onnx.gz")):
        net = from_onnx(p)
    elif name.endswith((".safetensors", ".napkit")):
        net = _load_napkit(p)
    elif name.endswith((".pt", ".pth")):
        net = _load_torch_checkpoint(p)
    else:
        raise NapkitError(f"{p}: unknown model format (use .onnx, .onnx.gz, .safetensors or .pt)")
    object.__setattr__(net, "source", f"{net.source}:{p}")
    return net

"""Record activations of a torch model (or a ReluNetwork) batch by batch.

Forward hooks keep a reference to each chosen layer's tensor (the input of a ReLU, the
output of anything else); nothing is copied beyond what the forward pass computes, and
only one batch is alive at a time, so memory is bounded by the batch size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from napkit.arrays import real_numbers
from napkit.capture.layers import LayerSpec, check_layer_names, expose_functional_relus, select_layers
from napkit.errors import NapkitError
from napkit.network import ReluNetwork, to_torch
from napkit.progress import progress_bar

Model = nn.Module | ReluNetwork


@dataclass
class ActivationBatch:
    """Rows ``start:start+len(logits)`` of the data: activations per layer and logits."""

    start: int
    acts: dict[str, np.ndarray]
    logits: np.ndarray

    def signs(self, names: list[str] | None = None) -> np.ndarray:
        """On/off pattern (pre-activation > 0) of the chosen layers, concatenated."""
        names = list(self.acts) if names is None else [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in self.acts]
        if missing:
            raise NapkitError(f"this batch recorded no layer {missing[0]!r}; it has {list(self.acts)}")
        widths = [self.acts[n].shape[1] for n in names]
        out = np.empty((len(self.logits), sum(widths)), dtype=bool)
        lo = 0
        for n, w in zip(names, widths, strict=True):
            np.greater(self.acts[n], 0, out=out[:, lo : lo + w])
            lo += w
        return out


def model_fingerprint(model: Model) -> str:
    """sha256 naming a model's weights: the ReluNetwork fingerprint when it converts."""
    if isinstance(model, ReluNetwork):
        return model.fingerprint()
    if not isinstance(model, nn.Module):
        raise NapkitError(
            f"cannot fingerprint a {type(model).__name__}: give a torch module or a ReluNetwork"
        )
    try:
        from napkit.network import from_torch

        return from_torch(model).fingerprint()
    except NapkitError:
        h = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


def as_torch(
    model: Model, layers: LayerSpec = None, dtype: torch.dtype = torch.float32
) -> tuple[nn.Module, dict[str, str]]:
    """The torch module to run and a map from its module names to napkit layer names.

    A ReluNetwork runs in ``dtype`` (float32 by default, as ONNX runtimes compute it;
    float64 reproduces the exact forward pass used by the verifier).
    """
    if isinstance(model, ReluNetwork):
        module = to_torch(model, dtype=dtype)
        relus = [n for n, m in module.named_modules() if isinstance(m, nn.ReLU)]
        rename = dict(zip(relus, model.layer_names, strict=True))
        if callable(layers):
            rename = {k: v for k, v in rename.items() if layers(v, module.get_submodule(k))}
            if not rename:
                raise NapkitError("the layer filter matched no layer")
        elif layers is not None:
            layers = check_layer_names(layers)
            back = {v: k for k, v in rename.items()}
            missing = [n for n in layers if n not in back]
            if missing:
                raise NapkitError(f"no layer named {missing[0]!r}; the network has {list(back)}")
            rename = {back[n]: n for n in layers}
        return module, rename
    if not isinstance(model, nn.Module):
        raise NapkitError(f"cannot record a {type(model).__name__}: give a torch module or a ReluNetwork")
    module = expose_functional_relus(model)  # names like relu_fx0 work with `layers` too
    return module, {n: n for n in select_layers(module, layers)}


def _inputs(model: Model, x: np.ndarray) -> np.ndarray:
    """The inputs as a numeric array shaped for the model (no copy, no conversion yet)."""
    return model.reshape_inputs(x) if isinstance(model, ReluNetwork) else real_numbers(x, "inputs")


def _batch_tensor(module: nn.Module, xb: np.ndarray) -> torch.Tensor:
    """One batch converted to the module's dtype and device (memory bounded by the batch)."""
    if xb.dtype.kind == "f" and not np.isfinite(xb).all():
        raise NapkitError("inputs contain NaN or infinity")
    try:
        param = next(module.parameters())
        dtype, device = param.dtype, param.device
    except StopIteration:
        dtype, device = torch.float32, torch.device("cpu")
    t = torch.as_tensor(xb, dtype=dtype)
    return t if device.type == "cpu" else t.to(device)


def _run(module: nn.Module, xb: torch.Tensor, first: bool) -> torch.Tensor:
    """``module(xb)``; on the first batch a shape error of the model names the inputs' shape."""
    if not first:
        return module(xb)
    try:
        return module(xb)
    except RuntimeError as exc:  # e.g. "mat1 and mat2 shapes cannot be multiplied"
        raise NapkitError(
            f"the model refused inputs of shape {tuple(xb.shape[1:])} per sample: {str(exc).splitlines()[0]}"
        ) from None


def iter_activations(
    model: Model,
    x: np.ndarray,
    layers: LayerSpec = None,
    batch_size: int = 2048,
    start: int = 0,
    progress: bool | str = True,
    dtype: torch.dtype = torch.float32,
) -> Iterator[ActivationBatch]:
    """Run ``model`` over ``x[start:]`` in batches under no_grad, yielding the recorded layers.

    ``progress`` may name the work the bar shows (``"mining"``); ``True`` shows "capture".

    ``dtype`` applies to a ReluNetwork; a torch module runs in its own parameters' dtype.
    """
    for name, v in (("batch_size", batch_size), ("start", start)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise NapkitError(f"{name} must be a whole number, got {v!r}")
    if batch_size < 1:
        raise NapkitError("batch_size must be at least 1")
    if start < 0:
        raise NapkitError(f"start must be >= 0, got {start}")
    module, rename = as_torch(model, layers, dtype)
    modules = dict(module.named_modules())
    x = _inputs(model, x)
    was_training = module.training
    module.eval()
    current: dict[str, torch.Tensor] = {}
    handles = []
    for mname, lname in rename.items():
        use_input = isinstance(modules[mname], nn.ReLU)

        def hook(m, inp, out, key=lname, use_input=use_input):
            if key in current:
                raise NapkitError(
                    f"module {key!r} runs twice in one forward pass: give each layer its own module"
                )
            current[key] = inp[0] if use_input else out

        mod = modules[mname]
        if use_input and getattr(mod, "inplace", False):
            # an in-place ReLU overwrites its input before a forward hook sees it: copy it first
            def pre_hook(m, inp, key=lname):
                if key in current:
                    raise NapkitError(
                        f"module {key!r} runs twice in one forward pass: give each layer its own module"
                    )
                current[key] = inp[0].clone()

            handles.append(mod.register_forward_pre_hook(pre_hook))
            continue
        handles.append(mod.register_forward_hook(hook))
    n = len(x)
    label = progress if isinstance(progress, str) else "capture"
    try:
        with torch.no_grad(), progress_bar(n - start, label, bool(progress)) as advance:
            for lo in range(start, n, batch_size):
                current.clear()
                out = _run(module, _batch_tensor(module, x[lo : lo + batch_size]), lo == start)
                acts = {k: current[k].reshape(len(out), -1).cpu().numpy() for k in rename.values()}
                logits = out.reshape(len(out), -1).cpu().numpy()
                if not np.isfinite(logits).all():  # NaN and inf in a hidden layer reach the logits
                    bad = [k for k, a in acts.items() if not np.isfinite(a).all()]
                    where = f"layer {bad[0]!r}" if bad else "the model's output"
                    raise NapkitError(f"{where} produced NaN or infinite activations")
                advance(len(out))
                yield ActivationBatch(lo, acts, logits)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)

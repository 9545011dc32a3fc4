"""ReluNetwork: the one intermediate representation of a feed-forward ReLU network.

A network is a chain of affine layers ``z_k = W_k a_{k-1} + b_k`` with ``a_k = relu(z_k)``
between them; the last affine layer gives the logits. Weights are float64 so that the
forward pass used to re-check counterexamples is exact to double precision. Hidden
neurons are indexed by (layer, unit); ``neuron_offsets`` maps them to one flat index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from napkit.arrays import real_numbers
from napkit.errors import NapkitError


def _real(a, name: str) -> np.ndarray:
    """A contiguous float64 copy of real numbers; ragged lists, strings and complex refused."""
    return np.ascontiguousarray(real_numbers(a, name), dtype=np.float64)


@dataclass(frozen=True)
class ReluNetwork:
    """Affine layers with ReLU between them (none after the last).

    ``weights[k]`` has shape (out, in); ``layer_names[k]`` names hidden layer k (the
    pre-activation of the k-th ReLU); ``input_shape`` is the shape of one input as the
    original model expected it (the network itself works on flat vectors).
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    layer_names: tuple[str, ...] = ()
    input_shape: tuple[int, ...] = ()
    source: str = ""
    _fingerprint: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.weights, np.ndarray | str) or isinstance(self.biases, np.ndarray | str):
            raise NapkitError("weights and biases must be sequences of arrays, one per affine layer")
        try:
            ws = tuple(_real(w, f"layer {k}: weight") for k, w in enumerate(self.weights))
            bs = tuple(_real(b, f"layer {k}: bias").reshape(-1) for k, b in enumerate(self.biases))
        except TypeError:
            raise NapkitError("weights and biases must be sequences of arrays, one per layer") from None
        if not ws or len(ws) != len(bs):
            raise NapkitError("a ReluNetwork needs at least one affine layer and one bias per layer")
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            if w.ndim != 2 or b.shape[0] != w.shape[0] or 0 in w.shape:
                raise NapkitError(f"layer {k}: weight {w.shape} and bias {b.shape} do not fit")
            if k and w.shape[1] != ws[k - 1].shape[0]:
                raise NapkitError(
                    f"layer {k} takes {w.shape[1]} inputs but layer {k - 1} gives {ws[k - 1].shape[0]}"
                )
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise NapkitError(f"layer {k}: weights or biases contain NaN or infinity")
        names = tuple(self.layer_names) or tuple(f"relu{k}" for k in range(len(ws) - 1))
        if len(names) != len(ws) - 1 or len(set(names)) != len(names):
            raise NapkitError("layer_names must name each hidden layer once")
        if not all(isinstance(n, str) and n for n in names):
            raise NapkitError(f"layer names must be non-empty strings, got {list(names)}")
        shape = tuple(int(s) for s in self.input_shape) or (ws[0].shape[1],)
        if min(shape) < 1 or int(np.prod(shape)) != ws[0].shape[1]:
            raise NapkitError(f"input shape {shape} does not hold {ws[0].shape[1]} inputs")
        object.__setattr__(self, "weights", ws)
        object.__setattr__(self, "biases", bs)
        object.__setattr__(self, "layer_names", names)
        object.__setattr__(self, "input_shape", shape)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Number of ReLU units in each hidden layer."""
        return tuple(int(w.shape[0]) for w in self.weights[:-1])

    @property
    def n_neurons(self) -> int:
        return int(sum(self.layer_sizes))

    @property
    def neuron_offsets(self) -> np.ndarray:
        """Flat index of the first unit of each hidden layer (length n_layers + 1)."""
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    # ---- evaluation --------------------------------------------------------------------
    def reshape_inputs(self, x: np.ndarray | Sequence) -> np.ndarray:
        """Inputs as an (n, n_inputs) matrix of their own dtype; one input may come unbatched."""
        a = real_numbers(x, "inputs")
        if a.size == self.n_inputs and a.ndim <= len(self.input_shape):
            return a.reshape(1, -1)
        if a.ndim >= 1 and a.shape[0] and a[0].size == self.n_inputs:
            return a.reshape(a.shape[0], -1)
        if a.ndim >= 1 and a.shape[0] == 0 and (a.ndim == 1 or int(np.prod(a.shape[1:])) == self.n_inputs):
            return a.reshape(0, self.n_inputs)
        raise NapkitError(f"inputs of shape {np.shape(x)} do not fit a network with {self.n_inputs} inputs")

    def flatten_inputs(self, x: np.ndarray | Sequence) -> np.ndarray:
        """Inputs as a finite float64 (n, n_inputs) matrix."""
        a = self.reshape_inputs(x).astype(np.float64, copy=False)
        if not np.isfinite(a).all():
            raise NapkitError("inputs contain NaN or infinity")
        return a

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Exact float64 forward pass: (logits, pre-activations of every hidden layer)."""
        a = self.flatten_inputs(x)
        pre: list[np.ndarray] = []
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            z = a @ w.T + b
            pre.append(z)
            a = np.maximum(z, 0.0)
        return a @ self.weights[-1].T + self.biases[-1], pre

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)

    # ---- identity ----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 over the architecture and the float64 weights: names a model exactly."""
        if not self._fingerprint:
            h = hashlib.sha256()
            h.update(json.dumps([list(w.shape) for w in self.weights]).encode())
            for w, b in zip(self.weights, self.biases, strict=True):
                h.update(np.ascontiguousarray(w, dtype="<f8").tobytes())
                h.update(np.ascontiguousarray(b, dtype="<f8").tobytes())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]

    def describe(self) -> str:
        sizes = " -> ".join(str(s) for s in (self.n_inputs, *self.layer_sizes, self.n_outputs))
        return f"ReluNetwork({sizes}, {len(self.layer_sizes)} hidden layers)"


def check_network(net: object, what: str = "net") -> ReluNetwork:
    """``net`` itself when it is a ReluNetwork; a torch module or a path is refused by name."""
    if not isinstance(net, ReluNetwork):
        hint = " (load_model reads a file, from_torch converts a module)"
        raise NapkitError(f"{what} must be a ReluNetwork{hint}, not {type(net).__name__}")
    return net

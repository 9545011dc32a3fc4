"""Collapse a sequence of affine maps and ReLUs into ReluNetwork layers.

Importers (torch, ONNX) feed operations in order; consecutive affine maps compose, and
each ReLU closes a hidden layer. Element-wise constants (normalisation: Sub, Div, Mul,
Add) are affine maps too, so they fold into the neighbouring layer.
"""

from __future__ import annotations

import numpy as np

from napkit.errors import NapkitError
from napkit.network.relu_network import ReluNetwork


class AffineChain:
    """Accumulates ``y = W x + b`` since the last ReLU (identity until the first op)."""

    def __init__(self, n_inputs: int) -> None:
        self.width = n_inputs
        self.w: np.ndarray | None = None  # None means identity
        self.b = np.zeros(n_inputs)
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        self.names: list[str] = []

    def matmul(self, w: np.ndarray, where: str) -> None:
        """Apply ``x -> w @ x`` with ``w`` of shape (out, in)."""
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != self.width:
            raise NapkitError(f"{where}: weight of shape {w.shape} does not take {self.width} inputs")
        self.w = w if self.w is None else w @ self.w
        self.b = w @ self.b
        self.width = w.shape[0]

    def _vector(self, c: np.ndarray, where: str) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64).reshape(-1)
        if c.size == 1:
            return np.full(self.width, c[0])
        if c.size != self.width:
            raise NapkitError(f"{where}: constant of {c.size} values does not match width {self.width}")
        return c

    def add(self, c: np.ndarray, where: str) -> None:
        self.b = self.b + self._vector(c, where)

    def scale(self, c: np.ndarray, where: str) -> None:
        s = self._vector(c, where)
        if not np.isfinite(s).all():
            raise NapkitError(f"{where}: scaling by a non-finite constant")
        self.w = np.diag(s) if self.w is None else s[:, None] * self.w
        self.b = s * self.b

    def relu(self, name: str) -> None:
        if self.w is None:
            raise NapkitError(f"{name}: a ReLU with no affine layer before it is not supported")
        self.weights.append(self.w)
        self.biases.append(self.b)
        self.names.append(name)
        self.w, self.b = None, np.zeros(self.width)

    def finish(self, input_shape: tuple[int, ...], source: str) -> ReluNetwork:
        if self.w is None:
            raise NapkitError(f"{source}: the network must end with an affine layer, not a ReLU")
        return ReluNetwork(
            weights=(*self.weights, self.w),
            biases=(*self.biases, self.b),
            layer_names=tuple(self.names),
            input_shape=input_shape,
            source=source,
        )

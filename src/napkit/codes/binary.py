"""Binary activation codes: the on/off pattern of chosen layers, bit-packed.

An input's code is the concatenation of the signs of its pre-activations (on iff > 0).
Units that are constant over the data carry no information; :class:`CodeEncoder` learns
which ones to drop on the data it is fitted on, so that test codes use the train mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from napkit.codes._input import as_numpy, as_rows
from napkit.errors import NapkitError
from napkit.network import ReluNetwork


def on_off(x: Any) -> np.ndarray:
    """Boolean (samples, units) on/off matrix of pre-activations (bool input passes through).

    ``x`` is one array or a list of layer arrays, concatenated along the unit axis.
    """
    parts = list(x) if isinstance(x, list | tuple) else [x]
    if not parts:
        raise NapkitError("no layers given")
    mats = [as_rows(p, f"layer {i}") for i, p in enumerate(parts)]
    n = mats[0].shape[0]
    if any(m.shape[0] != n for m in mats):
        raise NapkitError(f"layers hold different numbers of samples: {[m.shape[0] for m in mats]}")
    bits = [m if m.dtype == bool else m > 0 for m in mats]
    return np.concatenate(bits, axis=1) if len(bits) > 1 else bits[0]


def _layer_indices(net: ReluNetwork, layers: Sequence[int | str] | None) -> list[int]:
    if layers is None:
        return list(range(len(net.layer_sizes)))
    out = []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in net.layer_names:
                known = list(net.layer_names)
                raise NapkitError(f"no hidden layer named {layer!r}; layers: {known}")
            out.append(net.layer_names.index(layer))
        elif -len(net.layer_sizes) <= int(layer) < len(net.layer_sizes):
            out.append(int(layer) % len(net.layer_sizes))
        else:
            n = len(net.layer_sizes)
            raise NapkitError(f"hidden layer {layer} out of range (network has {n})")
    if not out:
        raise NapkitError("no layers chosen")
    return out


def network_on_off(
    net: ReluNetwork, x: Any, layers: Sequence[int | str] | None = None, batch: int = 8192
) -> np.ndarray:
    """On/off matrix of the chosen hidden layers (names or indices; all by default)."""
    return on_off_and_predictions(net, x, layers, batch)[0]


def on_off_and_predictions(
    net: ReluNetwork, x: Any, layers: Sequence[int | str] | None = None, batch: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`network_on_off` and the network's predicted classes, in one batched pass."""
    chosen = _layer_indices(net, layers)
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise NapkitError(f"batch must be a whole number >= 1, got {batch!r}")
    a = as_rows(x, "inputs")
    if a.shape[0] == 0:
        raise NapkitError("no inputs given")
    bits, preds = [], []
    for start in range(0, a.shape[0], batch):
        logits, pre = net.forward(a[start : start + batch])
        bits.append(np.concatenate([pre[k] > 0 for k in chosen], axis=1))
        preds.append(logits.argmax(axis=1))
    return np.concatenate(bits, axis=0), np.concatenate(preds)


def pack_codes(bits: np.ndarray) -> np.ndarray:
    """Bit-pack a boolean (samples, bits) matrix row-wise into uint8 bytes (0/1 numbers too)."""
    b = as_numpy(bits, "bits")
    if b.ndim != 2:
        raise NapkitError(f"bits: expected a (samples, bits) matrix, got shape {b.shape}")
    if b.dtype != bool:
        if b.dtype.kind not in "iuf" or not np.isin(b, (0, 1)).all():
            raise NapkitError("bits: expected booleans or 0/1; threshold activations first (on_off)")
        b = b.astype(bool)
    return np.packbits(b, axis=1)


def unpack_codes(codes: np.ndarray, n_bits: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_codes`: a boolean (samples, n_bits) matrix."""
    c = check_codes(codes)
    lo, hi = 8 * c.shape[1] - 7, 8 * c.shape[1]  # pack_codes of n bits gives ceil(n / 8) bytes
    if n_bits is not None and not (isinstance(n_bits, int | np.integer) and lo <= n_bits <= hi):
        raise NapkitError(f"n_bits must lie in {lo}..{hi} for codes of {c.shape[1]} bytes, got {n_bits}")
    return np.unpackbits(c, axis=1, count=n_bits).astype(bool)


def check_codes(codes: Any, name: str = "codes") -> np.ndarray:
    """Validate packed codes: a 2-D uint8 array with at least one row and one byte."""
    c = as_rows(codes, name)
    if c.dtype != np.uint8:
        raise NapkitError(f"{name}: packed codes are uint8 (got {c.dtype}); use CodeEncoder")
    if c.shape[0] == 0 or c.shape[1] == 0:
        raise NapkitError(f"{name}: empty codes of shape {c.shape}")
    return np.ascontiguousarray(c)


class CodeEncoder(TransformerMixin, BaseEstimator):
    """Pre-activations → bit-packed on/off codes, without the units constant at fit time.

    ``fit`` learns ``mask_`` (units that are on for some but not all samples);
    ``transform`` returns uint8 codes of ``ceil(n_bits_ / 8)`` bytes per sample.
    """

    def __init__(self, drop_constant: bool = True) -> None:
        self.drop_constant = drop_constant

    def fit(self, X: Any, y: Any = None) -> CodeEncoder:
        bits = on_off(X)
        if bits.shape[0] == 0:
            raise NapkitError("cannot fit codes on zero samples")
        if self.drop_constant:
            mask = bits.any(axis=0) & ~bits.all(axis=0)
        else:
            mask = np.ones(bits.shape[1], dtype=bool)
        if not mask.any():
            raise NapkitError("every unit is constant over the data: the codes would carry no bit")
        self.mask_ = mask
        self.n_units_in_ = int(bits.shape[1])
        self.n_bits_ = int(mask.sum())
        return self

    def transform(self, X: Any) -> np.ndarray:
        if not hasattr(self, "mask_"):
            raise NapkitError("CodeEncoder is not fitted yet")
        bits = on_off(X)
        if bits.shape[1] != self.n_units_in_:
            raise NapkitError(f"fitted on {self.n_units_in_} units, got {bits.shape[1]}")
        return pack_codes(bits[:, self.mask_])

    def unpack(self, codes: np.ndarray) -> np.ndarray:
        """Boolean (samples, n_bits_) matrix of packed codes made by this encoder."""
        return unpack_codes(codes, self.n_bits_)

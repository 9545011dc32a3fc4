"""Record activations of any torch model (or ReluNetwork) and keep them in a zarr store."""

from napkit.capture.layers import expose_functional_relus, select_layers
from napkit.capture.recorder import ActivationBatch, as_torch, iter_activations, model_fingerprint
from napkit.capture.store import ActivationStore
from napkit.capture.to_store import data_fingerprint, record

__all__ = [
    "ActivationBatch",
    "ActivationStore",
    "as_torch",
    "data_fingerprint",
    "expose_functional_relus",
    "iter_activations",
    "model_fingerprint",
    "record",
    "select_layers",
]

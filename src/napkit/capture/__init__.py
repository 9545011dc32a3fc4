"""Record activations of any torch model (or ReluNetwork) and keep them in a zarr store.

Names load lazily: opening a store needs zarr, recording needs torch; neither loads
before it is used.
"""

from napkit._lazy import lazy_exports

_WHERE = {
    "expose_functional_relus": "layers",
    "select_layers": "layers",
    "ActivationBatch": "recorder",
    "as_torch": "recorder",
    "iter_activations": "recorder",
    "model_fingerprint": "recorder",
    "ActivationStore": "store",
    "data_fingerprint": "to_store",
    "record": "to_store",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

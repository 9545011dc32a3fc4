"""Transformer language models: capture, interventions and analysis methods."""

# --- analysis methods (snmf, sae, patching, attribution, wordclass) ---
from napkit.lm.snmf import SNMFResult, fit_snmf, steering_direction, svd_rel_error, top_inputs

__all__ = [
    "SNMFResult",
    "fit_snmf",
    "steering_direction",
    "svd_rel_error",
    "top_inputs",
]
# --- end analysis methods ---

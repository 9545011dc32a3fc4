"""Verification of NAP specifications: properties, VNN-LIB io, bounds, attack, MILP, engine.

Phases state a NAP to the verifier: one int8 array per hidden layer, +1 (active,
z >= 0), -1 (inactive, z <= 0), 0 (free).

Names load lazily: the engine (torch, HiGHS) loads when a verifier is first called, not
when a property is built or a VNN-LIB file written.
"""

from napkit._lazy import lazy_exports

_WHERE = {
    "Counterexample": "attack",
    "check_point": "attack",
    "pgd_attack": "attack",
    "BatchJob": "batch",
    "check_results_file": "batch",
    "read_results": "batch",
    "run_batch": "batch",
    "query_id": "batch",
    "Instance": "instances",
    "instance_jobs": "instances",
    "read_instances": "instances",
    "vnncomp_result": "instances",
    "write_vnncomp_csv": "instances",
    "Bounds": "bounds",
    "margin_lower": "bounds",
    "output_lower": "bounds",
    "propagate": "bounds",
    "spec_lower": "bounds",
    "VerificationResult": "verdict",
    "Verdict": "verdict",
    "VerifyOptions": "options",
    "verify_disjoint": "engine",
    "verify_property": "engine",
    "verify_robustness": "engine",
    "verify_vnnlib": "engine",
    "marabou_available": "marabou",
    "verify_disjoint_marabou": "marabou",
    "verify_property_marabou": "marabou",
    "MilpEncoding": "milp",
    "MilpResult": "milp",
    "tighten_bounds": "milp",
    "MinimalNAP": "minimize",
    "cut_share": "minimize",
    "minimize_nap": "minimize",
    "PatternSearch": "patternlp",
    "InputBox": "properties",
    "OutputSpec": "properties",
    "Property": "properties",
    "check_phases": "properties",
    "domain_box": "properties",
    "first_follower": "properties",
    "follows_phases": "properties",
    "linf_ball": "properties",
    "merge_phases": "properties",
    "robustness_spec": "properties",
    "RadiusResult": "radius",
    "RadiusStep": "radius",
    "radius_with_and_without_nap": "radius",
    "verified_radius": "radius",
    "VnnlibSpec": "vnnlib",
    "read_vnnlib": "vnnlib",
    "read_vnnlib_text": "vnnlib",
    "export_nap_query": "vnnlib_write",
    "vnnlib_text": "vnnlib_write",
    "write_vnnlib": "vnnlib_write",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

"""Verification of NAP specifications: properties, VNN-LIB io, bounds, attack, MILP, engine.

Phases state a NAP to the verifier: one int8 array per hidden layer, +1 (active,
z >= 0), -1 (inactive, z <= 0), 0 (free).
"""

from napkit.verify.attack import Counterexample, check_point, pgd_attack
from napkit.verify.batch import BatchJob, read_results, run_batch
from napkit.verify.bounds import Bounds, margin_lower, output_lower, propagate, spec_lower
from napkit.verify.engine import (
    verify_disjoint,
    verify_property,
    verify_robustness,
    verify_vnnlib,
)
from napkit.verify.marabou import marabou_available, verify_disjoint_marabou, verify_property_marabou
from napkit.verify.milp import MilpEncoding, MilpResult, tighten_bounds
from napkit.verify.minimize import MinimalNAP, cut_share, minimize_nap
from napkit.verify.options import VerifyOptions
from napkit.verify.patternlp import PatternSearch
from napkit.verify.properties import (
    InputBox,
    OutputSpec,
    Property,
    check_phases,
    domain_box,
    first_follower,
    follows_phases,
    linf_ball,
    merge_phases,
    robustness_spec,
)
from napkit.verify.radius import RadiusResult, RadiusStep, radius_with_and_without_nap, verified_radius
from napkit.verify.verdict import Verdict, VerificationResult
from napkit.verify.vnnlib import VnnlibSpec, read_vnnlib, read_vnnlib_text
from napkit.verify.vnnlib_write import vnnlib_text, write_vnnlib

__all__ = [
    "MinimalNAP",
    "PatternSearch",
    "cut_share",
    "minimize_nap",
    "BatchJob",
    "Bounds",
    "Counterexample",
    "InputBox",
    "MilpEncoding",
    "MilpResult",
    "OutputSpec",
    "Property",
    "RadiusResult",
    "RadiusStep",
    "VerificationResult",
    "Verdict",
    "VerifyOptions",
    "VnnlibSpec",
    "check_phases",
    "check_point",
    "domain_box",
    "first_follower",
    "follows_phases",
    "linf_ball",
    "marabou_available",
    "margin_lower",
    "merge_phases",
    "output_lower",
    "pgd_attack",
    "propagate",
    "radius_with_and_without_nap",
    "read_results",
    "read_vnnlib",
    "read_vnnlib_text",
    "robustness_spec",
    "run_batch",
    "spec_lower",
    "tighten_bounds",
    "verified_radius",
    "verify_disjoint",
    "verify_disjoint_marabou",
    "verify_property",
    "verify_property_marabou",
    "verify_robustness",
    "verify_vnnlib",
    "vnnlib_text",
    "write_vnnlib",
]

"""Every numeric tolerance of the verifier, in one place, with the reason for its value.

The rule behind them: a tolerance may only make the verifier answer ``unknown`` more
often, never ``verified`` or ``falsified`` wrongly.
"""

# Symbolic and optimised bounds are padded by BOUND_PAD * (1 + |value| + sum of |terms|):
# float64 round-off over a back-substitution of a few thousand terms stays far below it.
BOUND_PAD = 1e-9

# The proving MILP asks for C y <= d + PROOF_SLACK: "infeasible" then also rules out points
# that violate by less than HiGHS's feasibility tolerance (1e-7), a margin on the safe side.
PROOF_SLACK = 1e-6

# When a MILP solution fails the exact float64 re-check (it sits on a boundary), the
# MILP is asked again for points that violate, and follow the phases, by this margin.
STRICT_MARGIN = 1e-6

# LP optima (HiGHS, primal feasibility 1e-7) used as neuron bounds are widened by
# LP_BOUND_PAD * (1 + |value|) before they are trusted.
LP_BOUND_PAD = 1e-6

# The dual bound of a time-limited refinement MILP (``refine.py``) rests on LP relaxations
# solved to HiGHS's dual feasibility tolerance (1e-7), whose error grows with the columns'
# ranges (a few hundred columns of width up to ~10): it is widened by
# REFINE_BOUND_PAD * (1 + |value|), a thousand times the LP pad and still far below the
# widths it narrows (0.1 to 100).
REFINE_BOUND_PAD = 1e-3

# An ONNX model given to re-check counterexamples must agree with the network's float64
# logits at the box centre to ONNX_AGREEMENT * (1 + max |logit|): float32 inference of the
# same weights stays orders of magnitude closer; a model of other weights is off by O(1).
# It only refuses a mismatched model; it never changes a verdict.
ONNX_AGREEMENT = 1e-3

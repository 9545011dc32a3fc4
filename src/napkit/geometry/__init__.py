"""Representational geometry: RDMs, RSA comparisons, CKA and topological RSA.

RDMs (correlation, cosine, euclidean) come from one blocked matrix product; they are
compared by Spearman, Kendall's tau-a, Pearson or cosine; representations are compared
directly by linear (and debiased) CKA; the geo-topological transform of tRSA keeps local
topology only. Layer × layer similarity matrices compare two models or seeds.
"""

from napkit.geometry.cka import linear_cka
from napkit.geometry.compare import COMPARISONS, compare_rdms, kendall_tau_a
from napkit.geometry.interop import to_rsatoolbox
from napkit.geometry.rdm import (
    METHODS,
    condensed_size,
    rdm,
    rdm_blocks,
    to_condensed,
    to_square,
)
from napkit.geometry.similarity import SIMILARITIES, plot_similarity, similarity_matrix
from napkit.geometry.trsa import geodesic_rdm, geotopological, rank_scale

__all__ = [
    "COMPARISONS",
    "METHODS",
    "SIMILARITIES",
    "compare_rdms",
    "condensed_size",
    "geodesic_rdm",
    "geotopological",
    "kendall_tau_a",
    "linear_cka",
    "plot_similarity",
    "rank_scale",
    "rdm",
    "rdm_blocks",
    "similarity_matrix",
    "to_condensed",
    "to_rsatoolbox",
    "to_square",
]

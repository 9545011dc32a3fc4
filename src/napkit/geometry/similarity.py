"""Layer × layer similarity between two models (or seeds), or one model with itself.

Each layer's statistics (centred patterns for CKA, RDMs for RSA) are computed once and
reused for every pair. Meant to be called as is by the CLI (``napkit similarity``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from napkit.errors import NapkitError
from napkit.geometry.cka import _centre, _cka
from napkit.geometry.compare import COMPARISONS, compare_rdms
from napkit.geometry.rdm import rdm

SIMILARITIES = ("cka", "debiased_cka", *(f"rsa_{c}" for c in COMPARISONS))


def _prepare(acts: Mapping[str, Any], method: str, rdm_method: str, side: str) -> dict[str, Any]:
    if not isinstance(acts, Mapping) or not acts:
        raise NapkitError(f"{side}: expected a non-empty dict of layer name -> activations")
    out = {}
    for name, a in acts.items():
        where = f"{side} layer {name!r}"
        out[str(name)] = _centre(a, where) if method.endswith("cka") else rdm(a, rdm_method, True)
    return out


def similarity_matrix(
    acts_a: Mapping[str, Any],
    acts_b: Mapping[str, Any] | None = None,
    method: str = "cka",
    rdm_method: str = "correlation",
) -> tuple[np.ndarray, list[str], list[str]]:
    """(matrix[i, j] = similarity of layer i of A and layer j of B, names A, names B).

    ``method``: "cka", "debiased_cka", or "rsa_<comparison>" (spearman, kendall_tau_a,
    pearson, cosine) of ``rdm_method`` RDMs. Without ``acts_b``, A is compared with itself.
    """
    if method not in SIMILARITIES:
        raise NapkitError(f"unknown similarity {method!r}; choose one of {', '.join(SIMILARITIES)}")
    pa = _prepare(acts_a, method, rdm_method, "A")
    pb = pa if acts_b is None else _prepare(acts_b, method, rdm_method, "B")
    names_a, names_b = list(pa), list(pb)
    every = (*pa.values(), *pb.values())
    counts = {v.x.shape[0] if method.endswith("cka") else v.shape[0] for v in every}
    if len(counts) > 1:
        raise NapkitError("all layers must hold patterns of the same inputs (same count)")
    mat = np.empty((len(names_a), len(names_b)))
    for i, na in enumerate(names_a):
        for j, nb in enumerate(names_b):
            if acts_b is None and j < i:
                mat[i, j] = mat[j, i]
            elif method.endswith("cka"):
                mat[i, j] = _cka(pa[na], pb[nb], debiased=method == "debiased_cka")
            else:
                mat[i, j] = compare_rdms(pa[na], pb[nb], method.removeprefix("rsa_"))
    return mat, names_a, names_b


def plot_similarity(
    matrix: Any,
    names_a: list[str],
    names_b: list[str],
    title: str = "layer similarity",
    labels: tuple[str, str] = ("model A", "model B"),
    path: str | Path | None = None,
) -> Figure:
    """Heat map of a layer × layer similarity matrix; saved to ``path`` when given."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (len(names_a), len(names_b)):
        raise NapkitError(f"matrix {m.shape} does not fit {len(names_a)} x {len(names_b)} names")
    size = (max(4.0, 1.8 + 0.6 * len(names_b)), max(3.0, 1.5 + 0.5 * len(names_a)))
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="magma", vmin=min(0.0, float(np.nanmin(m))), vmax=1.0)
    ax.set_xticks(range(len(names_b)), names_b, rotation=45, ha="right")
    ax.set_yticks(range(len(names_a)), names_a)
    ax.set_xlabel(labels[1])
    ax.set_ylabel(labels[0])
    ax.set_title(title, fontsize=9)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            colour = "k" if m[i, j] > 0.6 else "w"
            ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(im, ax=ax)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig

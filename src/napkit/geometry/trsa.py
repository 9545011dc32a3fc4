"""The geo-topological transform of topological RSA (Lin and Kriegeskorte).

Each RDM is rank-transformed and scaled to [0, 1]; distances below the l-quantile
become 0 (same neighbourhood), those above the u-quantile 1 (unrelated), linear in
between. This keeps the local topology and discards the large-scale geometry, making
comparisons robust to noise and to monotonic distortions. The geodesic variant then
measures distances along the graph whose edges are the pairs below the u-quantile.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse.csgraph import csgraph_from_dense, shortest_path
from scipy.stats import rankdata

from napkit.errors import NapkitError
from napkit.geometry.rdm import to_condensed, to_square


def _like_input(values: np.ndarray, original: Any) -> np.ndarray:
    return to_square(values) if np.ndim(original) == 2 else values


def rank_scale(rdm: Any) -> np.ndarray:
    """Ranks of the RDM entries (ties averaged) scaled linearly onto [0, 1]."""
    v = to_condensed(rdm)
    r = rankdata(v)
    span = r.max() - r.min()
    out = (r - r.min()) / span if span > 0 else np.zeros_like(r)
    return _like_input(out, rdm)


def geotopological(rdm: Any, lower: float = 0.0, upper: float = 1.0) -> np.ndarray:
    """Geo-topological transform of an RDM (same form out as in: square or condensed).

    ``lower``/``upper`` are the l and u quantiles (0 ≤ l ≤ u ≤ 1); with l = 0, u = 1 it is
    the rank transform; with l = u it is a step at that quantile.
    """
    if not 0.0 <= lower <= upper <= 1.0:
        raise NapkitError(f"need 0 <= lower <= upper <= 1, got lower={lower}, upper={upper}")
    r = rank_scale(to_condensed(rdm))
    lo, hi = np.quantile(r, [lower, upper])
    if hi > lo:
        g = np.clip((r - lo) / (hi - lo), 0.0, 1.0)
    else:
        g = (r > lo).astype(np.float64)
    return _like_input(g, rdm)


def geodesic_rdm(rdm: Any, lower: float = 0.0, upper: float = 1.0) -> np.ndarray:
    """Geodesic geo-topological RDM: shortest paths over the pairs below the u-quantile.

    Edge weights are the geo-topological distances (< 1); path lengths are scaled by the
    longest finite one, and pairs in different components get 1.
    """
    g = to_square(geotopological(to_condensed(rdm), lower, upper))
    graph = np.where(g < 1.0, g, np.inf)
    np.fill_diagonal(graph, np.inf)
    paths = shortest_path(csgraph_from_dense(graph, null_value=np.inf), directed=False)
    finite = np.isfinite(paths)
    top = paths[finite].max()
    if top > 0:
        paths[finite] /= top
    paths[~finite] = 1.0
    np.fill_diagonal(paths, 0.0)
    return _like_input(to_condensed(paths), rdm)

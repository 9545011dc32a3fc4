"""The geo-topological transform and its geodesic variant."""

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.geometry import geodesic_rdm, geotopological, rank_scale, rdm, to_square


def test_rank_scale_hand_case():
    assert rank_scale(np.array([5.0, 1.0, 3.0])).tolist() == [1.0, 0.0, 0.5]
    assert rank_scale(np.array([2.0, 2.0, 7.0])).tolist() == [0.0, 0.0, 1.0]


def test_geotopological_hand_case():
    d = np.arange(1.0, 11.0)  # 5 patterns; rank-scaled values 0, 1/9, ..., 1
    r = np.arange(10) / 9
    lo, hi = np.quantile(r, [0.2, 0.6])
    expected = np.clip((r - lo) / (hi - lo), 0, 1)
    assert np.allclose(geotopological(d, 0.2, 0.6), expected)
    assert geotopological(d, 0.0, 1.0) == pytest.approx(r)
    step = geotopological(d, 0.5, 0.5)
    assert set(step.tolist()) == {0.0, 1.0} and step.sum() == 5
    assert geotopological(to_square(d), 0.2, 0.6).shape == (5, 5)


def test_invariant_to_monotonic_distortions():
    d = rdm(np.random.default_rng(0).normal(size=(12, 5)), "euclidean", condensed=True)
    for f in (np.sqrt, np.exp, lambda v: 3 * v + 1):
        assert np.allclose(geotopological(f(d), 0.1, 0.7), geotopological(d, 0.1, 0.7))
        assert np.allclose(geodesic_rdm(f(d), 0.1, 0.7), geodesic_rdm(d, 0.1, 0.7))


def _floyd_warshall(w):
    d = w.copy()
    for k in range(d.shape[0]):
        d = np.minimum(d, d[:, k : k + 1] + d[k : k + 1, :])
    return d


@pytest.mark.parametrize(("lower", "upper"), [(0.0, 1.0), (0.1, 0.6), (0.2, 0.9), (0.0, 0.3)])
def test_geodesic_matches_floyd_warshall(lower, upper):
    d = rdm(np.random.default_rng(4).normal(size=(9, 3)), "euclidean")
    gt = geotopological(d, lower, upper)
    w = np.where(gt < 1.0, gt, np.inf)
    np.fill_diagonal(w, 0.0)
    ref = _floyd_warshall(w)
    finite = np.isfinite(ref)
    if ref[finite].max() > 0:
        ref[finite] /= ref[finite].max()
    ref[~finite] = 1.0
    g = geodesic_rdm(d, lower, upper)
    assert np.allclose(g, ref)
    assert np.array_equal(g, g.T) and not np.diagonal(g).any()


def test_geodesic_on_points_along_a_line():
    # gaps 1, 2, 4, 8: all ten distances differ; with u = 0.5 only short pairs are edges
    x = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
    g = geodesic_rdm(rdm(x, "euclidean"), 0.0, 0.5)
    assert g[0, 4] == pytest.approx(1.0)  # the two ends are the farthest along the graph
    assert g[0, 1] == 0.0  # the closest pair sits at the l-quantile
    assert np.all(np.diff(g[0]) >= 0)


def test_disconnected_components_get_one():
    x = np.array([[0.0], [0.1], [10.0], [10.1]])
    g = geodesic_rdm(rdm(x, "euclidean"), 0.0, 0.34)
    assert g[0, 2] == 1.0 and g[1, 3] == 1.0 and g[0, 1] < 1.0


def test_bad_input():
    with pytest.raises(NapkitError, match="lower <= upper"):
        geotopological(np.arange(1.0, 4.0), 0.8, 0.2)
    with pytest.raises(NapkitError, match="condensed"):
        geotopological(np.arange(1.0, 5.0))

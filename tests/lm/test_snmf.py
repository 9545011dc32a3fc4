"""SNMF: planted sparse factors, monotone loss, error between SVD and NMF, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from napkit.errors import NapkitError
from napkit.lm.snmf import RIDGE, fit_snmf, steering_direction, svd_rel_error, top_inputs


def matched_cosines(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """|cosine| of each planted column with its best one-to-one match among the found ones."""
    t = truth / np.linalg.norm(truth, axis=0)
    f = found / np.maximum(np.linalg.norm(found, axis=0), 1e-30)
    c = np.abs(t.T @ f)
    rows, cols = linear_sum_assignment(-c)
    return c[rows, cols]


def planted(seed: int, d=100, n=300, k=8, support=4, noise=0.01):
    """Features with a few neurons each (as MLP features are) and sparse nonnegative codes."""
    rng = np.random.default_rng(seed)
    f = np.zeros((d, k))
    for j in range(k):
        rows = rng.choice(d, support, replace=False)
        f[rows, j] = rng.normal(size=support) + 2 * np.sign(rng.normal(size=support))
    g = rng.exponential(size=(n, k)) * (rng.random((n, k)) < 0.3)
    return f, g, f @ g.T + noise * rng.normal(size=(d, n))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_planted_sparse_factors_recovered_with_winner_take_all(seed):
    f, _, a = planted(seed)
    inits = ("kmeans", "svd", "random")
    res = fit_snmf(a, 8, n_iter=200, init=inits, restarts=4, seed=seed, winner_take_all_fraction=4 / 100)
    assert matched_cosines(f, res.F.numpy()).min() >= 0.95
    assert (res.G >= 0).all()


def test_restarts_keep_the_lowest_error():
    _, _, a = planted(1)
    single = [
        fit_snmf(a, 8, n_iter=50, init="random", seed=s, winner_take_all_fraction=0.04) for s in range(3)
    ]
    best = fit_snmf(a, 8, n_iter=50, init="random", seed=0, restarts=3, winner_take_all_fraction=0.04)
    assert best.rel_errors[-1] == min(r.rel_errors[-1] for r in single)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    d=st.integers(3, 12),
    n=st.integers(3, 20),
    init=st.sampled_from(["random", "svd"]),
)
def test_loss_never_rises_without_winner_take_all(seed, d, n, init):
    a = np.random.default_rng(seed).normal(size=(d, n))
    rank = 1 + seed % min(d, n)
    errs = np.array(fit_snmf(a, rank, n_iter=30, init=init, seed=seed).rel_errors)
    # the F step solves with GᵀG + RIDGE·I (G has unit columns): the squared error may rise by
    # at most about RIDGE when the fit is already exact; a wrong update rises by far more
    assert np.all(np.diff(errs**2) <= 10 * RIDGE)


@pytest.mark.parametrize("init", ["random", "svd", "kmeans"])
def test_loss_never_rises_on_a_low_rank_fit(init):
    a = np.random.default_rng(5).normal(size=(30, 80))
    errs = np.array(fit_snmf(a, 6, n_iter=100, init=init, seed=5).rel_errors)
    assert np.all(np.diff(errs) <= 1e-12)
    assert errs[-1] < errs[0]


def test_codes_nonnegative_with_unit_columns_and_the_product_kept():
    a = np.random.default_rng(3).normal(size=(20, 40))
    res = fit_snmf(a, 4, n_iter=20, init="random", seed=3)
    assert (res.G >= 0).all()
    torch.testing.assert_close(res.G.norm(dim=0), torch.ones(4, dtype=res.G.dtype))
    rel = torch.linalg.norm(torch.as_tensor(a) - res.reconstruction()) / np.linalg.norm(a)
    assert abs(float(rel) - res.rel_errors[-1]) < 1e-12


@pytest.mark.parametrize("seed", [0, 1])
def test_error_between_svd_and_sklearn_nmf_at_equal_rank(seed):
    from sklearn.decomposition import NMF

    x = np.random.default_rng(seed).random((40, 300)) ** 2
    k = 5
    snmf = fit_snmf(x, k, n_iter=300, init="svd").rel_errors[-1]
    model = NMF(k, init="nndsvda", max_iter=2000, tol=1e-8, random_state=0)
    w = model.fit_transform(x)
    nmf = np.linalg.norm(x - w @ model.components_) / np.linalg.norm(x)
    assert svd_rel_error(x, k) <= snmf <= nmf


def test_winner_take_all_keeps_the_fraction_per_column():
    _, _, a = planted(0)
    res = fit_snmf(a, 8, n_iter=5, init="kmeans", winner_take_all_fraction=0.05)
    assert ((res.F != 0).sum(dim=0) <= 5).all()


def test_top_inputs_and_steering_direction():
    f, g, a = planted(1)
    res = fit_snmf(a, 8, n_iter=100, init="kmeans", seed=1, winner_take_all_fraction=0.04)
    top = top_inputs(res, top=5)
    assert top.shape == (8, 5)
    assert torch.equal(top[0], res.G[:, 0].argsort(descending=True)[:5])
    v = steering_direction(res, 2)
    assert abs(float(v.norm()) - 1) < 1e-12 and torch.allclose(v, res.F[:, 2] / res.F[:, 2].norm())
    w_out = torch.randn(100, 16, dtype=torch.float64)
    r = steering_direction(res, 2, w_out)
    assert r.shape == (16,) and torch.allclose(r, (res.F[:, 2] @ w_out) / (res.F[:, 2] @ w_out).norm())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rank": 7}, "rank"),
        ({"rank": 0}, "rank"),
        ({"rank": 2, "init": "pca"}, "init"),
        ({"rank": 2, "winner_take_all_fraction": 0.0}, "winner-take-all"),
    ],
)
def test_bad_input_refused(kwargs, message):
    a = np.ones((6, 9))
    with pytest.raises(NapkitError, match=message):
        fit_snmf(a, **kwargs)


def test_nan_and_wrong_shape_refused():
    a = np.ones((6, 9))
    a[2, 3] = np.nan
    with pytest.raises(NapkitError, match="NaN"):
        fit_snmf(a, 2)
    with pytest.raises(NapkitError, match="2-d"):
        fit_snmf(np.ones(5), 1)


def test_svd_init_is_the_top_right_singular_vectors_and_a_given_start_is_used():
    from napkit.lm.snmf import init_codes

    a = torch.as_tensor(np.random.default_rng(4).normal(size=(12, 50)))
    for m in (a, a.T.contiguous()):
        g = init_codes(m, 3, "svd", torch.Generator())
        v = torch.linalg.svd(m, full_matrices=False)[2][:3].T.abs()
        torch.testing.assert_close(g, v + 0.2 * v.mean())
    start = torch.rand(50, 3, dtype=torch.float64)
    one = fit_snmf(a, 3, n_iter=5, init=start)
    assert one.rel_errors == fit_snmf(a, 3, n_iter=5, init=start.numpy()).rel_errors
    with pytest.raises(NapkitError, match="starting G"):
        fit_snmf(a, 3, init=-start)

"""Linear and debiased CKA: invariances, a Gram-matrix reference, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napkit.errors import NapkitError
from napkit.geometry import linear_cka


def _reference(x, y, debiased):
    """CKA straight from centred Gram matrices (biased HSIC, or Song et al.'s unbiased)."""
    n = x.shape[0]
    h = np.eye(n) - 1.0 / n
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h

    def hsic(a, b):
        if not debiased:
            return np.sum(a * b)
        a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
        one = np.ones(n)
        return (
            np.trace(a @ b)
            + (one @ a @ one) * (one @ b @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (one @ a @ b @ one)
        ) / (n * (n - 3))

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 30), st.integers(1, 40), st.integers(1, 40), st.booleans(), st.integers(0, 2**31 - 1))
def test_matches_gram_reference(n, p, q, debiased, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    y = x[:, :1] * rng.normal(size=(1, q)) + rng.normal(size=(n, q))
    try:
        ref = _reference(x, y, debiased)
    except FloatingPointError:  # pragma: no cover
        return
    if debiased and not np.isfinite(ref):
        return
    try:
        ours = linear_cka(x, y, debiased)
    except NapkitError:
        assert debiased  # only the debiased self-similarity can be <= 0
        return
    assert ours == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
def test_invariant_to_orthogonal_transforms_and_isotropic_scaling(debiased):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 20))
    y = np.tanh(x @ rng.normal(size=(20, 15))) + 0.3 * rng.normal(size=(60, 15))
    qx, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    qy, _ = np.linalg.qr(rng.normal(size=(15, 15)))
    base = linear_cka(x, y, debiased)
    assert linear_cka(3.7 * x @ qx, 0.02 * y @ qy, debiased) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x + 5.0, y, debiased) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, x @ qx, debiased) == pytest.approx(1.0, abs=1e-10)


def test_wide_representations_use_the_gram_route_consistently():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 500)), rng.normal(size=(10, 400))
    assert linear_cka(x, y) == pytest.approx(_reference(x, y, False), abs=1e-10)
    # biased CKA of unrelated wide representations is far from 0; debiased is near 0
    assert linear_cka(x, y) > 0.5
    big = rng.normal(size=(200, 2000)), rng.normal(size=(200, 2000))
    assert abs(linear_cka(*big, debiased=True)) < 0.05


def test_bad_input():
    x = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(NapkitError, match="same inputs"):
        linear_cka(x, x[:5])
    with pytest.raises(NapkitError, match="constant"):
        linear_cka(x, np.ones((6, 2)))
    with pytest.raises(NapkitError, match="at least 4"):
        linear_cka(x[:3], x[:3], debiased=True)
    with pytest.raises(NapkitError, match="NaN"):
        linear_cka(np.where(x > 1, np.inf, x), x)

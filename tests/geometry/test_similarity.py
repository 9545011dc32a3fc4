"""Layer × layer similarity matrices, the heat map and the rsatoolbox export."""

import builtins

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.geometry import SIMILARITIES, plot_similarity, rdm, similarity_matrix, to_rsatoolbox


def _acts(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, 8))
    return {"in": x, "h1": np.maximum(x @ rng.normal(size=(8, 16)), 0), "h2": rng.normal(size=(30, 4))}


@pytest.mark.parametrize("method", SIMILARITIES)
def test_self_similarity_is_symmetric_with_unit_diagonal(method):
    m, na, nb = similarity_matrix(_acts(0), method=method)
    assert na == nb == ["in", "h1", "h2"]
    assert np.allclose(np.diagonal(m), 1.0) and np.allclose(m, m.T)


def test_two_models_and_rotation_invariance():
    a = _acts(0)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
    b = {"rot": a["in"] @ q, "other": np.random.default_rng(2).normal(size=(30, 5))}
    m, na, nb = similarity_matrix(a, b, "cka")
    assert m.shape == (3, 2) and nb == ["rot", "other"]
    assert m[0, 0] == pytest.approx(1.0)
    assert m[0, 1] < 0.9


def test_plot(tmp_path):
    m, na, nb = similarity_matrix(_acts(0), _acts(1))
    fig = plot_similarity(m, na, nb, path=tmp_path / "sim.png")
    assert (tmp_path / "sim.png").stat().st_size > 1000 and fig.axes
    with pytest.raises(NapkitError, match="does not fit"):
        plot_similarity(m, na, nb[:1])


def test_bad_input():
    with pytest.raises(NapkitError, match="unknown similarity"):
        similarity_matrix(_acts(0), method="svcca")
    with pytest.raises(NapkitError, match="non-empty dict"):
        similarity_matrix({})
    with pytest.raises(NapkitError, match="same inputs"):
        similarity_matrix(_acts(0), {"x": np.ones((10, 3)) * np.arange(10)[:, None]})


def test_to_rsatoolbox(monkeypatch):
    d = rdm(np.random.default_rng(0).normal(size=(6, 4)))
    try:
        import rsatoolbox  # noqa: F401
    except ImportError:
        with pytest.raises(NapkitError, match="pip install rsatoolbox"):
            to_rsatoolbox(d)
    else:
        r = to_rsatoolbox(d, "correlation")
        assert r.n_cond == 6 and np.allclose(r.get_matrices()[0], d)
    real_import = builtins.__import__

    def no_rsatoolbox(name, *args, **kwargs):
        if name.startswith("rsatoolbox"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rsatoolbox)
    with pytest.raises(NapkitError, match="pip install rsatoolbox"):
        to_rsatoolbox(d)

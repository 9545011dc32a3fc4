"""Seeded training and the phase-chart sweep on a tiny synthetic task."""

import numpy as np
import pytest

from napkit.codes import phase_sweep, phase_table, plot_phase_chart, train_checkpoints, train_mlp
from napkit.errors import NapkitError


def _task(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)


def test_training_is_seeded_and_checkpoints_match_fresh_runs():
    x, y = _task(200, 0)
    a = train_mlp(x, y, (8,), epochs=3, seed=5)
    b = train_mlp(x, y, (8,), epochs=3, seed=5)
    assert a.fingerprint() == b.fingerprint()
    assert train_mlp(x, y, (8,), epochs=3, seed=6).fingerprint() != a.fingerprint()
    checkpoints = dict(train_checkpoints(x, y, (8,), [0, 3], seed=5))
    assert checkpoints[3].fingerprint() == a.fingerprint()


def test_sweep_rows_and_table(tmp_path):
    xtr, ytr = _task(300, 0)
    xte, yte = _task(100, 1)
    rows = phase_sweep(
        xtr, ytr, xte, yte, widths=(2, 16), depths=(1, 2), epochs=(0, 4), sample_sizes=(100, None), seed=0
    )
    assert len(rows) == 2 * 2 * 2 * 2
    assert {r["samples"] for r in rows} == {100, 300}
    assert all(0.0 <= r["redundancy_test"] <= 1.0 for r in rows)
    xs, ys, mat = phase_table(rows, "width", "depth", "redundancy_train")
    assert xs == [2, 16] and ys == [1, 2] and mat.shape == (2, 2)
    # two units can give at most 4 codes, sixteen many more: redundancy falls with width
    assert mat[0, 0] > mat[0, 1]
    fig = plot_phase_chart(rows, path=tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 1000 and fig.axes
    with pytest.raises(NapkitError, match="no field"):
        phase_table(rows, value="nope")


def test_sweep_with_categorisation_and_bad_sizes():
    xtr, ytr = _task(120, 0)
    rows = phase_sweep(xtr, ytr, xtr, ytr, widths=(12,), epochs=(2,), categorise=True)
    assert {"knn_accuracy", "logistic_accuracy", "kmeans_test_matched"} <= set(rows[0])
    with pytest.raises(NapkitError, match="sample size"):
        phase_sweep(xtr, ytr, xtr, ytr, widths=(4,), epochs=(1,), sample_sizes=(500,))


def test_batch_norm_is_folded_exactly_into_the_relu_network():
    import torch

    from napkit.codes import make_mlp, to_relu_network

    model = make_mlp(5, [7, 4], 3, seed=1, batch_norm=True)
    model.train()
    model(torch.randn(64, 5) * 3 + 1)  # move the running statistics away from 0/1
    model.eval()
    x = torch.randn(20, 5)
    net = to_relu_network(model)
    assert net.layer_sizes == (7, 4)
    expected = model.double()(x.double()).detach().numpy()
    assert np.allclose(net.logits(x.double().numpy()), expected, atol=1e-10)

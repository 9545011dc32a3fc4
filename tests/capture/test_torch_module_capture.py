"""Capture from torch modules (reused, in-place and functional ReLUs) and resumption of an
interrupted capture into a store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import gaussian_inputs, random_net, reused_relu_model
from napkit.capture import ActivationStore, iter_activations, record
from napkit.errors import NapkitError
from napkit.patterns import NAPMonitor, mine, nap_stats


def test_reused_relu_module_is_refused_with_the_module_named():
    torch.manual_seed(0)
    model = reused_relu_model()
    with pytest.raises(NapkitError, match="runs twice in one forward pass"):
        next(iter_activations(model, gaussian_inputs(), progress=False))


def test_inplace_relu_records_preactivations():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(inplace=True), nn.Linear(5, 3))
    x = gaussian_inputs()
    batch = next(iter_activations(model, x, progress=False))
    with torch.no_grad():
        pre = model[0](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(batch.acts["1"], pre, rtol=1e-6, atol=1e-6)


class _FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.l, self.o = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.o(F.relu(self.l(x)))


def test_naps_of_a_functional_relu_model_can_be_evaluated():
    torch.manual_seed(0)
    model = _FunctionalRelu()
    x = gaussian_inputs()
    y = model(torch.from_numpy(x)).argmax(1).numpy()
    naps = mine(model, x, y, 0.6, classes=sorted(set(y.tolist())), progress=False)
    stats = nap_stats(model, naps, x, y, progress=False)
    with torch.no_grad():
        on = model.l(torch.from_numpy(x)).numpy() > 0  # the functional ReLU's pre-activations
    for r, c in enumerate(naps.labels):
        follows = on[:, naps.active[r]].all(1) & ~on[:, naps.inactive[r]].any(1)
        assert stats.n_hit[r] == (follows & (y == c)).sum() and stats.n_follow[r] == follows.sum()
    report = NAPMonitor(model).set_naps(naps).evaluate(x, y)
    assert report.accuracy == 1.0  # the labels are the model's own predictions


def test_capture_interrupted_while_creating_the_store_can_be_rerun(tmp_path, monkeypatch):
    net = random_net(2)
    x = gaussian_inputs(50)
    y = net.predict(x)
    real = ActivationStore._write_committed
    calls = []

    def crash_first(self, n):
        calls.append(n)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(self, n)

    monkeypatch.setattr(ActivationStore, "_write_committed", crash_first)
    with pytest.raises(KeyboardInterrupt):
        record(net, x, y, tmp_path / "s.zarr", progress=False)
    store = record(net, x, y, tmp_path / "s.zarr", progress=False)
    assert store.complete


def test_resume_with_another_batch_size_matches_a_full_capture(tmp_path, monkeypatch):
    """Checked right: a resumed capture keeps the store's chunking, whatever batch size is given."""
    import napkit.capture.to_store as to_store

    net = random_net(4)
    x = gaussian_inputs(100)
    y = net.predict(x)
    full = record(net, x, y, tmp_path / "full.zarr", mode="bits", batch_size=16, progress=False)
    real = to_store.iter_activations

    def crashing(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 3:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(to_store, "iter_activations", crashing)
    with pytest.raises(KeyboardInterrupt):
        record(net, x, y, tmp_path / "r.zarr", mode="bits", batch_size=16, progress=False)
    monkeypatch.setattr(to_store, "iter_activations", real)
    resumed = record(net, x, y, tmp_path / "r.zarr", mode="bits", batch_size=7, progress=False)
    for name in net.layer_names:
        np.testing.assert_array_equal(resumed.signs(name), full.signs(name))
    np.testing.assert_array_equal(resumed.labels(), full.labels())

import numpy as np
import pytest
import torch

import napkit.capture.to_store as record_mod
from helpers import random_net, record_interrupted
from napkit.capture import ActivationStore, record
from napkit.errors import NapkitError


def _data(n=103, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 3, n)


def test_store_holds_what_the_network_computes(tmp_path):
    net = random_net(0)
    x, y = _data()
    store = record(net, x, y, tmp_path / "s.zarr", batch_size=16, progress=False)
    logits, pre = net.forward(x)
    assert store.n_committed == len(x) and store.complete
    for k, name in enumerate(net.layer_names):
        np.testing.assert_allclose(store.layer(name), pre[k], atol=1e-5)
    np.testing.assert_array_equal(store.labels(), y)
    np.testing.assert_array_equal(store.predictions(), logits.argmax(1))
    lazy = store.to_dask(net.layer_names[0])
    assert lazy.shape == (len(x), net.layer_sizes[0])
    np.testing.assert_allclose(lazy.compute(), pre[0], atol=1e-5)


def test_bits_mode_stores_signs(tmp_path):
    net = random_net(1)
    x, y = _data()
    store = record(net, x, y, tmp_path / "b.zarr", mode="bits", batch_size=32, progress=False)
    _, pre = net.forward(x)
    signs = np.concatenate([s for s, _, _ in store.iter_signs(batch_rows=20)])
    np.testing.assert_array_equal(signs, np.concatenate([p > 0 for p in pre], axis=1))
    reopened = ActivationStore.open(tmp_path / "b.zarr", fingerprint=net.fingerprint())
    assert reopened.mode == "bits" and reopened.n_committed == len(x)


def test_interrupted_capture_resumes_and_matches(tmp_path, monkeypatch):
    net = random_net(2)
    x, y = _data(150)
    full = record(net, x, y, tmp_path / "full.zarr", batch_size=16, progress=False)

    record_interrupted(monkeypatch, net, x, y, tmp_path / "r.zarr")
    partial = ActivationStore.open(tmp_path / "r.zarr", mode="r+")
    assert partial.n_committed == 64 and not partial.complete
    # rows past the commit may hold anything (a half-written chunk): they are not counted
    partial.group[net.layer_names[0]][64:80] = 1e6
    real = record_mod.iter_activations
    starts = []

    def spying(*args, **kwargs):
        starts.append(kwargs.get("start"))
        yield from real(*args, **kwargs)

    monkeypatch.setattr(record_mod, "iter_activations", spying)
    resumed = record(net, x, y, tmp_path / "r.zarr", batch_size=16, progress=False)
    assert starts == [64]
    for name in net.layer_names:
        np.testing.assert_array_equal(resumed.layer(name), full.layer(name))
    np.testing.assert_array_equal(resumed.predictions(), full.predictions())


def test_store_of_another_model_or_data_is_refused(tmp_path):
    x, y = _data()
    record(random_net(0), x, y, tmp_path / "s.zarr", progress=False)
    with pytest.raises(NapkitError, match="another model"):
        record(random_net(1), x, y, tmp_path / "s.zarr", progress=False)
    with pytest.raises(NapkitError, match="other data"):
        record(random_net(0), x + 1, y, tmp_path / "s.zarr", progress=False)
    with pytest.raises(NapkitError, match="another model"):
        ActivationStore.open(tmp_path / "s.zarr", fingerprint=random_net(1).fingerprint())


def test_corrupt_or_missing_store(tmp_path):
    with pytest.raises(NapkitError, match="no activation store"):
        ActivationStore.open(tmp_path / "none.zarr")
    x, y = _data()
    record(random_net(0), x, y, tmp_path / "s.zarr", progress=False)
    (tmp_path / "s.zarr" / "napkit-progress.json").write_text("{garbage")
    with pytest.raises(NapkitError, match="corrupt"):
        _ = ActivationStore.open(tmp_path / "s.zarr").n_committed


def test_create_refuses_non_empty_path_and_bad_mode(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(NapkitError, match="not an empty folder"):
        ActivationStore.create(tmp_path / "full", {"a": 2}, 10, "fp")
    with pytest.raises(NapkitError, match="mode"):
        ActivationStore.create(tmp_path / "new", {"a": 2}, 10, "fp", mode="int4")


def test_torch_module_with_its_own_dtype(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    x, y = _data(20)
    store = record(model, x, y, tmp_path / "t.zarr", progress=False)
    assert store.layer_names == ["1"] and store.layer_sizes == [6]


def test_signs_are_the_same_from_float_and_bits_stores(tmp_path):
    net = random_net(3)
    x, y = _data()
    f = record(net, x, y, tmp_path / "f.zarr", progress=False)
    b = record(net, x, y, tmp_path / "b.zarr", mode="bits", progress=False)
    for name in net.layer_names:
        np.testing.assert_array_equal(f.signs(name), b.signs(name))
        assert f.signs(name).shape == (len(x), net.layer_sizes[net.layer_names.index(name)])

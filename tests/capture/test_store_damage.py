"""A damaged ActivationStore (undecodable chunk, unreadable array metadata, missing chunk)
is refused with one NapkitError naming the part, never a zarr traceback or fill values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import random_net, record_interrupted
from napkit.capture import ActivationStore, record
from napkit.errors import NapkitError

ROWS, CHUNK = 103, 16  # 7 chunks per array, the last one partial


@pytest.fixture
def store_path(tmp_path):
    x = np.random.default_rng(0).normal(size=(ROWS, 4)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, ROWS)
    path = tmp_path / "s.zarr"
    record(random_net(0), x, y, path, batch_size=CHUNK, progress=False)
    return path


def _read_everything(path):
    store = ActivationStore.open(path)
    for name in store.layer_names:
        store.layer(name)
        store.to_dask(name).compute()
    store.labels()
    list(store.iter_signs())


def test_intact_store_reads(store_path):
    _read_everything(store_path)
    x = np.random.default_rng(0).normal(size=(ROWS, 4)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, ROWS)
    store = ActivationStore.open(store_path)
    _, pre = random_net(0).forward(x.astype(np.float64))
    np.testing.assert_array_equal(store.labels(), y)
    for name, z in zip(store.layer_names, pre, strict=True):
        np.testing.assert_allclose(store.layer(name), z, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_undecodable_chunk_is_named(store_path, damage):
    chunk = store_path / "relu0" / "c" / "1" / "0"
    if damage == "truncated":
        chunk.write_bytes(chunk.read_bytes()[:10])
    else:
        chunk.write_bytes(np.random.default_rng(2).bytes(200))
    store = ActivationStore.open(store_path)
    for read in (
        lambda: store.layer("relu0"),
        lambda: store.signs("relu0"),
        lambda: list(store.iter_signs()),
        lambda: store.to_dask("relu0").compute(),
    ):
        with pytest.raises(NapkitError, match=r"s\.zarr is damaged: chunk relu0/c/1/0 cannot be decoded"):
            read()


def test_undecodable_labels_chunk_is_named(store_path):
    (store_path / "labels" / "c" / "3").write_bytes(b"\x00" * 7)
    with pytest.raises(NapkitError, match="chunk labels/c/3 cannot be decoded"):
        ActivationStore.open(store_path).labels()


def test_truncated_array_metadata_is_refused_on_open(store_path):
    meta = store_path / "relu0" / "zarr.json"
    meta.write_text(meta.read_text()[:5])
    with pytest.raises(NapkitError, match=r"damaged: relu0/zarr\.json cannot be read"):
        ActivationStore.open(store_path)


def test_missing_array_metadata_is_refused_on_open(store_path):
    (store_path / "relu1" / "zarr.json").unlink()
    with pytest.raises(NapkitError, match=r"damaged: relu1/zarr\.json cannot be read"):
        ActivationStore.open(store_path)


def test_missing_chunk_is_refused_not_filled(store_path):
    (store_path / "relu1" / "c" / "2" / "0").unlink()
    with pytest.raises(NapkitError, match=r"damaged: 1 chunk\(s\) of relu1 are missing \(e\.g\. c/2/0\)"):
        ActivationStore.open(store_path)


def test_missing_last_partial_chunk_is_refused(store_path):
    (store_path / "predictions" / "c" / "6").unlink()
    with pytest.raises(NapkitError, match=r"1 chunk\(s\) of predictions are missing \(e\.g\. c/6\)"):
        ActivationStore.open(store_path)


def test_interrupted_capture_opens_and_resumes_but_a_lost_committed_chunk_is_refused(tmp_path, monkeypatch):
    net = random_net(2)
    x = np.random.default_rng(0).normal(size=(150, 4)).astype(np.float32)
    y = net.predict(x)
    record_interrupted(monkeypatch, net, x, y, tmp_path / "r.zarr")
    assert not (tmp_path / "r.zarr" / "relu0" / "c" / "4").exists()  # past the commit: not checked
    assert ActivationStore.open(tmp_path / "r.zarr").n_committed == 64
    resumed = record(net, x, y, tmp_path / "r.zarr", batch_size=16, progress=False)
    np.testing.assert_array_equal(resumed.predictions(), net.predict(x))
    (tmp_path / "r.zarr" / "relu0" / "c" / "3" / "0").unlink()  # committed before the crash
    with pytest.raises(NapkitError, match=r"chunk\(s\) of relu0 are missing \(e\.g\. c/3/0\)"):
        ActivationStore.open(tmp_path / "r.zarr")


def test_chunk_equal_to_the_fill_value_is_written(tmp_path):
    """zarr skips all-fill chunks by default; a store writes them so a missing file means damage."""
    store = ActivationStore.create(tmp_path / "b.zarr", {"dead": 9}, 20, "fp", mode="bits", chunk_rows=10)
    store.append({"dead": np.zeros((10, 9), np.float32)}, np.zeros(10, int), np.zeros(10, int))
    store.append({"dead": -np.ones((10, 9), np.float32)}, np.zeros(10, int), np.zeros(10, int))
    assert (tmp_path / "b.zarr" / "dead" / "c" / "1" / "0").exists()
    reopened = ActivationStore.open(tmp_path / "b.zarr")
    assert not reopened.signs("dead").any()


def test_bits_store_without_the_all_chunks_mark_skips_its_layers(tmp_path):
    """Stores written before every chunk was kept may lack all-zero bit chunks: still opened."""
    store = ActivationStore.create(tmp_path / "b.zarr", {"dead": 9}, 10, "fp", mode="bits", chunk_rows=10)
    store.append({"dead": np.zeros((10, 9), np.float32)}, np.zeros(10, int), np.zeros(10, int))
    meta = tmp_path / "b.zarr" / "zarr.json"
    root = json.loads(meta.read_text())
    del root["attributes"]["all_chunks_written"]
    meta.write_text(json.dumps(root))
    (tmp_path / "b.zarr" / "dead" / "c" / "0" / "0").unlink()
    assert not ActivationStore.open(tmp_path / "b.zarr").signs("dead").any()
    (tmp_path / "b.zarr" / "labels" / "c" / "0").unlink()
    with pytest.raises(NapkitError, match="of labels are missing"):
        ActivationStore.open(tmp_path / "b.zarr")

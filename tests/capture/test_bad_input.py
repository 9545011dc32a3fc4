"""Bad input to the capture room: one NapkitError naming the problem before anything is
written, never a numpy/torch error from inside or labels stored that mining must refuse."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from helpers import random_net
from napkit.capture import ActivationStore, data_fingerprint, iter_activations, record, select_layers
from napkit.errors import NapkitError

NET = random_net(2)  # 4-8-6-3
X = np.random.default_rng(0).normal(size=(50, 4))
Y = NET.predict(X)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (X[:0], Y[:0], "no data"),  # was a memoryview TypeError
        (X, Y.astype(str), "whole numbers"),
        (X, Y + 0.5, "whole numbers"),
        (X, Y + 9, "labels must lie in 0..2"),
        (X, Y - 9, ">= 0"),
        (X, np.stack([Y, Y], 1), "1-D labels"),  # was a broadcasting error mid-capture
        (3.0, Y[:1], "1-D labels"),
        (X, None, "1-D labels"),
    ],
)
def test_record_refuses_bad_data_and_writes_nothing(tmp_path, x, y, match):
    with pytest.raises(NapkitError, match=match):
        record(NET, x, y, tmp_path / "acts.zarr", progress=False)
    assert not (tmp_path / "acts.zarr").exists()


def test_resuming_a_store_with_other_layers_is_refused(tmp_path):
    """A complete store of both layers came back silently when asked for one."""
    record(NET, X, Y, tmp_path / "acts.zarr", progress=False)
    with pytest.raises(NapkitError, match="records layers"):
        record(NET, X, Y, tmp_path / "acts.zarr", layers=["relu0"], progress=False)


def test_record_refuses_something_that_is_not_a_model(tmp_path):
    with pytest.raises(NapkitError, match="cannot fingerprint a str"):
        record("model.onnx", X, Y, tmp_path / "acts.zarr", progress=False)


@pytest.mark.parametrize(
    ("kw", "match"), [({"start": -5}, "start must be >= 0"), ({"batch_size": 2.5}, "whole number")]
)
def test_iter_activations_refuses_bad_positions(kw, match):
    """A negative start yielded rows from the end labelled with a negative start."""
    with pytest.raises(NapkitError, match=match):
        list(iter_activations(NET, X, progress=False, **kw))


def test_a_torch_model_given_inputs_of_the_wrong_width_names_the_shape():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(NapkitError, match=r"refused inputs of shape \(5,\)"):
        list(iter_activations(model, np.ones((2, 5)), progress=False))


def test_select_layers_and_fingerprints_name_what_they_got():
    with pytest.raises(NapkitError, match="torch module"):
        select_layers("model")
    with pytest.raises(NapkitError, match="real numbers"):  # hashed the objects' pointers
        data_fingerprint(np.array([None, 1], dtype=object), np.array([0, 1]))


def test_store_reads_refuse_bad_ranges_and_modes(tmp_path):
    record(NET, X, Y, tmp_path / "acts.zarr", batch_size=16, progress=False)
    store = ActivationStore.open(tmp_path / "acts.zarr")
    for kw in ({"batch_rows": 0}, {"batch_rows": -1}, {"start": -5}):
        with pytest.raises(NapkitError):
            list(store.iter_signs(**kw))
    with pytest.raises(NapkitError, match="read-only"):
        ActivationStore.open(tmp_path / "acts.zarr", mode="w")


def test_batch_signs_of_an_unrecorded_layer_names_it():
    """A KeyError from the dict of activations before."""
    batch = next(iter_activations(NET, X, progress=False))
    with pytest.raises(NapkitError, match="no layer 'zz'"):
        batch.signs(["zz"])
    assert batch.signs("relu0").shape == (50, 8)

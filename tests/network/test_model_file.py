import datetime

import numpy as np
import pytest
import torch

from helpers import random_net
from napkit.errors import NapkitError
from napkit.network import load_model, save_model, to_torch


def test_napkit_model_round_trip(tmp_path, tiny_net):
    p = save_model(tiny_net, tmp_path / "m.safetensors")
    back = load_model(p)
    assert back.fingerprint() == tiny_net.fingerprint()
    assert back.layer_names == tiny_net.layer_names


def test_tampered_weights_are_detected(tmp_path, tiny_net):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    p = save_model(tiny_net, tmp_path / "m.safetensors")
    with safe_open(str(p), framework="numpy") as f:
        meta = f.metadata()
    tensors = load_file(str(p))
    tensors["layers.0.weight"][0, 0] += 1.0
    save_file(tensors, str(p), metadata=meta)
    with pytest.raises(NapkitError, match="fingerprint"):
        load_model(p)


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.numpy import save_file

    p = tmp_path / "other.safetensors"
    save_file({"a": np.zeros(3)}, str(p))
    with pytest.raises(NapkitError, match="not a napkit model"):
        load_model(p)


def test_torch_state_dict_is_read_without_pickle(tmp_path):
    net = random_net(5)
    p = tmp_path / "m.pt"
    torch.save(to_torch(net).state_dict(), p)
    back = load_model(p)
    x = np.random.default_rng(0).normal(size=(10, 4))
    np.testing.assert_allclose(back.logits(x), net.logits(x), atol=1e-12)


def test_pickled_object_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"x": datetime.date(2020, 1, 1)}, p)  # not a tensor: needs a full unpickler
    with pytest.raises(NapkitError, match="weights only"):
        load_model(p)

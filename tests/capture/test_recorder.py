import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import random_net
from napkit.capture import iter_activations, model_fingerprint, select_layers
from napkit.errors import NapkitError


def _collect(model, x, **kw):
    batches = list(iter_activations(model, x, progress=False, **kw))
    acts = {k: np.concatenate([b.acts[k] for b in batches]) for k in batches[0].acts}
    return acts, np.concatenate([b.logits for b in batches]), batches


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_records_exact_preactivations_of_a_relu_network(batch_size):
    net = random_net(0)
    x = np.random.default_rng(1).normal(size=(50, 4))
    acts, logits, batches = _collect(net, x, batch_size=batch_size, dtype=torch.float64)
    ref_logits, ref_pre = net.forward(x)
    assert list(acts) == list(net.layer_names)
    for k, name in enumerate(net.layer_names):
        np.testing.assert_allclose(acts[name], ref_pre[k], atol=1e-12)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-12)
    assert [b.start for b in batches] == list(range(0, 50, batch_size))


def test_float32_default_agrees_on_signs_away_from_zero():
    net = random_net(2)
    x = np.random.default_rng(3).normal(size=(200, 4))
    acts, _, _ = _collect(net, x)
    _, ref_pre = net.forward(x)
    for k, name in enumerate(net.layer_names):
        far = np.abs(ref_pre[k]) > 1e-5
        assert ((acts[name] > 0) == (ref_pre[k] > 0))[far].all()


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(3, 5), nn.Linear(5, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.c(F.relu(self.b(torch.relu(self.a(x)))))


def test_functional_relus_are_recorded():
    torch.manual_seed(0)
    model = Functional()
    x = np.random.default_rng(0).normal(size=(9, 3)).astype(np.float32)
    acts, logits, _ = _collect(model, x, batch_size=4)
    assert [a.shape for a in acts.values()] == [(9, 5), (9, 4)]
    with torch.no_grad():
        h = model.a(torch.from_numpy(x))
        np.testing.assert_allclose(list(acts.values())[0], h.numpy(), atol=1e-6)
        np.testing.assert_allclose(logits, model(torch.from_numpy(x)).numpy(), atol=1e-6)


def test_layers_by_name_and_by_filter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    x = np.zeros((2, 3), np.float32)
    acts, _, _ = _collect(model, x, layers=["2"])
    assert list(acts) == ["2"] and acts["2"].shape == (2, 4)  # output of a Linear
    assert list(select_layers(model, lambda n, m: isinstance(m, nn.Linear))) == ["0", "2", "4"]
    with pytest.raises(NapkitError, match="no layer named 'nope'"):
        _collect(model, x, layers=["nope"])


def test_layers_of_a_relu_network_by_napkit_name():
    net = random_net(0)
    acts, _, _ = _collect(net, np.zeros((3, 4)), layers=[net.layer_names[1]])
    assert list(acts) == [net.layer_names[1]]
    with pytest.raises(NapkitError, match="no layer named"):
        _collect(net, np.zeros((3, 4)), layers=["relu9"])


def test_bad_inputs():
    net = random_net(0)
    with pytest.raises(NapkitError, match="NaN"):
        _collect(net, np.full((3, 4), np.nan))
    with pytest.raises(NapkitError, match="do not fit"):
        _collect(net, np.zeros((3, 5)))


def test_nan_activations_are_reported():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.fill_(float("inf"))
    with pytest.raises(NapkitError, match="NaN or infinite activations"):
        _collect(model, np.array([[1.0, -1.0]], np.float32))


def test_fingerprint_of_torch_model_matches_its_network():
    from napkit.network import to_torch

    net = random_net(1)
    assert model_fingerprint(to_torch(net)) == net.fingerprint()

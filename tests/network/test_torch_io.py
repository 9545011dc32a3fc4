import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napkit.errors import NapkitError
from napkit.network import from_torch, to_torch


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.b = nn.Linear(5, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x.view(x.shape[0], -1))))


def test_round_trip_keeps_the_function(tiny_net):
    model = to_torch(tiny_net)
    x = np.random.default_rng(0).normal(size=(50, 2))
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), tiny_net.logits(x), atol=1e-12)
    assert from_torch(model).fingerprint() == tiny_net.fingerprint()


def test_functional_relu_and_reshape_are_traced():
    torch.manual_seed(0)
    model = FunctionalNet().double()
    net = from_torch(model)
    assert net.layer_sizes == (5,)
    x = torch.randn(20, 4, dtype=torch.float64)
    np.testing.assert_allclose(net.logits(x.numpy()), model(x).detach().numpy(), atol=1e-12)


def test_consecutive_linears_collapse():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    net = from_torch(model)
    assert net.layer_sizes == (4,)
    x = torch.randn(10, 3, dtype=torch.float64)
    np.testing.assert_allclose(net.logits(x.numpy()), model(x).detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("layer", [nn.Sigmoid(), nn.Tanh(), nn.BatchNorm1d(4)])
def test_unsupported_layer_is_named(layer):
    model = nn.Sequential(nn.Linear(3, 4), layer, nn.Linear(4, 2))
    with pytest.raises(NapkitError, match=type(layer).__name__):
        from_torch(model)


def test_unsupported_function_is_named():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return F.softmax(self.a(x), dim=1)

    with pytest.raises(NapkitError, match="softmax"):
        from_torch(Net())


def test_branching_model_is_refused():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return self.a(x) + x

    with pytest.raises(NapkitError):
        from_torch(Res())


class _Normalised(nn.Module):
    """An image MLP whose forward normalises with buffers, in one of several spellings."""

    def __init__(self, spelling: str):
        super().__init__()
        self.spelling = spelling
        self.register_buffer("mean", torch.tensor([0.2, 0.5], dtype=torch.float64).view(1, 2, 1, 1))
        self.register_buffer("std", torch.tensor([0.3, 0.25], dtype=torch.float64).view(2, 1, 1))
        self.a, self.b = nn.Linear(8, 6), nn.Linear(6, 3)

    def forward(self, x):
        if self.spelling == "buffers":
            x = (x - self.mean) / self.std
        elif self.spelling == "methods":
            x = x.sub(self.mean).div(self.std)
        elif self.spelling == "reversed":
            x = 2.0 * (1.0 - x) + 0.5
        else:
            x = torch.mul(torch.add(x, -0.5), 4.0)
        return self.b(F.relu(self.a(x.flatten(1)) * 0.5))


@pytest.mark.parametrize("spelling", ["buffers", "methods", "reversed", "functions"])
def test_arithmetic_with_constants_folds_into_the_layers(spelling):
    torch.manual_seed(1)
    model = _Normalised(spelling).double()
    net = from_torch(model, input_shape=(2, 2, 2))
    assert net.layer_sizes == (6,)
    x = torch.rand(50, 2, 2, 2, dtype=torch.float64)
    np.testing.assert_allclose(net.logits(x.numpy().reshape(50, -1)), model(x).detach().numpy(), atol=1e-12)


class _Before(nn.Module):
    """One Linear layer applied after ``pre(x)``: fx traces through the plain function."""

    def __init__(self, pre):
        super().__init__()
        self.pre, self.a = pre, nn.Linear(3, 2)

    def forward(self, x):
        return self.a(self.pre(x))


@pytest.mark.parametrize(
    ("pre", "message"),
    [
        (lambda x: 1.0 / x, "constant"),
        (lambda x: x * x, "constant"),
        (lambda x: torch.div(x, 0.5, rounding_mode="floor"), "rounding_mode"),
    ],
    ids=["inverse", "square", "floor-division"],
)
def test_arithmetic_that_is_not_affine_is_refused(pre, message):
    with pytest.raises(NapkitError, match=message):
        from_torch(_Before(pre))

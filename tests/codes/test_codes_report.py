"""codes_report on a hand network, a torch module and (when present) MNIST."""

import numpy as np
import pytest
from torch import nn

from helpers import need_shared
from napkit.codes import codes_report, train_mlp
from napkit.errors import NapkitError
from napkit.network import ReluNetwork, to_torch


def _net():
    # h = relu(x0 - x1), relu(x1 - x0), relu(x0 + x1 - 1); logits pick the larger input
    return ReluNetwork(
        weights=(np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]), np.array([[1.0, -1, 0], [-1, 1, 0]])),
        biases=(np.array([0.0, 0.0, -1.0]), np.zeros(2)),
    )


def _data(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((200, 2))
    return x, (x[:, 1] > x[:, 0]).astype(int)


def test_report_on_hand_network():
    xtr, ytr = _data(0)
    xte, yte = _data(1)
    rep = codes_report(_net(), xtr, ytr, xte, yte, seed=0)
    assert rep["bits"] == 3 and rep["units"] == 3
    assert rep["train_accuracy"] == 1.0 and rep["test_accuracy"] == 1.0
    # three units over [0,1]^2 with x0 != x1 give 4 codes (which side, and x0+x1 > 1)
    assert rep["distinct_train"] == 4
    assert rep["redundancy_train"] == pytest.approx(196 / 200)
    assert rep["knn_accuracy"] == 1.0 and rep["logistic_accuracy"] == 1.0
    assert 0.5 <= rep["kmeans_test_matched"] <= rep["kmeans_test_greedy"] <= 1.0


def test_report_accepts_torch_module_and_layer_choice():
    xtr, ytr = _data(0)
    rep = codes_report(to_torch(_net()), xtr, ytr, xtr, ytr, layers=[0], kmeans=False)
    assert rep["bits"] == 3 and "kmeans_train_matched" not in rep
    with pytest.raises(NapkitError, match="ReluNetwork"):
        codes_report("model", xtr, ytr, xtr, ytr)
    with pytest.raises(NapkitError, match="labels"):
        codes_report(_net(), xtr, ytr[:5], xtr, ytr)
    with pytest.raises(NapkitError):
        codes_report(nn.Sequential(nn.Conv2d(1, 1, 3)), xtr, ytr, xtr, ytr)


def test_report_on_mnist_small():
    d = np.load(need_shared("data", "mnist.npz"))
    xtr, ytr = d["x_train"][:3000] / 255.0, d["y_train"][:3000]
    xte, yte = d["x_test"][:500] / 255.0, d["y_test"][:500]
    # as Lei et al.: batch norm before the ReLUs (folded into the ReluNetwork), Adam 1e-2
    net = train_mlp(xtr, ytr, (40,), epochs=3, seed=0, lr=1e-2, batch_size=64, batch_norm=True)
    rep = codes_report(net, xtr, ytr, xte, yte, seed=0)
    assert rep["test_accuracy"] > 0.85
    assert rep["redundancy_test"] < 0.05
    assert rep["knn_accuracy"] > 0.75 and rep["logistic_accuracy"] > 0.75


def test_report_when_no_unit_varies():
    dead = ReluNetwork(
        weights=(np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])),
        biases=(np.array([5.0, -5.0]), np.zeros(2)),
    )
    x, y = _data(0)
    rep = codes_report(dead, x, y, x, y, kmeans=False, logistic=False)
    assert rep["varying_units"] == 0 and rep["distinct_train"] == 1
    assert rep["redundancy_train"] == pytest.approx(199 / 200)
    # every distance ties at 0, so the neighbours are the first k references (ties go to the
    # lower index) and every test input gets their majority label
    majority = np.bincount(y[:9]).argmax()
    assert rep["knn_accuracy"] == pytest.approx(float((y == majority).mean()))
    assert "knn_accuracy" not in codes_report(_net(), x, y, x, y, knn=False, kmeans=False)

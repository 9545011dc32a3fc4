"""Edge cases of mining and monitoring: δ at its boundaries, labels out of range, NAPs of
another model, empty data, AUROC with ties, a network without hidden layers."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import gaussian_inputs, random_net
from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.patterns import NAPMiner, NAPMonitor, evaluate_many, mine, nap_stats


def test_delta_with_many_decimals_does_not_overflow():
    miner = NAPMiner(1, ("h",), (2,), "fp")
    n = 5000
    signs = np.zeros((n, 2), bool)
    signs[:, 0] = True  # unit 0 always active, unit 1 never
    miner.update(signs, np.zeros(n, int), np.zeros(n, int))
    naps = miner.naps(0.9000000000000001)
    assert naps.active[0].tolist() == [True, False]
    assert naps.inactive[0].tolist() == [False, True]


def test_delta_boundary_exact_for_short_decimals():
    """Checked right: p_j = δ exactly is in A, and 1 - p_j = δ exactly is in D."""
    miner = NAPMiner(1, ("h",), (3,), "fp")
    signs = np.zeros((100, 3), bool)
    signs[:99, 0] = True  # p = 0.99
    signs[:1, 1] = True  # 1 - p = 0.99
    signs[:98, 2] = True  # p = 0.98
    miner.update(signs, np.zeros(100, int), np.zeros(100, int))
    naps = miner.naps(0.99)
    assert naps.active[0].tolist() == [True, False, False]
    assert naps.inactive[0].tolist() == [False, True, False]


def test_monitor_refuses_labels_out_of_range():
    net = random_net(1)
    x = gaussian_inputs(300)
    y = net.predict(x)
    naps = mine(net, x, y, 0.9, progress=False)
    y[0] = 7
    with pytest.raises(NapkitError, match="labels"):
        NAPMonitor(net).set_naps(naps).evaluate(x, y)


def test_evaluate_many_refuses_naps_of_another_model():
    x = gaussian_inputs(300)
    net = random_net(1)
    naps = mine(net, x, net.predict(x), 0.9, progress=False)
    other = random_net(2)
    with pytest.raises(NapkitError, match="another model"):
        evaluate_many(other, [naps], x, other.predict(x), progress=False)


def test_evaluate_many_refuses_nap_sets_over_different_layers():
    x = gaussian_inputs(300)
    net = random_net(1)
    y = net.predict(x)
    both = mine(net, x, y, 0.9, progress=False)
    first_only = mine(net, x, y, 0.9, layers=[net.layer_names[0]], progress=False)
    assert len(evaluate_many(net, [both, both], x, y, progress=False)) == 2
    with pytest.raises(NapkitError, match="same layers"):
        evaluate_many(net, [both, first_only], x, y, progress=False)


def test_monitor_on_empty_data_reports_undefined_rates():
    net = random_net(1)
    x = gaussian_inputs(300)
    y = net.predict(x)
    rep = NAPMonitor(net).set_naps(mine(net, x, y, 0.9, progress=False)).evaluate(x[:0], y[:0])
    assert rep.accuracy is None and rep.flagged_rate is None


def test_monitor_auroc_matches_sklearn_on_ties():
    """Checked right: AUROC by violation count (with ties) and max-softmax on the same inputs."""
    from sklearn.metrics import roc_auc_score

    net = random_net(5, sizes=(4, 16, 3))
    x = gaussian_inputs(400)
    y = net.predict(x)
    y[:60] = (y[:60] + 1) % 3
    mon = NAPMonitor(net, delta=0.9).fit(x, y)
    v, pred, soft = mon.scan(x)
    rep = mon.evaluate(x, y)
    wrong = pred != y
    assert rep.auroc == pytest.approx(roc_auc_score(wrong, v))
    assert rep.max_softmax_auroc == pytest.approx(roc_auc_score(wrong, -soft))


def test_network_without_hidden_layer_mines_and_monitors():
    """Checked right: a network with no ReLU gives empty NAPs that everything accepts."""
    net = ReluNetwork((np.eye(3, 4),), (np.zeros(3),))
    x = gaussian_inputs()
    y = net.predict(x)
    naps = mine(net, x, y, 0.9, progress=False)
    assert naps.n_neurons == 0
    assert np.all(nap_stats(net, naps, x, y, progress=False).recall == 1.0)
    assert NAPMonitor(net).set_naps(naps).evaluate(x, y).flagged_rate == 0.0

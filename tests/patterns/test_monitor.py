import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from helpers import random_net
from napkit.errors import NapkitError
from napkit.patterns import NAPMonitor, mine


@pytest.fixture
def setup():
    net = random_net(11, sizes=(6, 24, 16, 3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 6))
    y = net.predict(x)
    flip = rng.random(600) < 0.15
    y[flip] = (y[flip] + 1) % 3  # label noise: misclassifications to catch
    return net, x, y


def naive_violations(net, naps, x):
    _, pre = net.forward(x)
    signs = np.concatenate([p > 0 for p in pre], axis=1)
    pred = net.predict(x)
    out = []
    for s, c in zip(signs, pred, strict=True):
        r = naps.row(int(c))
        out.append(int((naps.active[r] & ~s).sum() + (naps.inactive[r] & s).sum()))
    return np.array(out)


def test_scores_and_predictions_follow_the_definition(setup):
    net, x, y = setup
    mon = NAPMonitor(net, delta=0.9, tolerance=1).fit(x[:400], y[:400])
    ref = naive_violations(net, mon.naps_, x[400:])
    np.testing.assert_array_equal(-mon.score_samples(x[400:]), ref)
    np.testing.assert_array_equal(mon.predict(x[400:]), np.where(ref <= 1, 1, -1))
    assert ((mon.decision_function(x[400:]) > 0) == (ref <= 1)).all()


def test_evaluate_matches_naive_figures(setup):
    net, x, y = setup
    mon = NAPMonitor(net, delta=0.9).fit(x[:400], y[:400])
    rep = mon.evaluate(x[400:], y[400:])
    v = naive_violations(net, mon.naps_, x[400:])
    wrong = net.predict(x[400:]) != y[400:]
    assert rep.flagged_rate == pytest.approx((v > 0).mean())
    assert rep.misclassified_caught == pytest.approx((v > 0)[wrong].mean())
    assert rep.auroc == pytest.approx(roc_auc_score(wrong, v))
    assert rep.n == 200 and rep.accuracy == pytest.approx(1 - wrong.mean())


def test_fit_equals_mining_and_set_naps(setup):
    net, x, y = setup
    mon = NAPMonitor(net, delta=0.95).fit(x, y)
    naps = mine(net, x, y, 0.95, progress=False)
    np.testing.assert_array_equal(mon.naps_.active, naps.active)
    other = NAPMonitor(net).set_naps(naps)
    np.testing.assert_array_equal(other.predict(x), mon.predict(x))
    with pytest.raises(NapkitError, match="another model"):
        NAPMonitor(random_net(12, sizes=(6, 24, 16, 3))).set_naps(naps)


def test_sklearn_conventions(setup):
    net, x, y = setup
    mon = NAPMonitor(net, delta=0.9, tolerance=2)
    assert clone(mon).get_params()["tolerance"] == 2
    with pytest.raises(NapkitError, match="not fitted"):
        mon.predict(x)
    assert set(np.unique(mon.fit(x, y).predict(x))) <= {-1, 1}


def test_held_out_classes_are_novel(setup):
    net, x, y = setup
    mon = NAPMonitor(net, delta=0.9).fit(x, y, classes=[0, 1])
    assert mon.naps_.labels.tolist() == [0, 1]
    rep = mon.evaluate(x, y, novel_classes=[2])
    pred = net.predict(x)
    # an input predicted as the held-out class has no NAP to follow: always flagged
    assert (pred == 2).any() and (mon.predict(x)[pred == 2] == -1).all()
    flagged = mon.predict(x) == -1
    assert rep.novel_flagged == pytest.approx(flagged[y == 2].mean())
    # AUROC of the violation count for "novel" by the pairwise definition (ties count half)
    from sklearn.metrics import roc_auc_score

    assert rep.novelty_auroc == pytest.approx(roc_auc_score(y == 2, -mon.score_samples(x)))

"""Report figures against naive references computed from dense boolean masks."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napkit.patterns import nap_stats
from napkit.report.figures import (
    GAMMAS,
    image_shape_of,
    model_summary,
    monitor_figures,
    nap_rows,
    sweep_deltas,
)


def _naive_violations(net, naps, x):
    logits, pre = net.forward(x)
    pred = logits.argmax(1)
    active = np.concatenate(pre, axis=1) > 0
    rows = np.searchsorted(naps.labels, pred)
    a, d = naps.active[rows], naps.inactive[rows]
    return (a & ~active).sum(1) + (d & active).sum(1), pred, logits


def test_monitor_figures_match_a_naive_count(tiny):
    mon = monitor_figures(tiny.net, tiny.naps, tiny.x_test, tiny.y_test)
    v, pred, logits = _naive_violations(tiny.net, tiny.naps, tiny.x_test)
    wrong = pred != tiny.y_test
    np.testing.assert_array_equal(mon["violations"], v)
    np.testing.assert_array_equal(mon["wrong"], wrong)
    assert mon["errors"] == wrong.sum() > 0
    assert mon["auroc"] == pytest.approx(roc_auc_score(wrong, v))
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft = soft.max(1) / soft.sum(1)
    assert mon["max_softmax_auroc"] == pytest.approx(roc_auc_score(wrong, -soft))
    assert [p["gamma"] for p in mon["operating_points"]] == [g for g in GAMMAS if g <= v.max()]
    for p in mon["operating_points"]:
        flagged = v > p["gamma"]
        assert p["flagged_rate"] == pytest.approx(flagged.mean())
        assert p["errors_caught"] == pytest.approx(flagged[wrong].mean())
        assert p["correct_flagged"] == pytest.approx(flagged[~wrong].mean())
        least_sure = np.argsort(soft, kind="stable")[: flagged.sum()]
        assert p["softmax_errors_caught"] == pytest.approx(wrong[least_sure].sum() / wrong.sum())
    fpr, tpr = mon["roc"]["nap"]
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1


def test_monitor_without_errors_has_no_auroc(tiny):
    right = tiny.net.predict(tiny.x_test) == tiny.y_test
    mon = monitor_figures(tiny.net, tiny.naps, tiny.x_test[right], tiny.y_test[right])
    assert mon["errors"] == 0 and mon["auroc"] is None and mon["roc"] == {}
    assert all(p["errors_caught"] is None for p in mon["operating_points"])


def test_nap_rows_count_the_constraints(tiny):
    stats = nap_stats(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, progress=False)
    rows = nap_rows(tiny.naps, stats)
    assert [r["label"] for r in rows] == list(range(10))
    for i, r in enumerate(rows):
        assert r["active"] == tiny.naps.active[i].sum()
        assert r["constrained"] == r["active"] + r["inactive"] == tiny.naps.sizes()[i]
        assert r["samples"] == (tiny.y_test == r["label"]).sum()


def test_model_summary(tiny):
    m = model_summary(tiny.net, 0.5, 12, "m.onnx")
    assert [layer["units"] for layer in m["layers"]] == [16, 16]
    assert m["parameters"] == 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert m["fingerprint"] == tiny.net.fingerprint()


@pytest.mark.parametrize(
    ("n", "shape", "given", "expected"),
    [
        (784, (784,), None, (28, 28)),
        (64, (64,), None, (8, 8)),
        (784, (1, 28, 28), None, (28, 28)),
        (12, (3, 4), None, (3, 4)),
        (10, (10,), None, None),
        (4, (4,), None, None),  # 2 × 2 is too small to be an image
        (12, (12,), (3, 4), (3, 4)),
    ],
)
def test_image_shape(n, shape, given, expected):
    assert image_shape_of(n, shape, given) == expected


def test_sweep_deltas_include_the_naps_own():
    assert sweep_deltas(0.97)[:3] == [1.0, 0.99, 0.97]
    assert sweep_deltas(0.99).count(0.99) == 1

"""The figures of a report, computed from a model, its NAPs and labelled data (no drawing here).

Each function returns plain dicts and arrays: the HTML page, the plots and ``--json`` all
read the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from napkit.patterns import NAPMonitor, NAPSet, NAPStats

# Hamming tolerances γ of the monitor's table of operating points (those above the largest
# violation count observed add nothing and are left out).
GAMMAS = (0, 1, 2, 3, 5, 10, 20, 50, 100)
# δ values of the sweep when mining data is given (the NAP file's own δ is added).
SWEEP_DELTAS = (1.0, 0.99, 0.95, 0.9, 0.8)


def model_summary(net, accuracy: float, n_samples: int, source: str = "") -> dict:
    """Layers, sizes, fingerprint and accuracy of a ReluNetwork."""
    return {
        "source": source,
        "inputs": int(net.n_inputs),
        "input_shape": list(net.input_shape),
        "outputs": int(net.n_outputs),
        "layers": [
            {"name": n, "units": int(s)} for n, s in zip(net.layer_names, net.layer_sizes, strict=True)
        ],
        "neurons": int(net.n_neurons),
        "parameters": int(sum(w.size + b.size for w, b in zip(net.weights, net.biases, strict=True))),
        "fingerprint": net.fingerprint(),
        "accuracy": float(accuracy),
        "samples": int(n_samples),
    }


def nap_rows(naps: NAPSet, stats: NAPStats) -> list[dict]:
    """Per class: constrained neurons (active, inactive), support, recall and precision."""
    rows = []
    for i, c in enumerate(naps.labels.tolist()):
        rows.append(
            {
                "label": c,
                "active": int(naps.active[i].sum()),
                "inactive": int(naps.inactive[i].sum()),
                "constrained": int(naps.active[i].sum() + naps.inactive[i].sum()),
                "support": int(naps.support[i]),
                "samples": int(stats.n_class[i]),
                "recall": float(stats.recall[i]),
                "precision": float(stats.precision[i]),
            }
        )
    return rows


def _auroc(positive: np.ndarray, score: np.ndarray) -> float | None:
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, score))


def _softmax_caught(wrong: np.ndarray, soft: np.ndarray, n_flagged: int) -> float | None:
    """Errors caught by flagging the ``n_flagged`` least confident inputs (max-softmax)."""
    if not wrong.any():
        return None
    order = np.argsort(soft, kind="stable")
    return float(wrong[order[:n_flagged]].sum() / wrong.sum())


def monitor_figures(net, naps: NAPSet, x: np.ndarray, y: np.ndarray, progress: bool = False) -> dict:
    """Violations of the predicted class's NAP against max-softmax, as a detector of errors.

    Returns AUROCs, ROC curves, the violation counts of correct and wrong predictions and a
    table of operating points over γ, each with what max-softmax catches when it flags as
    many inputs.
    """
    v, pred, soft = NAPMonitor(net, progress=progress).set_naps(naps).scan(x)
    wrong = pred != y
    points = []
    top = int(v.max(initial=0))
    for g in [g for g in GAMMAS if g <= max(top, 0)] or [0]:
        flagged = v > g
        points.append(
            {
                "gamma": g,
                "flagged_rate": float(flagged.mean()),
                "errors_caught": float(flagged[wrong].mean()) if wrong.any() else None,
                "correct_flagged": float(flagged[~wrong].mean()) if (~wrong).any() else None,
                "softmax_errors_caught": _softmax_caught(wrong, soft, int(flagged.sum())),
            }
        )
    curves = {}
    if wrong.any() and not wrong.all():
        for name, score in (("nap", v.astype(float)), ("softmax", -soft)):
            fpr, tpr, _ = roc_curve(wrong, score)
            curves[name] = (fpr, tpr)
    return {
        "delta": naps.delta,
        "n": int(len(y)),
        "errors": int(wrong.sum()),
        "auroc": _auroc(wrong, v.astype(float)),
        "max_softmax_auroc": _auroc(wrong, -soft),
        "operating_points": points,
        "violations": v,
        "wrong": wrong,
        "roc": curves,
    }


def sweep_rows(rows: Sequence[dict]) -> list[dict]:
    """Mean recall/precision over classes per δ (rows of :func:`napkit.patterns.delta_sweep`)."""
    out = []
    for r in rows:
        fit, ev = r.get("fit"), r.get("eval")
        out.append(
            {
                "delta": float(r["delta"]),
                "neurons": float(np.mean(r["naps"].sizes())),
                "recall_fit": None if fit is None else float(np.nanmean(fit.recall)),
                "recall": None if ev is None else float(np.nanmean(ev.recall)),
                "precision": None if ev is None else float(np.nanmean(ev.precision)),
            }
        )
    return out


def sweep_deltas(own: float) -> list[float]:
    """The sweep's δ values, the NAP file's own included, largest first."""
    return sorted({*SWEEP_DELTAS, float(own)}, reverse=True)


def image_shape_of(n_inputs: int, input_shape: Sequence[int], given: Sequence[int] | None) -> tuple | None:
    """(H, W) to draw inputs as images: given, the model's own 2-D shape, or a square side."""
    if given is not None:
        return tuple(int(s) for s in given)
    dims = [int(s) for s in input_shape if int(s) > 1]
    if len(dims) >= 2 and dims[-1] * dims[-2] == n_inputs:
        return dims[-2], dims[-1]
    side = int(round(n_inputs**0.5))
    if side >= 4 and side * side == n_inputs:
        return side, side
    return None

"""Figures of the run-time monitor: ROC curves against max-softmax, violation histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napkit.report.fmt import fmt
from napkit.report.plots import plt, save_figure


def plot_roc(mon: dict, path: str | Path) -> Path:
    """ROC curves of the NAP-violation score and of max-softmax as detectors of wrong predictions."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    names = {
        "nap": (f"NAP violations (AUROC {fmt(mon['auroc'])})", "#c8423b"),
        "softmax": (f"max-softmax (AUROC {fmt(mon['max_softmax_auroc'])})", "#3b6fb6"),
    }
    for key, (fpr, tpr) in mon["roc"].items():
        label, colour = names[key]
        ax.plot(fpr, tpr, color=colour, lw=1.8, label=label, drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance")
    if not mon["roc"]:
        ax.text(0.5, 0.5, "undefined: no wrong (or no right) predictions", ha="center", va="center")
    ax.set_xlabel("correct predictions flagged (false-positive rate)")
    ax.set_ylabel("wrong predictions flagged (true-positive rate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Detecting wrong predictions (δ = {mon['delta']:g})")
    return save_figure(fig, path)


def plot_violation_hist(mon: dict, path: str | Path) -> Path:
    """How many constraints of the predicted class's NAP fail, for correct and wrong predictions."""
    v, wrong = mon["violations"], mon["wrong"]
    top = int(v.max(initial=0))
    edges = np.arange(top + 2) - 0.5 if top < 40 else np.linspace(-0.5, top + 0.5, 41)
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    for mask, name, colour in ((~wrong, "correct", "#3b6fb6"), (wrong, "wrong", "#c8423b")):
        if mask.any():
            weights = np.full(int(mask.sum()), 1.0 / mask.sum())
            ax.hist(v[mask], bins=edges, weights=weights, alpha=0.55, color=colour,
                    label=f"{name} predictions ({int(mask.sum())})")
    ax.set_xlabel("violated constraints of the predicted class's NAP")
    ax.set_ylabel("share of the predictions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("NAP violations, correct against wrong")
    return save_figure(fig, path)

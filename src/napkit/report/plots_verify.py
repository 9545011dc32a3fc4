"""Figures of verification: the non-ambiguity matrix and counterexamples drawn as images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from napkit.report.plots import plt, save_figure

# colour of each cell of the non-ambiguity matrix, in legend order
PAIR_CLASSES = (
    ("disjoint by syntax", "#8fc98f"),
    ("proved disjoint", "#2e7d32"),
    ("ambiguous (an input follows both)", "#c8423b"),
    ("unknown", "#f0c05a"),
    ("not run (query limit)", "#d9d9d9"),
    ("same class", "#ffffff"),
)


def pair_category(verdict: str, reason: str) -> int:
    """Index into PAIR_CLASSES of one pair's outcome."""
    if verdict == "verified":
        return 0 if reason == "disjoint by syntax" else 1
    return {"falsified": 2, "unknown": 3, "skipped": 4}.get(verdict, 3)


def plot_ambiguity(labels: list[int], pairs: dict, path: str | Path) -> Path:
    """C×C heat map: which NAP pairs are disjoint (by syntax or proof), ambiguous or open."""
    n = len(labels)
    grid = np.full((n, n), len(PAIR_CLASSES) - 1)
    for (a, b), q in pairs.items():
        grid[a, b] = grid[b, a] = pair_category(q.verdict, q.reason)
    side = min(max(3.0, 0.3 * n + 1.6), 10.0)
    fig, ax = plt.subplots(figsize=(side + 2.4, side))
    cmap = ListedColormap([colour for _, colour in PAIR_CLASSES])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(PAIR_CLASSES) - 0.5, interpolation="nearest")
    ax.set_xticks(range(n), [str(c) for c in labels])
    ax.set_yticks(range(n), [str(c) for c in labels])
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("class j")
    ax.set_ylabel("class i")
    used = sorted(set(grid.ravel().tolist()) - {len(PAIR_CLASSES) - 1})
    ax.legend(handles=[Patch(color=PAIR_CLASSES[k][1], label=PAIR_CLASSES[k][0]) for k in used],
              loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    ax.set_title("Non-ambiguity of NAP pairs over the domain")
    return save_figure(fig, path)


def plot_counterexample(
    x: np.ndarray, predicted: int, label: int, neighbour: np.ndarray | None, distance: float | None,
    shape: tuple[int, int], path: str | Path,
) -> Path:
    """The counterexample, the nearest training image of ``label`` and their difference."""
    panels = [(x, f"counterexample\n(classified {predicted})", "gray_r")]  # dark ink on white
    if neighbour is not None:
        panels.append((neighbour, f"nearest image of class {label}\n(L2 distance {distance:.3f})", "gray_r"))
        panels.append((x - neighbour, "difference", "RdBu_r"))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.1 * len(panels), 2.5))
    axes = np.atleast_1d(axes)
    for ax, (img, name, cmap) in zip(axes, panels, strict=True):
        if cmap == "RdBu_r":
            lim = float(np.abs(img).max()) or 1.0
            ax.imshow(img.reshape(shape), cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        else:
            ax.imshow(img.reshape(shape), cmap=cmap, vmin=0, vmax=max(1.0, float(img.max())),
                      interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)

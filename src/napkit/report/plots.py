"""Matplotlib figures: NAPs as heat maps, recall and precision against δ."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from napkit.patterns import NAPSet  # noqa: E402

DPI = 110


def save_figure(fig, path: str | Path) -> Path:
    """Lay out, write a PNG and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def plot_naps(naps: NAPSet, path: str | Path) -> Path:
    """One row per class, one column per neuron: active (red), inactive (blue), free (white)."""
    grid = naps.active.astype(np.int8) - naps.inactive.astype(np.int8)
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, grid.shape[1] / 12)), 0.35 * len(grid) + 1.4))
    cmap = ListedColormap(["#3b6fb6", "#ffffff", "#c8423b"])
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    for off in naps.offsets[1:-1]:
        ax.axvline(off - 0.5, color="black", lw=0.8)
    ax.set_yticks(range(len(naps.labels)), [f"class {c}" for c in naps.labels])
    centres = (naps.offsets[:-1] + naps.offsets[1:]) / 2
    ax.set_xticks(
        centres,
        [f"layer {n!r}\n({s} units)" for n, s in zip(naps.layer_names, naps.layer_sizes, strict=True)],
        fontsize=10,
    )
    ax.set_xlabel("hidden neurons, layer by layer (black lines separate the layers)")
    ax.set_title(f"NAPs at δ = {naps.delta:g}: red must be active, blue inactive, white free")
    return save_figure(fig, path)


def plot_delta_sweep(rows: list[dict], path: str | Path, names: tuple[str, str] = ("train", "test")) -> Path:
    """Mean recall and precision (over classes) against δ, for fit and eval data."""
    deltas = [r["delta"] for r in rows]
    fig, ax = plt.subplots(figsize=(7.6, 4))
    for key, style, name in (("fit", "-", names[0]), ("eval", "--", names[1])):
        if rows[0].get(key) is None:
            continue
        ax.plot(
            deltas,
            [np.nanmean(r[key].recall) for r in rows],
            "o" + style,
            color="#c8423b",
            label=f"recall ({name})",
        )
        ax.plot(
            deltas,
            [np.nanmean(r[key].precision) for r in rows],
            "s" + style,
            color="#3b6fb6",
            label=f"precision ({name})",
        )
    ax.set_xlabel("δ")
    ax.set_ylabel("mean over classes")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    ax.set_title("NAP recall and precision against δ")
    return save_figure(fig, path)

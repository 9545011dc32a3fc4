"""The "activation hash phase chart": code properties over width, depth, epochs and data.

:func:`phase_sweep` trains one seeded MLP per (width, depth, sample size), measures its
codes after each listed epoch count and returns one row per setting;
:func:`plot_phase_chart` draws any measured value over two of the swept axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from napkit.codes._input import as_labels, as_rows
from napkit.codes.report import codes_report
from napkit.codes.training import train_checkpoints
from napkit.errors import NapkitError

AXES = ("width", "depth", "epochs", "samples")


def phase_sweep(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    widths: Sequence[int] = (10, 30, 60, 100),
    depths: Sequence[int] = (1,),
    epochs: Sequence[int] = (1, 5),
    sample_sizes: Sequence[int | None] = (None,),
    seed: int = 0,
    categorise: bool = False,
    batch_size: int = 128,
    lr: float = 1e-3,
    batch_norm: bool = False,
) -> list[dict[str, Any]]:
    """Rows of {width, depth, epochs, samples, accuracies, redundancies[, k-NN, LR, k-means]}.

    ``samples`` = None uses the whole train set; smaller sizes take a seeded subset.
    ``categorise`` adds k-NN, logistic-regression and k-means figures (slower).
    """
    xtr = as_rows(x_train, "x_train")
    ytr = as_labels(y_train, xtr.shape[0], "y_train")
    n_classes = int(ytr.max() + 1)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(xtr.shape[0])
    rows = []
    for size in sample_sizes:
        n = xtr.shape[0] if size is None else int(size)
        if not 1 <= n <= xtr.shape[0]:
            raise NapkitError(f"sample size {size} outside 1 .. {xtr.shape[0]}")
        sub = np.sort(perm[:n])
        for depth in depths:
            for width in widths:
                hidden = [int(width)] * int(depth)
                for ep, net in train_checkpoints(
                    xtr[sub], ytr[sub], hidden, epochs, seed, batch_size, lr, n_classes, batch_norm
                ):
                    rep = codes_report(
                        net,
                        xtr[sub],
                        ytr[sub],
                        x_test,
                        y_test,
                        seed=seed,
                        kmeans=categorise,
                        logistic=categorise,
                        knn=categorise,
                    )
                    rows.append({"width": int(width), "depth": int(depth), "epochs": ep, "samples": n, **rep})
    return rows


def phase_table(
    rows: Sequence[dict[str, Any]],
    x: str = "width",
    y: str = "epochs",
    value: str = "redundancy_test",
) -> tuple[list[Any], list[Any], np.ndarray]:
    """(x values, y values, matrix[y, x]) of ``value``, averaged over the other axes."""
    if not rows:
        raise NapkitError("no rows to tabulate")
    for key in (x, y, value):
        if key not in rows[0]:
            raise NapkitError(f"rows have no field {key!r}; fields: {sorted(rows[0])}")
    xs = sorted({r[x] for r in rows})
    ys = sorted({r[y] for r in rows})
    total = np.zeros((len(ys), len(xs)))
    count = np.zeros((len(ys), len(xs)))
    for r in rows:
        i, j = ys.index(r[y]), xs.index(r[x])
        total[i, j] += float(r[value])
        count[i, j] += 1
    with np.errstate(invalid="ignore"):
        return xs, ys, total / count


def plot_phase_chart(
    rows: Sequence[dict[str, Any]],
    x: str = "width",
    y: str = "epochs",
    value: str = "redundancy_test",
    path: str | Path | None = None,
) -> Figure:
    """Heat map of ``value`` over two swept axes; saved to ``path`` when given."""
    xs, ys, mat = phase_table(rows, x, y, value)
    size = (max(4.5, 1.6 + 0.6 * len(xs)), max(3.0, 1.4 + 0.45 * len(ys)))
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(mat, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"activation hash phase chart: {value}", fontsize=9)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if np.isfinite(mat[i, j]):
                colour = "k" if im.norm(mat[i, j]) > 0.6 else "w"
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(im, ax=ax)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig

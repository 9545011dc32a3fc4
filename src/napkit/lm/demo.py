"""``napkit lm demo``: every LM method on the tiny model, figures and plots written under a folder.

The demo is a list of steps (:data:`STEPS`); each takes the loaded model and the output
folder and returns figures keyed as in the demo's JSON contract. New methods add a step
function to the list; nothing else changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from napkit.cli_output import json_text
from napkit.errors import NapkitError
from napkit.lm.evaluate import task_accuracies
from napkit.lm.experiments import probe_binding, steer_regime
from napkit.lm.models import load, load_tiny
from napkit.staging import check_parent, save_png


def _accuracy_step(lm, out: Path) -> dict:
    acc = task_accuracies(lm.model, lm.tokenizer)
    return {f"tiny_acc_{k}": v for k, v in acc.items()}


def _probe_step(lm, out: Path) -> dict:
    res = probe_binding(lm)
    _heatmap(
        out / "probe_accuracy.png",
        [
            np.array(res[k])
            for k in ("probe_accuracy", "probe_control_accuracy", "probe_random_init_accuracy")
        ],
        ["trained", "control task", "random init"],
        res["probe_sites"],
        res["probe_positions"],
        vmin=res["probe_chance"],
    )
    return {k: v for k, v in res.items() if not isinstance(v, list)}


def _steer_step(lm, out: Path) -> dict:
    return steer_regime(lm, extra_kls=STEER_EXTRA_KLS)


# the other KL targets: the steering ratio is reported at each (the key at the default)
STEER_EXTRA_KLS = (0.25, 3.0)

# Each step: (name, function(lm, out) -> figures). Methods built on this pillar append theirs
# here (snmf, sae, patch, attribute, wordclass).
STEPS: list[tuple[str, Callable]] = [
    ("accuracy", _accuracy_step),
    ("probe", _probe_step),
    ("steer", _steer_step),
]

from napkit.lm.method_demo import STEPS as _METHOD_STEPS  # noqa: E402

STEPS += _METHOD_STEPS  # snmf, sae, patch, attribute, wordclass


def _heatmap(
    path: Path, mats: list[np.ndarray], titles: list[str], rows: list[str], cols: list[int], vmin: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(mats), figsize=(4.5 * len(mats), 3), squeeze=False)
    for k, (ax, m, title) in enumerate(zip(axes[0], mats, titles, strict=True)):
        im = ax.imshow(m, vmin=vmin, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(f"bound-colour probe, {title}", fontsize=9)
        ax.set_xlabel("position")
        ax.set_xticks(range(len(cols)), [str(c) for c in cols])
        ax.set_yticks(range(len(rows)), [r.replace(".hook_resid_post", "") if k == 0 else "" for r in rows])
    fig.colorbar(im, ax=axes[0].tolist(), label="CV accuracy")
    save_png(fig, path, dpi=100)


def run_demo(out: str | Path, model=None, steps: list[str] | None = None, log=None) -> dict:
    """Run the demo steps on the tiny model (or ``model``), write ``figures.json`` under ``out``."""
    t0 = time.perf_counter()
    out = Path(out)
    check_parent(out)
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise NapkitError(f"cannot create {out}: {exc.strerror or exc}") from None
    lm = load_tiny() if model is None else load(model)
    known = [name for name, _ in STEPS]
    if steps is not None and set(steps) - set(known):
        raise NapkitError(f"unknown demo steps {sorted(set(steps) - set(known))}; steps are {known}")
    figures: dict = {}
    for name, step in STEPS:
        if steps is None or name in steps:
            if log is not None:
                log(name)
            figures.update(step(lm, out))
    figures["seconds"] = time.perf_counter() - t0
    tmp = out / "figures.json.tmp"
    tmp.write_text(json_text(figures, indent=2) + "\n")
    os.replace(tmp, out / "figures.json")
    return figures

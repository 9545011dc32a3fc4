"""Demo steps of the analysis methods (appended to ``napkit.lm.demo.STEPS``).

Each step takes the loaded model and the output folder, measures the method's figures
through ``method_figures`` and returns the scalar ones (the keys ``napkit lm demo --json``
promises); details go to ``<out>/methods.json`` and plots to PNG files next to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napkit.cli_output import json_text
from napkit.lm import method_figures as mf
from napkit.staging import replacing, save_png


def _scalars(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _keep_details(out: Path, name: str, figures: dict) -> None:
    path = out / "methods.json"
    details = json.loads(path.read_text()) if path.exists() else {}
    details[name] = figures
    with replacing(path) as tmp:
        tmp.write_text(json_text(details, indent=2) + "\n")


def _line_plot(path: Path, series: dict[str, list[float]], xlabel: str, ylabel: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, ys in series.items():
        ax.plot(np.arange(len(ys)), ys, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def snmf_step(lm, out: Path) -> dict:
    fig = mf.snmf_figures(lm.model, lm.tokenizer)
    _keep_details(out, "snmf", fig)
    return _scalars(fig)


def sae_step(lm, out: Path) -> dict:
    fig = mf.sae_figures(lm.model, lm.tokenizer)
    _keep_details(out, "sae", fig)
    return _scalars(fig)


def patch_step(lm, out: Path) -> dict:
    fig = mf.patch_figures(lm.model, lm.tokenizer)
    _keep_details(out, "patch", fig)
    _line_plot(
        out / "patch_facts.png",
        {
            "subject position": fig["patch_recall_subject_by_layer"],
            "last position": fig["patch_recall_last_by_layer"],
        },
        "layer (residual stream before the block)",
        "logit-difference recovery",
        "facts: clean subject patched into a swapped one",
    )
    return _scalars(fig)


def attribute_step(lm, out: Path) -> dict:
    from napkit.lm.attribution import attention_patterns, plot_attention
    from napkit.lm.corpus import GRAMMAR

    fig = mf.dla_figures(lm.model, lm.tokenizer)
    _keep_details(out, "attribute", fig)
    prompt = GRAMMAR.sample("choice", 1, seed=7)[0].prompt
    ids = lm.tokenizer([prompt], return_tensors="pt")["input_ids"]
    pats = attention_patterns(lm.model, ids)
    tokens = lm.tokenizer.convert_ids_to_tokens(ids[0].tolist())
    last = pats.shape[0] - 1
    plot_attention(pats[last, 0], tokens, out / "attention_choice.png", f"multiple choice, layer {last}")
    return _scalars(fig)


def wordclass_step(lm, out: Path) -> dict:
    fig = mf.wordclass_figures(lm.model, lm.tokenizer)
    _keep_details(out, "wordclass", fig)
    _line_plot(
        out / "wordclass_purity.png",
        {"trained": fig["wordclass_purity_by_layer"]},
        "layer (0 = embeddings)",
        "k-means purity vs word class",
        f"random init best {fig['wordclass_purity_random']:.2f}, majority {fig['wordclass_majority']:.2f}",
    )
    return _scalars(fig)


STEPS = [
    ("snmf", snmf_step),
    ("sae", sae_step),
    ("patch", patch_step),
    ("attribute", attribute_step),
    ("wordclass", wordclass_step),
]

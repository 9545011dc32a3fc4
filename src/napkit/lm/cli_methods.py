"""``napkit lm snmf | sae | patch | attribute | wordclass``: thin commands over the library.

``register(app)`` adds them to the ``napkit lm`` sub-app. Each loads a local model folder
(``--model``; default: the tiny model shipped with napkit), calls one library function,
prints a short summary, and with ``--json`` one JSON object as its last line. Bad input
raises NapkitError, which ``napkit.cli.main`` turns into one stderr line and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from napkit.cli_output import emit_json
from napkit.errors import NapkitError
from napkit.staging import check_out_folder

ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Local HF folder or 'smollm2'; default: the shipped tiny model.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed (non-negative).")]


def _load(model: str | None):
    from napkit.lm.models import load, load_smollm2, load_tiny

    if model is None:
        lm = load_tiny()
    else:
        lm = load_smollm2() if model.lower() == "smollm2" else load(model)
    if lm.kind != "hf":
        raise NapkitError("these commands need a transformers causal LM folder")
    return lm


def _emit(payload: dict, as_json: bool, lines: list[str]) -> None:
    if as_json:
        emit_json(payload, True)
    else:
        print("\n".join(lines))


def _sentences(n: int, seed: int):
    from napkit.lm.corpus import GRAMMAR

    if n < 1:
        raise NapkitError(f"--sentences must be at least 1, got {n}")
    return GRAMMAR.corpus(n, seed=seed)


def _at_least(low: int, *options: tuple[str, int]) -> None:
    """Refuse a count option below ``low``, naming the option as typed."""
    for name, v in options:
        if v < low:
            raise NapkitError(f"{name} must be at least {low}, got {v}")


def _check_new_folder(out: Path, force: bool, option: str) -> None:
    """Checked before the work, so nothing is trained for an output that cannot be written."""
    check_out_folder(out, force, option)


ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output.")]


def snmf(
    model: ModelOpt = None,
    layer: Annotated[int, typer.Option(help="MLP layer whose neurons are factorised.")] = 1,
    rank: Annotated[int, typer.Option(help="Number of features.")] = 24,
    iters: Annotated[int, typer.Option(help="Iterations.")] = 200,
    wta: Annotated[
        float | None, typer.Option(help="Winner-take-all: keep this fraction of |F| per feature.")
    ] = None,
    sentences: Annotated[int, typer.Option(help="Grammar sentences whose tokens form the columns.")] = 300,
    top: Annotated[int, typer.Option(help="Top tokens listed per feature.")] = 5,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Semi-NMF of one layer's MLP activations; top tokens per feature."""
    from napkit.lm.method_figures import token_rows
    from napkit.lm.patching import Site
    from napkit.lm.snmf import fit_snmf, svd_rel_error, top_inputs

    _at_least(1, ("--iters", iters), ("--top", top))
    lm = _load(model)
    sents = _sentences(sentences, seed)
    a = token_rows(lm.model, lm.tokenizer, sents, Site("neuron", layer, 0)).double().T
    res = fit_snmf(a, rank, n_iter=iters, winner_take_all_fraction=wta, seed=seed)
    enc = lm.tokenizer([s.text for s in sents], padding=True)
    tokens = np.asarray(
        [
            t
            for ids, m in zip(enc["input_ids"], enc["attention_mask"], strict=True)
            for t, keep in zip(ids, m, strict=True)
            if keep
        ]
    )
    words = [lm.tokenizer.convert_ids_to_tokens(tokens[row].tolist()) for row in top_inputs(res, top).numpy()]
    payload = {
        "rel_error": res.rel_errors[-1],
        "svd_rel_error": svd_rel_error(a, rank),
        "rank": rank,
        "layer": layer,
        "tokens": a.shape[1],
        "features": words,
    }
    lines = [
        f"SNMF of layer {layer}: {a.shape[0]} neurons x {a.shape[1]} tokens, rank {rank}",
        f"relative error {res.rel_errors[-1]:.4f} (SVD {payload['svd_rel_error']:.4f})",
    ]
    lines += [f"  feature {j}: {' '.join(w)}" for j, w in enumerate(words)]
    _emit(payload, as_json, lines)


def sae(
    out: Annotated[Path, typer.Option("--out", help="Folder for the SAE (SAELens layout).")],
    model: ModelOpt = None,
    layer: Annotated[int, typer.Option(help="Block whose output the SAE reads.")] = 2,
    k: Annotated[int, typer.Option(help="Active features per token (TopK).")] = 32,
    expansion: Annotated[int, typer.Option(help="d_sae / d_model.")] = 4,
    steps: Annotated[int, typer.Option(help="Training steps.")] = 2000,
    sentences: int = 3000,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a TopK SAE on one block's output; FVU, L0, dead fraction, CE recovered; save it."""
    from napkit.lm._parts import model_parts
    from napkit.lm.method_figures import token_rows
    from napkit.lm.patching import Site
    from napkit.lm.sae import ce_recovered, sae_metrics, train_sae
    from napkit.lm.sae_files import check_sae_target, save_sae

    _at_least(1, ("--steps", steps), ("--expansion", expansion))
    _check_new_folder(out, force, "--out")
    check_sae_target(out)  # even with --force, only an SAE folder is replaced
    lm = _load(model)
    if not 0 <= layer < model_parts(lm.model).n_layers:
        raise NapkitError(f"--layer must lie in [0, {model_parts(lm.model).n_layers})")
    name = f"transformer.h.{layer}" if hasattr(lm.model, "transformer") else f"model.layers.{layer}"
    rows = token_rows(lm.model, lm.tokenizer, _sentences(sentences, seed), Site("resid_post", layer))
    held_out = _sentences(max(1, sentences // 10), seed + 1)
    test = token_rows(lm.model, lm.tokenizer, held_out, Site("resid_post", layer))
    d_sae = expansion * rows.shape[1]
    model_sae, _ = train_sae(
        rows,
        d_sae,
        kind="topk",
        k=k,
        steps=steps,
        seed=seed,
        hook_name=name,
        model_fingerprint=lm.fingerprint,
    )
    m = sae_metrics(model_sae, test)
    enc = lm.tokenizer([s.text for s in held_out], return_tensors="pt", padding=True)
    ce = ce_recovered(lm.model, model_sae, name, enc["input_ids"], enc["attention_mask"])
    save_sae(model_sae, out)
    payload = {
        "fvu": m.fvu,
        "l0": m.l0,
        "dead_frac": m.dead_frac,
        **ce,
        "d_sae": d_sae,
        "k": k,
        "out": str(out),
    }
    lines = [
        f"SAE on {name}: d_sae {d_sae}, k {k}",
        f"FVU {m.fvu:.4f}, L0 {m.l0:.1f}, dead {m.dead_frac:.3f}",
        f"CE recovered {ce['ce_recovered']:.3f} (clean {ce['ce_clean']:.3f}, SAE {ce['ce_sae']:.3f}, "
        f"zero {ce['ce_zero']:.3f})",
        f"wrote {out}",
    ]
    _emit(payload, as_json, lines)


def patch(
    clean: Annotated[list[str], typer.Option("--clean", help="Clean prompt (repeatable).")],
    corrupted: Annotated[list[str], typer.Option("--corrupted", help="Corrupted prompt, same length.")],
    answer: Annotated[list[str], typer.Option("--answer", help="Correct next word per prompt.")],
    wrong: Annotated[list[str], typer.Option("--wrong", help="Wrong next word per prompt.")],
    component: Annotated[
        str, typer.Option(help="resid_pre, resid_post, attn, head, mlp or neuron.")
    ] = "resid_pre",
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Patch clean activations into corrupted runs; normalised logit-difference recovery per site."""
    import torch

    from napkit.lm.patching import answer_token, encode_pair, patch_sweep

    lm = _load(model)
    if not (len(clean) == len(corrupted) == len(answer) == len(wrong)):
        raise NapkitError("give as many --clean, --corrupted, --answer and --wrong as each other")
    c_ids, x_ids, mask = encode_pair(lm.tokenizer, clean, corrupted)
    good = torch.tensor([answer_token(lm.tokenizer, w) for w in answer])
    bad = torch.tensor([answer_token(lm.tokenizer, w) for w in wrong])
    res = patch_sweep(lm.model, c_ids, x_ids, good, bad, component, mask)
    payload = {
        "component": component,
        "scores": res.scores.tolist(),
        "ld_clean": res.ld_clean,
        "ld_corrupted": res.ld_corrupted,
        "shape": list(res.scores.shape),
    }
    rows = np.atleast_2d(res.scores) if res.scores.ndim == 1 else res.scores
    lines = [f"{component}: logit difference clean {res.ld_clean:.3f}, corrupted {res.ld_corrupted:.3f}"]
    lines += [f"  layer {i}: " + " ".join(f"{v:6.3f}" for v in r) for i, r in enumerate(rows)]
    _emit(payload, as_json, lines)


def attribute(
    prompt: Annotated[list[str], typer.Option("--prompt", help="Prompt (repeatable).")],
    answer: Annotated[list[str], typer.Option("--answer", help="Correct next word per prompt.")],
    wrong: Annotated[list[str], typer.Option("--wrong", help="Wrong next word per prompt.")],
    model: ModelOpt = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for attention PNGs of the first prompt.")] = None,
    top: Annotated[int, typer.Option(help="Output nodes listed.")] = 3,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Direct logit attribution per head and MLP; attention plots."""
    import torch

    from napkit.lm.attribution import (
        attention_patterns,
        direct_logit_attribution,
        output_nodes,
        plot_attention,
    )
    from napkit.lm.patching import answer_token
    from napkit.lm.tokenizer import refuse_unknown_words

    _at_least(1, ("--top", top))
    if plots is not None:
        _check_new_folder(plots, force, "--plots")
    lm = _load(model)
    if not (len(prompt) == len(answer) == len(wrong)):
        raise NapkitError("give as many --prompt, --answer and --wrong as each other")
    enc = lm.tokenizer(list(prompt), return_tensors="pt", padding=True)
    refuse_unknown_words(lm.tokenizer, prompt, enc["input_ids"], enc["attention_mask"])
    good = torch.tensor([answer_token(lm.tokenizer, w) for w in answer])
    bad = torch.tensor([answer_token(lm.tokenizer, w) for w in wrong])
    dla = direct_logit_attribution(lm.model, enc["input_ids"], good, bad, enc["attention_mask"])
    nodes = [
        f"{s.component}{s.layer}" + ("" if s.index is None else f".{s.index}") for s in output_nodes(dla, top)
    ]
    written = []
    if plots is not None:
        plots.mkdir(exist_ok=True)
        n = int(enc["attention_mask"][0].sum())
        toks = lm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0, :n].tolist())
        pats = attention_patterns(lm.model, enc["input_ids"][:1, :n])
        for layer in range(pats.shape[0]):
            path = plot_attention(
                pats[layer, 0], toks, plots / f"attention_layer{layer}.png", f"layer {layer}"
            )
            written.append(str(path))
    payload = {
        "logit_diff": dla.logit_diff.mean(),
        "sum_error": dla.sum_error(),
        "heads": dla.heads.mean(0),
        "mlps": dla.mlps.mean(0),
        "embed": dla.embed.mean(),
        "output_nodes": nodes,
        "plots": written,
    }
    lines = [
        f"logit difference {dla.logit_diff.mean():.4f}; DLA terms sum to it within {dla.sum_error():.1e}"
    ]
    lines += [
        f"  layer {i}: heads " + " ".join(f"{v:7.3f}" for v in h) + f" | mlp {m:7.3f}"
        for i, (h, m) in enumerate(zip(dla.heads.mean(0), dla.mlps.mean(0), strict=True))
    ]
    lines += [f"output nodes: {', '.join(nodes)}"] + [f"wrote {p}" for p in written]
    _emit(payload, as_json, lines)


def wordclass(
    model: ModelOpt = None,
    windows: Annotated[int, typer.Option(help="9-word windows clustered.")] = 2000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """k-means of last-position states per layer vs word classes; random-init and shuffled baselines."""
    from napkit.lm.method_figures import wordclass_figures

    lm = _load(model)
    if windows < 10:
        raise NapkitError(f"--windows must be at least 10, got {windows}")
    fig = wordclass_figures(lm.model, lm.tokenizer, n=windows, seed=seed)
    lines = [
        f"purity by layer: {' '.join(f'{p:.3f}' for p in fig['wordclass_purity_by_layer'])}",
        f"best {fig['wordclass_purity_trained']:.3f} (layer {fig['wordclass_best_layer']}); random init "
        f"{fig['wordclass_purity_random']:.3f}; shuffled labels {fig['wordclass_shuffled_purity']:.3f}",
    ]
    _emit(fig, as_json, lines)


def register(app: typer.Typer) -> None:
    """Add the analysis commands to the ``napkit lm`` sub-app."""
    for fn in (snmf, sae, patch, attribute, wordclass):
        app.command(fn.__name__)(fn)

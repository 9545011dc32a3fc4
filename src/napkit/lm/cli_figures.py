"""``napkit lm occupation-probe | pronoun-steer | sae-siblings``: the SmolLM2 and SAE-sibling figures.

``register(app)`` adds them to the ``napkit lm`` sub-app. The occupation commands default
to SmolLM2 (``--model smollm2``; any local HF folder whose tokenizer has " he" and " she"
as single tokens works); ``sae-siblings`` defaults to the shipped tiny model. Each prints
a short summary, and with ``--json`` one JSON object as its last line; bad input raises
NapkitError, which ``napkit.cli.main`` turns into one stderr line and exit 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from napkit.cli_output import emit_json
from napkit.errors import NapkitError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a PNG plot here.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing --plot.")]


def _load(model: str | None, default: str):
    from napkit.lm.models import load, load_smollm2, load_tiny

    name = default if model is None else model
    if name.lower() == "smollm2":
        return load_smollm2()
    return load_tiny() if name == "tiny" else load(name)


def _check_plot(plot: Path | None, force: bool) -> None:
    """Before the work: a new .png file in an existing folder (an existing one only with --force)."""
    if plot is None:
        return
    if plot.suffix.lower() != ".png":
        raise NapkitError(f"--plot must name a .png file, got {plot}")
    from napkit.cli.common import check_output

    check_output(plot, force)


def _layers(spec: str | None) -> list[int] | None:
    if spec is None:
        return None
    try:
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise NapkitError(f"--layers must be comma-separated integers, got {spec!r}") from None


def occupation_probe(
    model: Annotated[
        str | None, typer.Option("--model", help="'smollm2' (default) or a local HF folder.")
    ] = None,
    layers: Annotated[
        str | None, typer.Option("--layers", help="Comma-separated layers; default all.")
    ] = None,
    random_init: Annotated[bool, typer.Option(help="Also probe the random-init model.")] = True,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Probe an occupation's stereotyped gender and the preferred pronoun per layer (held-out occupations)."""
    from napkit.lm.occupation_probe import plot_probe, probe_occupations

    _check_plot(plot, force)
    res = probe_occupations(_load(model, "smollm2"), layers=_layers(layers), random_init=random_init)
    out = res.to_dict()
    if plot is not None:
        out["plot"] = plot_probe(res, plot)
    if not as_json:
        typer.echo(
            f"stereotyped gender: best {out['probe_best_acc']:.3f} at layer {out['probe_best_layer']} "
            f"(control {out['probe_control_at_best']:.3f}, majority {out['majority_stereotype']:.3f}"
            + (f", random-init best {out['probe_random_init_best_acc']:.3f})" if random_init else ")")
        )
        typer.echo(
            f"preferred pronoun: best {out['probe_preferred_best_acc']:.3f} at layer "
            f"{out['probe_preferred_best_layer']} (majority {out['majority_preferred']:.3f})"
        )
    emit_json(out, as_json)


def pronoun_steer(
    layer: Annotated[int, typer.Option("--layer", help="Residual layer to steer.")],
    model: Annotated[
        str | None, typer.Option("--model", help="'smollm2' (default) or a local HF folder.")
    ] = None,
    kl: Annotated[float, typer.Option("--kl", help="KL target that sets each group's α.")] = 0.5,
    n_random: Annotated[int, typer.Option("--random", help="Random control vectors.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Steer occupation prompts against their stereotyped pronoun; gap before/after, −α, random controls."""
    from napkit.lm.pronoun_steering import steer_pronoun_gap

    if not (math.isfinite(kl) and kl > 0):
        raise NapkitError(f"--kl must be a positive number, got {kl}")
    out = steer_pronoun_gap(_load(model, "smollm2"), layer, kl=kl, n_random=n_random).to_dict()
    if not as_json:
        typer.echo(
            f"{out['steer_site']}: stereotype gap {out['gap_clean']:.3f} -> {out['gap_steered']:.3f} "
            f"(−α: {out['gap_reversed']:.3f}) at KL {out['steer_kl_reached']:.3f}; "
            f"{out['steer_effect_ratio']:.1f}x the median random control"
        )
    emit_json(out, as_json)


def sae_siblings(
    model: Annotated[
        str | None, typer.Option("--model", help="Local HF folder; default the tiny model.")
    ] = None,
    layer: Annotated[int, typer.Option("--layer", help="Layer whose residual stream the SAE reads.")] = 2,
    steps: Annotated[int, typer.Option("--steps", help="SAE training steps.")] = 2000,
    sentences: Annotated[int, typer.Option("--sentences", help="Grammar sentences for SAE rows.")] = 1500,
    contexts: Annotated[int, typer.Option("--contexts", help="Prompts per context kind.")] = 12,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """SAE features of sibling nouns (cat/dog/bird/horse): fragility map and sibling confusion."""
    from napkit.lm.sae_siblings import sibling_study

    _check_plot(plot, force)
    for name, v in (("--steps", steps), ("--sentences", sentences), ("--contexts", contexts)):
        if v < 1:
            raise NapkitError(f"{name} must be at least 1, got {v}")
    fig, _ = sibling_study(
        _load(model, "tiny"), layer=layer, steps=steps, n_sentences=sentences, n_contexts=contexts, plot=plot
    )
    if not as_json:
        typer.echo(f"SAE at layer {layer}: FVU {fig['sae_fvu']:.4f}, dead {fig['sae_dead_frac']:.3f}")
        for m in ("sae_in", "sae_out", "dom", "unembed", "random"):
            typer.echo(
                f"  {m:8s} success {fig[f'{m}_success_mean']:.3f}, sibling confusion "
                f"{fig[f'{m}_confusion_mean']:.3f} (share {fig[f'{m}_confusion_share']:.3f})"
            )
    emit_json(fig, as_json)


def register(app: typer.Typer) -> None:
    """Add the figure commands to the ``napkit lm`` sub-app."""
    app.command("occupation-probe")(occupation_probe)
    app.command("pronoun-steer")(pronoun_steer)
    app.command("sae-siblings")(sae_siblings)

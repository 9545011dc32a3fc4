"""``napkit lm ...``: the LM pillar's commands (registered as a sub-app of ``napkit``).

Thin like the main CLI: parse, call the library, print; ``--json`` prints one JSON object
as the last line; bad input exits 2 with one line on stderr (handled by ``napkit.cli.main``).
Heavy imports happen inside the commands, so ``napkit --help`` stays fast.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from napkit.cli_output import emit_json as _emit
from napkit.errors import NapkitError

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Transformer LMs, offline: train the tiny model, probe, steer, and the LM demo.",
)



@app.callback()
def _quiet_loading() -> None:
    """Commands print their own progress: transformers' bars (loading weights, writing shards)
    and warnings (e.g. a prompt longer than the context, refused by napkit anyway) would
    break the one-line stderr of an error, so the CLI turns them off."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Local HF folder, or 'smollm2'; default: the shipped tiny model."),
]


def _model(model: str | None):
    from napkit.lm.models import load, load_smollm2, load_tiny

    if model is None:
        return load_tiny()
    if model.lower() == "smollm2":
        return load_smollm2()
    return load(model)


def _say(text: str, as_json: bool) -> None:
    if not as_json:
        typer.echo(text)


@app.command("train-tiny")
def train_tiny_cmd(
    out: Annotated[Path, typer.Option("--out", help="New folder for the model (HF layout + napkit.json).")],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Training seed.")] = 0,
    steps: Annotated[
        int | None,
        typer.Option("--steps", help="Steps on the mixed corpus, phase 2 (default: the reference's 3000)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the tiny GPT-2 on the grammar; fails (exit 1) with the figures below the gate.

    Training is checkpointed in the hidden folder .OUT.training beside OUT: after Ctrl-C
    (exit 130) the same command resumes, to bitwise the same weights; a checkpoint of
    another seed or --steps is refused (exit 2)."""
    from dataclasses import replace

    from napkit.cli.common import Interrupted
    from napkit.lm.train import TinyConfig, TrainingGateError, tiny_checkpoints, train_tiny

    if steps is not None and steps < 1:
        raise NapkitError(f"--steps must be positive, got {steps}")
    cfg = TinyConfig() if steps is None else replace(TinyConfig(), steps=steps)
    checkpoints = tiny_checkpoints(out, seed, cfg)
    resumed = []

    def resuming(at) -> None:  # once train_tiny holds the checkpoint folder and has read it
        resumed.append(at)
        if not as_json:
            typer.echo(f"resuming from {checkpoints.file}: {at.describe()}", err=True)

    try:
        info = train_tiny(out, seed=seed, cfg=cfg, progress=not as_json, on_resume=resuming)
    except TrainingGateError as exc:
        print(f"napkit: error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        at = checkpoints.position()
        if at is None:
            raise Interrupted("no checkpoint yet; the same command starts over") from None
        raise Interrupted(
            f"training is checkpointed in {checkpoints.folder}: {at.describe()}; the same command resumes"
        ) from None
    acc = info["accuracies"]
    _say(f"saved {out}: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()), as_json)
    res = {"out": str(out), "seed": seed, "accuracies": acc, "seconds": info["train_seconds"]}
    _emit({**res, "resumed_from_step": resumed[0].done if resumed else 0}, as_json)


@app.command()
def probe(
    model: ModelOpt = None,
    n: Annotated[int, typer.Option("--n", help="Contrast sentences to probe.")] = 400,
    c: Annotated[
        list[float] | None,
        typer.Option(
            "--c",
            help="Inverse L2 strength the one-SE rule may choose per site (repeat; "
            "default 1, 0.1, 0.01, 0.001; one value fixes it).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Probe the contrast regime per layer and position (control task, random-init baseline)."""
    from napkit.lm.experiments import probe_regime
    from napkit.lm.probes import C_GRID, check_grid

    if n < 10:
        raise NapkitError(f"--n must be at least 10, got {n}")
    grid = check_grid(c) if c else C_GRID
    res = probe_regime(_model(model), n=n, c_grid=grid)
    _say(
        f"best {res['probe_best_acc']:.3f} at {res['probe_best_site']} (C {res['probe_best_c']:g}), "
        f"selectivity {res['probe_selectivity']:.3f}, "
        f"random-init best {res['probe_random_init_best_acc']:.3f}",
        as_json,
    )
    _emit(res, as_json)


@app.command()
def steer(
    model: ModelOpt = None,
    layer: Annotated[
        int | None, typer.Option("--layer", help="Residual layer (default: chosen on training prompts).")
    ] = None,
    kl: Annotated[float, typer.Option("--kl", help="KL target that sets α.")] = 0.5,
    n_random: Annotated[int, typer.Option("--random", help="Random control vectors.")] = 20,
    out: Annotated[Path | None, typer.Option("--out", help="Write the intervention (JSON + vector).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Steer regime-0 contrast prompts towards regime 1 at a KL target, against random controls."""
    from napkit.lm.experiments import steer_regime

    if not (math.isfinite(kl) and kl > 0):
        raise NapkitError(f"--kl must be a positive number, got {kl}")
    if n_random < 1:
        raise NapkitError(f"--random must be at least 1 (random control vectors), got {n_random}")
    if out is not None:  # before the minutes of work, as every command that writes a file
        from napkit.cli.common import check_output

        if out.suffix.lower() == ".safetensors":
            raise NapkitError(f"--out {out}: give the intervention's .json name; its vector goes beside it")
        check_output(out, force)
        check_output(out.with_suffix(".safetensors"), force)  # the vector file written beside it
    lm = _model(model)
    n_layers = lm.model.config.num_hidden_layers
    if layer is not None and not 0 <= layer < n_layers:
        raise NapkitError(f"--layer must be in 0..{n_layers - 1}, got {layer}")
    res = steer_regime(lm, layer=layer, kl=kl, n_random=n_random)
    if out is not None:
        from napkit.lm.regime_steering import regime_vector
        from napkit.lm.steering import steering

        v = regime_vector(lm, res["steer_site"], res["steer_take"])
        steering(res["steer_site"], v, res["steer_alpha"], res["steer_add_positions"]).save(out, lm)
        res["intervention"] = str(out)
    lo, hi = res["steer_effect_ratio_interval"]
    _say(
        f"{res['steer_site']}: α {res['steer_alpha']:.3g} reaches KL {res['steer_kl_reached']:.3f}; "
        f"log-odds change {res['steer_effect']:+.3f} (reversed {res['steer_reversed_effect']:+.3f}), "
        f"{res['steer_effect_ratio']:.1f}× the median random control (90% over the controls' draw: "
        f"{lo:.1f}-{hi:.1f})",
        as_json,
    )
    _emit(res, as_json)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for figures and plots.")] = Path(
        "napkit-lm-demo"
    ),
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty --out.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every LM method on the tiny model; figures.json and plots under --out."""
    from napkit.lm.demo import run_demo
    from napkit.staging import check_out_folder

    check_out_folder(out, force)  # a non-empty folder is refused: its files would be replaced

    figures = run_demo(out, log=None if as_json else (lambda name: typer.echo(f"running {name} ...")))
    if not as_json:
        for k, v in figures.items():
            typer.echo(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    _emit(figures, as_json)


# Commands of the methods built on this pillar (snmf, sae, patch, attribute, wordclass) are
# added below this line, each as its own @app.command().
from napkit.lm.cli_methods import register as _register_methods  # noqa: E402

_register_methods(app)
from napkit.lm.cli_figures import register as _register_figures  # noqa: E402

_register_figures(app)

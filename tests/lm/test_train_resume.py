"""Interrupted tiny-model training resumes from its checkpoint to bitwise the same weights."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest
import torch

import napkit.lm.train as train
from napkit.cli import main
from napkit.errors import NapkitError
from napkit.lm.train import TinyConfig, tiny_checkpoints, train_model, train_tiny
from napkit.lm.train_checkpoint import Position, rng_states, set_rng_states

# a few seconds in all: bindings in 3 chunks of 2 steps (below their gate: it runs to the
# cap), 5 mixed steps, a polish of 2 chunks; checkpoints every 3 steps fall inside chunks too
SMALL = replace(
    TinyConfig(), n_layer=1, d_model=32, n_head=2, d_mlp=64, batch_size=8, warmup=2,
    bindings_max_steps=6, polish_chunk=2, steps=5, polish_max_steps=4, eval_every=0,
)  # fmt: skip
EVERY = 3
TOTAL = 6 + 5 + 4


class Stop:
    """An ``on_save`` hook that raises KeyboardInterrupt once ``at`` is saved (a Ctrl-C there)."""

    def __init__(self, at: Position | None = None):
        self.at, self.saved = at, []

    def __call__(self, position: Position) -> None:
        self.saved.append(position)
        if position == self.at:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run's weights (one torch thread, as the conftest sets)."""
    return train_model(0, SMALL, progress=False)[0].state_dict()


@pytest.fixture
def counted_steps(monkeypatch):
    """The optimiser steps taken, counted (a resumed run must not retrain what was saved)."""
    taken = []
    step = train._step

    def counting(*args):
        taken.append(1)
        return step(*args)

    monkeypatch.setattr(train, "_step", counting)
    return taken


@pytest.mark.parametrize(
    "stop",
    [
        Position(1, 0, 6),  # after phase 1 (bindings)
        Position(2, 0, 11),  # after phase 2 (mixed)
        Position(3, 0, 15),  # after phase 3 (polish), before the final evaluation
        Position(0, 3, 3),  # inside a bindings chunk
        Position(1, 3, 9),  # inside the mixed phase
        Position(2, 3, 14),  # inside a polish chunk
    ],
)
def test_a_run_interrupted_at_a_checkpoint_resumes_to_bitwise_the_same_weights(
    tmp_path, reference, counted_steps, stop
):
    out = tmp_path / "tiny"
    stopper = Stop(stop)
    with pytest.raises(KeyboardInterrupt):
        train_model(0, SMALL, progress=False, checkpoints=tiny_checkpoints(out, 0, SMALL, EVERY, stopper))
    assert len(counted_steps) == stop.done
    assert tiny_checkpoints(out, 0, SMALL).position() == stop
    counted_steps.clear()
    torch.manual_seed(123)  # whatever ran in between must not matter
    resumed = Stop()
    checkpoints = tiny_checkpoints(out, 0, SMALL, EVERY, resumed)
    model = train_model(0, SMALL, progress=False, checkpoints=checkpoints)[0]
    assert len(counted_steps) == TOTAL - stop.done
    assert all(p.done > stop.done for p in resumed.saved)
    weights = model.state_dict()
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[k], reference[k]) for k in reference)


@pytest.mark.parametrize(
    ("cfg", "stop"),
    [
        (replace(SMALL, polish_fresh_optimizer=True), Position(2, 0, 11)),  # before the new AdamW
        (replace(SMALL, polish_fresh_optimizer=True), Position(2, 3, 14)),  # with it, mid-chunk
        (replace(SMALL, bindings_max_steps=0, bindings_steps=4), Position(0, 3, 3)),  # fixed phase 1
    ],
)
def test_the_other_recipes_resume_to_bitwise_the_same_weights(tmp_path, cfg, stop):
    expected = train_model(0, cfg, progress=False)[0].state_dict()
    with pytest.raises(KeyboardInterrupt):
        train_model(
            0, cfg, progress=False, checkpoints=tiny_checkpoints(tmp_path / "t", 0, cfg, EVERY, Stop(stop))
        )
    weights = train_model(
        0, cfg, progress=False, checkpoints=tiny_checkpoints(tmp_path / "t", 0, cfg, EVERY)
    )[0]
    assert all(torch.equal(weights.state_dict()[k], v) for k, v in expected.items())


def test_checkpoints_fall_every_n_steps_and_at_each_phase_end(tmp_path):
    hook = Stop()
    train_model(0, SMALL, progress=False, checkpoints=tiny_checkpoints(tmp_path / "t", 0, SMALL, EVERY, hook))
    assert hook.saved == [
        Position(0, 3, 3), Position(0, 6, 6), Position(1, 0, 6),
        Position(1, 3, 9), Position(2, 0, 11),
        Position(2, 3, 14), Position(3, 0, 15),
    ]  # fmt: skip


def test_rng_states_round_trip_for_torch_numpy_and_python():
    states = rng_states()
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_states(states)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and (first[1] == again[1]).all() and first[2] == again[2]


@pytest.fixture
def passing_gate(monkeypatch):
    """The small model never reaches the real gate; here every check passes (so the polish
    takes no step) and train_tiny writes its folder."""
    monkeypatch.setattr(train, "gate_failures", lambda accuracies: [])


def test_train_tiny_resumes_into_the_same_folder_and_removes_its_checkpoint(tmp_path, passing_gate):
    train_tiny(tmp_path / "ref", seed=0, cfg=SMALL, progress=False)
    out = tmp_path / "tiny"
    with pytest.raises(KeyboardInterrupt):
        train_tiny(out, seed=0, cfg=SMALL, progress=False, on_checkpoint=Stop(Position(1, 0, 6)))
    assert not out.exists()  # nothing half-written at --out, and no staging left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tiny.training", "ref"]
    assert [p.name for p in (tmp_path / ".tiny.training").iterdir()] == ["checkpoint.pt"]
    train_tiny(out, seed=0, cfg=SMALL, progress=False)
    weights = (out / "model.safetensors").read_bytes()
    assert weights == (tmp_path / "ref" / "model.safetensors").read_bytes()
    info, ref = (json.loads((tmp_path / d / "napkit.json").read_text()) for d in ("tiny", "ref"))
    assert {**info, "train_seconds": 0} == {**ref, "train_seconds": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref", "tiny"]


@pytest.mark.parametrize(
    ("seed", "cfg", "named"),
    [(1, SMALL, "seed 0 there, 1 here"), (0, replace(SMALL, steps=6), "steps 5 there, 6 here")],
)
def test_a_checkpoint_of_another_seed_or_options_is_refused_and_kept(tmp_path, seed, cfg, named):
    out = tmp_path / "tiny"
    with pytest.raises(KeyboardInterrupt):
        train_tiny(out, seed=0, cfg=SMALL, progress=False, on_checkpoint=Stop(Position(1, 0, 6)))
    with pytest.raises(NapkitError, match=f"unfinished training with other options .*{named}"):
        train_tiny(out, seed=seed, cfg=cfg, progress=False)
    assert tiny_checkpoints(out, 0, SMALL).position() == Position(1, 0, 6)


@pytest.mark.parametrize("form", ["current_folder", "symlink_to_empty_folder"])
def test_train_tiny_fills_an_existing_empty_output_folder(tmp_path, existing_out_folder, passing_gate, form):
    """``--out .`` (and a link to an empty folder) trained to the end, then failed to rename
    its model into place: OSError, the whole training lost."""
    real, out = existing_out_folder(tmp_path, form)
    info = train_tiny(out, seed=0, cfg=SMALL, progress=False)
    assert (real / "model.safetensors").is_file()
    assert json.loads((real / "napkit.json").read_text()) == json.loads(json.dumps(info))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["real"] if form == "current_folder" else ["link", "real"])  # no staging, no checkpoint
    assert form == "current_folder" or (tmp_path / "link").is_symlink()


def test_a_second_run_on_the_same_out_is_refused_while_the_first_trains(tmp_path):
    """Two runs on one --out wrote one checkpoint in turns (the second's seed could replace
    the first's) and the later one ended in an OSError after all its training."""
    out, refusals = tmp_path / "tiny", []

    def second_run(position: Position) -> None:
        if position == Position(0, 3, 3):
            with pytest.raises(NapkitError, match="another run is training"):
                train_tiny(out, seed=1, cfg=SMALL, progress=False)
            refusals.append(position)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_tiny(out, seed=0, cfg=SMALL, progress=False, checkpoint_every=EVERY, on_checkpoint=second_run)
    assert refusals == [Position(0, 3, 3)]
    assert [p.name for p in (tmp_path / ".tiny.training").iterdir()] == ["checkpoint.pt"]
    assert tiny_checkpoints(out, 0, SMALL).position() == Position(0, 3, 3)


def test_the_command_refuses_a_second_run_on_one_out_in_one_line(tmp_path, capsys, monkeypatch):
    """It printed "resuming from ..." (the running training's checkpoint) above the refusal."""
    monkeypatch.setattr(train, "TinyConfig", lambda: SMALL)
    out, codes = tmp_path / "tiny", []

    def second_run(position: Position) -> None:
        if position == Position(1, 0, 6):
            capsys.readouterr()
            codes.append(main(["lm", "train-tiny", "--out", str(out)]))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_tiny(out, seed=0, cfg=SMALL, progress=False, on_checkpoint=second_run)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert codes == [2] and len(err) == 1 and "another run is training" in err[0], err


def test_an_interruption_before_the_first_checkpoint_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(tmp_path / "tiny", seed=0, cfg=SMALL, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_output_in_a_missing_folder_is_refused_before_any_work(tmp_path):
    with pytest.raises(NapkitError, match="nowhere does not exist"):
        train_tiny(tmp_path / "nowhere" / "tiny", seed=0, cfg=SMALL, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_run_below_the_gate_removes_its_checkpoint(tmp_path):
    with pytest.raises(train.TrainingGateError):
        train_tiny(tmp_path / "tiny", seed=0, cfg=SMALL, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_the_command_says_where_it_stopped_resumes_and_refuses_another_seed(
    tmp_path, capsys, monkeypatch, passing_gate
):
    monkeypatch.setattr(train, "TinyConfig", lambda: SMALL)
    save = train.Checkpoints.save

    def interrupted(self, position, model, opt):
        save(self, position, model, opt)
        if position == Position(1, 0, 6):
            raise KeyboardInterrupt

    out = tmp_path / "tiny"
    with monkeypatch.context() as m:
        m.setattr(train.Checkpoints, "save", interrupted)
        assert main(["lm", "train-tiny", "--out", str(out), "--json"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("napkit: interrupted; training is checkpointed in ")
    where = ".tiny.training: phase 2 of 3 (mixed corpus), step 0, 6 steps in all"
    assert err[-1].endswith(f"{where}; the same command resumes")
    assert main(["lm", "train-tiny", "--out", str(out), "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed 0 there, 1 here" in err[0]
    assert main(["lm", "train-tiny", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["resumed_from_step"] == 6 and (out / "model.safetensors").is_file()
    assert not (tmp_path / ".tiny.training").exists()

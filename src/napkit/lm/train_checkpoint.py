"""Checkpoints of the tiny model's training, so that an interrupted ``train-tiny`` resumes.

One file, ``checkpoint.pt`` in the hidden folder ``.DIR.training`` beside the output folder
DIR (DIR itself appears only when training passed its gate), replaced by one rename
(:func:`napkit.staging.replacing`) at the end of each phase and every ``every`` steps inside
one: the model's and the optimiser's state, the RNG states of torch, numpy and Python, and
the position (phase, steps of that phase, steps in all). Resuming from it gives bitwise the
weights of an uninterrupted run. It records the seed and the training options it was made
with; a run with other ones refuses it (as a capture store of other data is refused) rather
than mix two trainings or overwrite hours of another one. It is read with
``torch.load(weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.staging import named, replacing

FORMAT = "napkit.lm.tiny-checkpoint/1"
CHECKPOINT_EVERY = 250  # steps between checkpoints inside a phase (about 10 MB each, ~0.1 s)
PHASES = ("bindings", "mixed corpus", "polish")  # train_model's phases, in order
LOCK_FILE = "lock"  # in the checkpoint folder while a training runs (flock: freed when it dies)


@dataclass(frozen=True)
class Position:
    """Where a training stands: ``phase`` (an index of :data:`PHASES`; ``len(PHASES)``: all
    done) after ``step`` of its steps, ``done`` steps in all phases."""

    phase: int = 0
    step: int = 0
    done: int = 0

    def describe(self) -> str:
        """E.g. ``phase 2 of 3 (mixed corpus), step 750, 3750 steps in all``."""
        if self.phase >= len(PHASES):
            return f"all {len(PHASES)} phases done, {self.done} steps"
        name = f"phase {self.phase + 1} of {len(PHASES)} ({PHASES[self.phase]})"
        return f"{name}, step {self.step}, {self.done} steps in all"


def rng_states() -> dict:
    """The global RNG states of torch, numpy and Python, as tensors and numbers (no pickle)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": py_gauss,
        },
    }


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))


@dataclass
class Checkpoints:
    """The checkpoint of the training that ``train-tiny --out out --seed seed`` runs.

    ``options``: the training options (the recorded config) a checkpoint must match;
    ``every``: steps between checkpoints inside a phase; ``on_save(position)``: called after
    each checkpoint is written (tests interrupt there)."""

    out: Path
    seed: int
    options: dict
    every: int = CHECKPOINT_EVERY
    on_save: Callable[[Position], None] | None = None
    _elapsed: float = field(default=0.0, init=False)  # seconds of training in earlier runs
    _started: float = field(default_factory=time.perf_counter, init=False)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.every < 1:
            raise NapkitError(f"checkpoints need at least 1 step between them, got {self.every}")

    @property
    def folder(self) -> Path:
        """The hidden folder beside ``out`` that holds the checkpoint."""
        out = named(self.out)  # ".", ".." and links: beside the folder they name
        return out.with_name(f".{out.name}.training")

    @property
    def file(self) -> Path:
        return self.folder / "checkpoint.pt"

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the checkpoint folder for one training: a second run on the same output is
        refused (NapkitError) rather than write the same checkpoint in turns. The lock file
        goes on exit, and the folder too when it holds no checkpoint."""
        try:
            self.folder.mkdir(exist_ok=True)
            fd = os.open(self.folder / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as exc:
            raise NapkitError(f"cannot write {self.folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NapkitError(
                f"another run is training into {self.out} (it holds {self.folder}): "
                "wait for it to end, or give another --out"
            ) from None
        try:
            yield
        finally:
            (self.folder / LOCK_FILE).unlink(missing_ok=True)  # while held: no one else has it
            os.close(fd)
            try:
                self.folder.rmdir()  # only when empty: no checkpoint (nor a new run's lock)
            except OSError:
                pass

    def _load(self) -> dict | None:
        """The checkpoint's contents, checked against this training; None when there is none."""
        if not self.file.is_file():
            return None
        try:
            state = torch.load(self.file, weights_only=True)
        except Exception as exc:  # damaged outside napkit: writes are atomic
            raise NapkitError(
                f"{self.file} is not a readable training checkpoint ({type(exc).__name__}); "
                f"delete {self.folder} to start over"
            ) from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise NapkitError(f"{self.file} is not a {FORMAT} checkpoint; delete {self.folder} to start over")
        saved = {"seed": state["seed"], **json.loads(state["options"])}
        wanted = {"seed": self.seed, **json.loads(json.dumps(self.options))}  # tuples as JSON lists
        differ = [
            f"{k} {saved.get(k)!r} there, {wanted.get(k)!r} here"
            for k in sorted(set(saved) | set(wanted))
            if saved.get(k) != wanted.get(k)
        ]
        if differ:
            raise NapkitError(
                f"{self.folder} holds an unfinished training with other options ({'; '.join(differ)}): "
                f"run it again with its options to resume it, or delete {self.folder} to start over"
            )
        return state

    def position(self) -> Position | None:
        """Where the saved training stands (None: no checkpoint); refuses another training's."""
        state = self._load()
        return None if state is None else Position(**state["position"])

    def restore(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> Position:
        """Load the checkpoint (if any) into ``model``, ``opt`` and the RNGs; where to go on."""
        state = self._load()
        if state is None:
            return Position()
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        set_rng_states(state["rng"])
        self._elapsed = float(state["seconds"])
        return Position(**state["position"])

    def elapsed(self) -> float:
        """Seconds of training so far, earlier interrupted runs included."""
        return self._elapsed + time.perf_counter() - self._started

    def save(self, position: Position, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        """Replace the checkpoint by the training's state at ``position`` (atomically)."""
        state = {
            "format": FORMAT,
            "seed": self.seed,
            "options": json.dumps(self.options),
            "position": asdict(position),
            "seconds": self.elapsed(),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "rng": rng_states(),
        }
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise NapkitError(f"cannot write {self.folder}: {exc.strerror or exc}") from None
        with replacing(self.file) as tmp:
            torch.save(state, tmp)
        if self.on_save is not None:
            self.on_save(position)

    def remove(self) -> None:
        """Delete the checkpoint and its folder (the training finished, passed or not)."""
        shutil.rmtree(self.folder, ignore_errors=True)

"""From command-line arguments to verification queries: regions, labels, NAP phases, batches."""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from napkit.cli.common import Interrupted
from napkit.errors import NapkitError


def query_region(net, domain: bool, center: Path | None, index: int, eps: float | None, split, lo, hi):
    """(input box, centre or None, notes): the whole domain or an L-inf ball clipped to it."""
    from napkit.datasets import load_npz
    from napkit.verify import domain_box, linf_ball

    if not lo < hi:
        raise NapkitError(f"the domain needs --lo < --hi, got {lo} and {hi}")
    if domain == (center is not None):
        raise NapkitError("give exactly one region: --domain, or --center DATA --index I --eps E")
    if domain:
        return domain_box(net.n_inputs, lo, hi), None, []
    if eps is None or not math.isfinite(eps) or eps <= 0:
        raise NapkitError(f"--eps must be a positive number, got {eps}")
    x, _ = load_npz(center, split)
    x = net.reshape_inputs(x)
    if not 0 <= index < len(x):
        raise NapkitError(f"--index {index} is outside the {len(x)} rows of {center}")
    x0 = x[index].astype(float)
    return linf_ball(x0, eps, lo, hi), x[index], _ball_notes(x0, eps, lo, hi)


def _ball_notes(x0: np.ndarray, eps: float, lo: float, hi: float) -> list[str]:
    if bool(np.all(x0 - eps <= lo) and np.all(x0 + eps >= hi)):
        return [
            f"the ball of radius {eps:g} covers the whole domain [{lo:g}, {hi:g}]^{x0.size}: "
            "this is the --domain query"
        ]
    return []


def label_notes(net, x0: np.ndarray | None, label: int, index: int) -> list[str]:
    """A note when the centre itself is not classified as the class asked about."""
    if x0 is None:
        return []
    predicted = int(net.predict(np.asarray(x0, float)[None])[0])
    if predicted == label:
        return []
    return [f"the centre (row {index}) is classified {predicted}, not {label}"]


def onnx_proto(model: Path):
    """The ONNX model itself when MODEL is ONNX: counterexamples are re-checked on it too."""
    from napkit.network import load_onnx_model

    return load_onnx_model(model) if model.name.lower().endswith((".onnx", ".onnx.gz")) else None


def phases_for(net, naps: Path | None, label: int | None):
    if naps is None:
        return None, None
    from napkit.patterns import NAPSet

    if label is None:
        raise NapkitError("--naps needs --label C: the class whose NAP constrains the query")
    napset = NAPSet.load(naps, net)
    return napset, napset.phases(label, net.layer_names, net.layer_sizes)


def check_label(net, label: int) -> int:
    if not 0 <= label < net.n_outputs:
        raise NapkitError(f"--label must be a class of the model (0..{net.n_outputs - 1}), got {label}")
    return label


def parse_label(value: str) -> int | None:
    """``--label``: a class number, or ``all`` (None)."""
    if value.strip().lower() == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise NapkitError(f"--label must be a class number or 'all', got {value!r}") from None


def nap_query(model: Path, naps: Path | None, label: int, region: tuple):
    """(network, NAP set, phases of ``label``, input box, notes) for verify, export-vnnlib, minimize."""
    from napkit.network import load_model

    net = load_model(model)
    check_label(net, label)
    napset, phases = phases_for(net, naps, label)
    box, x0, notes = query_region(net, *region)
    return net, napset, phases, box, notes + label_notes(net, x0, label, region[2])


def batch_exit(counts: dict[str, int], failure: str) -> int:
    """Exit code of a batch: 1 when a ``failure`` verdict was found, 2 when some query crashed.

    A query that ended in an error decided nothing: it is named on stderr, never read as success.
    """
    if counts.get("error"):
        print(
            f"napkit: error: {counts['error']} queries ended in an error (their reason says why)",
            file=sys.stderr,
        )
    if counts.get(failure):
        return 1
    return 2 if counts.get("error") else 0


def print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"napkit: note: {note}", file=sys.stderr)


def result_line(res, what: str) -> str:
    colour = {"verified": "green", "unsat": "green", "falsified": "red", "sat": "red"}.get(
        res.verdict, "yellow"
    )
    return f"{what}: [bold {colour}]{res.verdict}[/] in {res.seconds:.2f} s ({res.reason})"


@contextmanager
def _results_file(results: Path | None):
    """The batch's JSON-lines file: the one given (resumable), or a temporary one."""
    if results is not None:
        yield results
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="napkit-batch-") as tmp:
        yield Path(tmp) / "results.jsonl"


def run_batch_cli(jobs, results: Path | None, workers: int | None, scheduler: str | None, progress: bool):
    """run_batch with the CLI's Ctrl-C message: where the finished queries are kept."""
    from napkit.verify import run_batch

    with _results_file(results) as path:
        try:
            return run_batch(jobs, path, workers=workers, scheduler=scheduler, progress=progress)
        except KeyboardInterrupt:
            if results is None:
                raise Interrupted("pass --results FILE to keep finished queries and resume") from None
            raise Interrupted(f"finished queries are in {results}; the same command resumes") from None

"""The promises of the command line (issue 10, §5): each row of the table, tried as a user would."""

import json
import os
import pty
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from helpers import last_json, run_cli, three_class_files
from napkit.network import ReluNetwork, save_model

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def setup(tmp_path):
    return three_class_files(tmp_path)


def run(capsys, *args):
    return run_cli(capsys, *args)


def one_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b[" not in err, err
    return lines[0]


# ---- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_during_mine_says_interrupted(setup, capsys, monkeypatch):
    tmp, model, data, naps, _ = setup

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("napkit.patterns.mining.NAPMiner.update", interrupt)
    code, out, err = run(capsys, "mine", model, data, "--delta", "0.9", "--out", tmp / "n.json")
    assert code == 130 and one_line(err) == "napkit: interrupted"
    assert not (tmp / "n.json").exists()


def test_ctrl_c_during_verify_says_interrupted(setup, capsys, monkeypatch):
    tmp, model, data, naps, _ = setup

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("napkit.verify.verify_robustness", interrupt)
    code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", "0", "--domain")
    assert code == 130 and one_line(err) == "napkit: interrupted"


def test_ctrl_c_during_capture_says_where_to_resume(setup, capsys, monkeypatch):
    from napkit.capture import ActivationStore

    tmp, model, data, naps, _ = setup
    real_append = ActivationStore.append
    calls = []

    def append_then_interrupt(self, *a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_append(self, *a, **k)

    monkeypatch.setattr(ActivationStore, "append", append_then_interrupt)
    store = tmp / "acts.zarr"
    code, out, err = run(capsys, "capture", model, data, "--batch-size", "100", "--out", store)
    line = one_line(err)
    assert code == 130 and line.startswith("napkit: interrupted")
    assert "100 of 600 rows" in line and "resume from row 100" in line
    monkeypatch.setattr(ActivationStore, "append", real_append)
    code, out, err = run(capsys, "capture", model, data, "--batch-size", "100", "--out", store, "--json")
    assert code == 0, err
    res = last_json(out)
    assert res["resumed_from"] == 100 and res["rows"] == 600


def test_ctrl_c_on_a_batch_stops_its_workers_quietly(setup):
    """A real SIGINT to the process group, as a terminal sends it: exit 130, no traceback."""
    tmp, model, data, naps, _ = setup
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-c", "from napkit.cli import run; run()", "verify", str(model), "--naps",
           str(naps), "--label", "all", "--domain", "--timeout", "30", "--workers", "1",
           "--results", str(tmp / "r.jsonl")]
    # a terminal's Ctrl-C reaches a process that handles SIGINT; a test run started in the
    # background of a non-interactive shell ignores it, and the child would inherit that
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = time.monotonic()  # the results file opens when the batch starts, after the imports
    while not (tmp / "r.jsonl").exists() and proc.poll() is None and time.monotonic() - started < 120:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (err, out)
    assert "napkit: interrupted" in err and "Traceback" not in err, err


# ---- bad files -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["mine", "stats"])
def test_empty_npz_is_exit_2_naming_the_file(setup, capsys, command):
    tmp, model, data, naps, _ = setup
    empty = tmp / "empty.npz"
    empty.write_bytes(b"")
    args = ([model, empty, "--delta", "0.9", "--out", tmp / "n.json"] if command == "mine"
            else [model, naps, empty])
    code, out, err = run(capsys, command, *args)
    assert code == 2 and "empty.npz" in one_line(err) and "empty or truncated" in err


def test_pickled_pt_is_one_line(tmp_path, capsys):
    import torch

    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path / "whole.pt")
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), np.float32), y=np.zeros(4, np.int64))
    code, out, err = run(capsys, "mine", tmp_path / "whole.pt", tmp_path / "d.npz", "--delta", "0.9",
                         "--out", tmp_path / "n.json")
    line = one_line(err)
    assert code == 2 and "whole.pt" in line and "only state dicts" in line


def test_empty_onnx_is_one_line(tmp_path, capsys):
    (tmp_path / "empty.onnx").write_bytes(b"")
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), np.float32), y=np.zeros(4, np.int64))
    code, out, err = run(capsys, "mine", tmp_path / "empty.onnx", tmp_path / "d.npz", "--delta", "0.9",
                         "--out", tmp_path / "n.json")
    line = one_line(err)
    assert code == 2 and "empty.onnx is empty" in line and "not an ONNX model" in line


# ---- numbers out of range ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "{model}", "--label", "0", "--domain", "--timeout", "0"],
        ["verify", "{model}", "--label", "0", "--domain", "--timeout", "-5"],
        ["verify", "{model}", "--label", "0", "--domain", "--timeout", "nan"],
        ["ambiguity", "{model}", "{naps}", "--timeout", "-1"],
        ["vnnlib", "{model}", "{tmp}/p.vnnlib", "--timeout", "0"],
        ["minimize", "{model}", "--naps", "{naps}", "--label", "0", "--domain", "--out", "{tmp}/m.json",
         "--timeout", "0"],
        ["minimize", "{model}", "--naps", "{naps}", "--label", "0", "--domain", "--out", "{tmp}/m.json",
         "--budget", "-1"],
    ],
)
def test_timeouts_must_be_positive(setup, capsys, args):
    tmp, model, data, naps, _ = setup
    filled = [a.format(model=model, naps=naps, tmp=tmp) for a in args]
    code, out, err = run(capsys, *filled)
    assert code == 2 and "must be a positive number of seconds" in one_line(err)
    assert not (tmp / "m.json").exists()


def test_huge_eps_is_accepted_with_a_note(setup, capsys):
    tmp, model, data, naps, net = setup
    code, out, err = run(capsys, "verify", model, "--label", "0", "--center", data, "--index", "0",
                         "--eps", "1e9", "--timeout", "5", "--json")
    res = last_json(out)
    assert code in (0, 1) and res["result"] in ("verified", "falsified", "unknown")
    assert any("covers the whole domain" in n for n in res["notes"])
    assert "napkit: note: the ball of radius 1e+09 covers the whole domain" in err
    code, out, err = run(capsys, "verify", model, "--label", "0", "--center", data, "--index", "0",
                         "--eps", "0.01", "--timeout", "5", "--json")
    assert not any("covers" in n for n in last_json(out)["notes"])


def test_label_other_than_the_centres_class_is_noted(setup, capsys):
    tmp, model, data, naps, net = setup
    x = np.load(data)["x"]
    predicted = int(net.predict(x[:1].astype(float))[0])
    other = (predicted + 1) % 3
    code, out, err = run(capsys, "verify", model, "--label", other, "--center", data, "--index", "0",
                         "--eps", "0.01", "--timeout", "5", "--json")
    note = f"the centre (row 0) is classified {predicted}, not {other}"
    assert note in last_json(out)["notes"] and note in err
    code, out, err = run(capsys, "verify", model, "--label", predicted, "--center", data, "--index", "0",
                         "--eps", "0.01", "--timeout", "5", "--json")
    assert last_json(out)["notes"] == [] and "note" not in err


# ---- outputs -------------------------------------------------------------------------------------


def test_mine_refuses_an_existing_out_unless_forced(setup, capsys):
    tmp, model, data, naps, _ = setup
    target = tmp / "taken.json"
    target.write_text("keep me")
    code, out, err = run(capsys, "mine", model, data, "--delta", "0.9", "--out", target)
    assert code == 2 and "--force" in one_line(err) and target.read_text() == "keep me"
    code, out, err = run(capsys, "mine", model, data, "--delta", "0.9", "--out", target, "--force")
    assert code == 0 and json.loads(target.read_text())["format"] == "napkit.naps/1"


def test_export_vnnlib_refuses_a_non_empty_folder_and_writes_atomically(setup, capsys, monkeypatch):
    tmp, model, data, naps, _ = setup
    folder = tmp / "exp"
    folder.mkdir()
    (folder / "other.txt").write_text("x")
    args = ["export-vnnlib", model, "--naps", naps, "--label", "0", "--domain", "--out", folder]
    code, out, err = run(capsys, *args)
    assert code == 2 and "not empty" in one_line(err) and sorted(os.listdir(folder)) == ["other.txt"]

    def broken_writer(path, *a, **k):
        Path(path).write_text("(half a spec")
        raise OSError("disk full")

    monkeypatch.setattr("napkit.verify.vnnlib_write.write_vnnlib", broken_writer)
    code, out, err = run(capsys, *args, "--force")
    assert code == 2 and "disk full" in one_line(err)  # an I/O failure is one line, too
    assert not (folder / "nap_class0.vnnlib").exists()
    assert not [f for f in os.listdir(folder) if "partial" in f]
    monkeypatch.undo()
    code, out, err = run(capsys, *args, "--force", "--json")
    assert code == 0 and Path(last_json(out)["vnnlib"]).read_text().startswith(";")


def test_minimize_refuses_to_overwrite_its_own_naps(setup, capsys):
    tmp, model, data, naps, _ = setup
    before = naps.read_text()
    code, out, err = run(capsys, "minimize", model, "--naps", naps, "--label", "0", "--domain",
                         "--out", naps, "--force")
    assert code == 2 and "its own input" in one_line(err) and naps.read_text() == before


def test_minimize_reads_the_centre_and_the_ranking_data_from_separate_splits(setup, capsys):
    tmp, model, data, naps, _ = setup
    d = np.load(data)
    both = tmp / "both.npz"
    np.savez(both, x_probe=d["x"][:50], y_probe=d["y"][:50], x_fit=d["x"], y_fit=d["y"])
    args = ["minimize", model, "--naps", naps, "--label", int(d["y"][0]), "--center", both, "--split",
            "probe", "--index", "0", "--eps", "0.02", "--data", both, "--timeout", "2", "--budget", "20",
            "--out", tmp / "small.json", "--json"]
    code, out, err = run(capsys, *args, "--data-split", "fit")
    assert code == 0, err
    res = last_json(out)
    assert 0 <= res["recall_before"] <= res["recall_after"] <= 1
    code, out, err = run(capsys, *args[:-2], tmp / "small2.json")  # no --data-split: x, y are absent
    assert code == 2 and "'x'" in one_line(err)


# ---- progress and help ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, label",
    [(["mine", "{model}", "{data}", "--delta", "0.9", "--out", "{tmp}/n.json"], "mining"),
     (["stats", "{model}", "{naps}", "{data}"], "evaluating"),
     (["monitor", "{model}", "{naps}", "{data}"], "monitoring")],
)
def test_bars_are_labelled_by_their_work(setup, capsys, monkeypatch, command, label):
    tmp, model, data, naps, _ = setup
    seen = []

    @contextmanager
    def spy(total, description, enabled=True):
        seen.append((description, enabled))
        yield lambda n=1: None

    monkeypatch.setattr("napkit.capture.recorder.progress_bar", spy)
    code, out, err = run(capsys, *[a.format(model=model, data=data, naps=naps, tmp=tmp) for a in command])
    assert code == 0, err
    assert seen and {d for d, _ in seen} == {label} and all(e for _, e in seen)


def _stderr_on_a_terminal(args: list[str]) -> str:
    """Run napkit with stderr on a pseudo-terminal; what the terminal showed."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "100", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-c", "from napkit.cli import run; run()", *args],
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_verify_shows_a_live_status_line_on_a_terminal(setup):
    tmp, model, data, naps, _ = setup
    shown = _stderr_on_a_terminal(["verify", str(model), "--naps", str(naps), "--label", "0", "--domain",
                                   "--timeout", "5"])
    assert "verifying class 0" in shown


def test_status_line_is_silent_off_a_terminal(capsys):
    from napkit.progress import status_line

    with status_line("working", True) as update:
        update("still working")
    assert capsys.readouterr().err == ""


def test_verify_help_shows_the_domain_brackets(capsys):
    code, out, err = run(capsys, "verify", "--help")
    assert code == 0 and "[lo, hi]^n" in out


def test_similarity_constant_patterns_hint_at_pre(tmp_path, capsys):
    # inputs below 0.5 in both coordinates switch every hidden unit off: a constant (all-zero)
    # ReLU pattern, whose correlation with any other pattern is undefined
    net = ReluNetwork((np.eye(2), np.eye(2)), (np.array([-0.5, -0.5]), np.zeros(2)))
    save_model(net, tmp_path / "m.safetensors")
    x = np.random.default_rng(0).uniform(size=(40, 2))
    np.savez(tmp_path / "d.npz", x=x, y=net.predict(x))
    args = ["similarity", tmp_path / "m.safetensors", tmp_path / "d.npz", "--method", "rsa_spearman"]
    code, out, err = run(capsys, *args)
    assert code == 2 and "zero variance" in one_line(err) and "--pre" in err
    code, out, err = run(capsys, *args, "--pre", "--json")
    assert code == 0, err

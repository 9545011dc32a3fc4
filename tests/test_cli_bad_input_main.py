"""Bad input to the main (non-lm) commands: one line on stderr, exit 2, nothing written or lost.

Each case here was a traceback, a silent acceptance or a clobbered file before its fix.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from helpers import run_cli, three_class_files


@pytest.fixture
def setup(tmp_path):
    return three_class_files(tmp_path)


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def refused(capsys, *args) -> str:
    """Run ``napkit ARGS``; it must exit 2 with one line on stderr, which is returned."""
    try:
        code, out, err = run_cli(capsys, *args)
    except Exception as exc:  # a traceback in a terminal
        pytest.fail(f"napkit {' '.join(map(str, args))} raised {exc!r}")
    line = one_line(err)
    assert code == 2 and line.startswith("napkit: error: "), (code, err)
    return line


# ---- --results (verify --label all, vnnlib --instances) ----------------------------------------


@pytest.mark.parametrize(
    "where, msg",
    [
        ("folder", "it is a folder"),
        ("under_file", "is a file, not a folder"),
        ("missing_parent", "does not exist"),
        ("other_file", "is not a napkit results file"),
        ("naps_file", "is not a napkit results file"),
    ],
)
def test_verify_results_path_is_checked_before_any_work(setup, capsys, where, msg):
    tmp, model, data, naps, _ = setup
    (tmp / "folder").mkdir()
    (tmp / "folder" / "keep").write_text("keep")
    (tmp / "a_file").write_text("x")
    (tmp / "notes.txt").write_text("my notes, no final newline")
    path = {
        "folder": tmp / "folder",
        "under_file": tmp / "a_file" / "r.jsonl",
        "missing_parent": tmp / "nowhere" / "r.jsonl",
        "other_file": tmp / "notes.txt",
        "naps_file": naps,
    }[where]
    before = {p: p.read_bytes() for p in tmp.rglob("*") if p.is_file()}
    line = refused(capsys, "verify", model, "--naps", naps, "--label", "all", "--domain", "--timeout", "2",
                   "--results", path, "--no-progress")
    assert msg in line
    assert {p: p.read_bytes() for p in tmp.rglob("*") if p.is_file()} == before  # nothing cut or added
    assert not (tmp / "nowhere").exists()


def test_vnnlib_instances_refuses_a_results_file_that_is_not_one(setup, capsys):
    tmp, model, data, naps, _ = setup
    (tmp / "instances.csv").write_text("m.onnx,p.vnnlib,5\n")
    kept = model.read_bytes()
    line = refused(capsys, "vnnlib", "--instances", tmp / "instances.csv", "--out", tmp / "r.csv",
                   "--results", model)
    assert "is not a napkit results file" in line
    assert model.read_bytes() == kept and not (tmp / "r.csv").exists()


def test_vnnlib_instances_refuses_results_in_a_missing_folder_before_any_work(setup, capsys):
    tmp, *_ = setup
    (tmp / "instances.csv").write_text("m.onnx,p.vnnlib,5\n")
    line = refused(capsys, "vnnlib", "--instances", tmp / "instances.csv", "--out", tmp / "r.csv",
                   "--results", tmp / "nowhere" / "r.jsonl")
    assert "nowhere does not exist" in line
    assert not (tmp / "nowhere").exists() and not (tmp / "r.csv").exists()


def test_vnnlib_instances_results_and_out_must_differ(setup, capsys):
    tmp, *_ = setup
    (tmp / "instances.csv").write_text("m.onnx,p.vnnlib,5\n")
    line = refused(capsys, "vnnlib", "--instances", tmp / "instances.csv", "--out", tmp / "r.csv",
                   "--results", tmp / "r.csv")
    assert "is the --out CSV" in line and not (tmp / "r.csv").exists()


def test_run_batch_keeps_a_file_that_is_not_a_results_file(tmp_path):
    from napkit.errors import NapkitError
    from napkit.verify import run_batch

    other = tmp_path / "naps.json"
    other.write_text('{"format": "napkit.naps/1"}')  # no final newline: would be cut as a torn line
    with pytest.raises(NapkitError, match="not a napkit results file"):
        run_batch([], other, progress=False)
    assert other.read_text() == '{"format": "napkit.naps/1"}'


def test_a_torn_results_file_is_still_resumable(tmp_path):
    from napkit.verify.batch import check_results_file

    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "q0", "result": "verified"}) + "\n" + '{"id": "q1", "res')
    assert check_results_file(path) == path


@pytest.mark.parametrize("which", ["model", "data"])
def test_mine_out_equal_to_an_input_is_refused_even_with_force(setup, capsys, which):
    tmp, model, data, *_ = setup
    target = {"model": model, "data": data}[which]
    kept = target.read_bytes()
    line = refused(capsys, "mine", model, data, "--delta", "0.9", "--out", target, "--force", "--no-progress")
    assert "would lose the input" in line and target.read_bytes() == kept


def test_minimize_out_equal_to_its_data_is_refused_even_with_force(setup, capsys):
    tmp, model, data, naps, _ = setup
    kept = data.read_bytes()
    line = refused(capsys, "minimize", model, "--naps", naps, "--label", "0", "--center", data, "--eps",
                   "0.05", "--data", data, "--out", data, "--force", "--timeout", "2", "--no-progress")
    assert "is the --center file" in line and data.read_bytes() == kept


# ---- similarity --png ---------------------------------------------------------------------------


def test_similarity_png_is_not_replaced_without_force(setup, capsys):
    tmp, model, data, *_ = setup
    png = tmp / "sim.png"
    png.write_text("keep me")
    assert "--force" in refused(capsys, "similarity", model, data, "--png", png)
    assert png.read_text() == "keep me"
    code, out, err = run_cli(capsys, "similarity", model, data, "--png", png, "--force")
    assert code == 0, err
    assert png.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp.iterdir() if "partial" in p.name] == []


@pytest.mark.parametrize("name", ["sim.txt", "sim"])
def test_similarity_png_of_an_unknown_format_is_one_line(setup, capsys, name):
    tmp, model, data, *_ = setup
    assert "format matplotlib writes" in refused(capsys, "similarity", model, data, "--png", tmp / name)
    assert not (tmp / name).exists() and not (tmp / (name + ".png")).exists()


# ---- capture: store paths and resuming ---------------------------------------------------------


def test_capture_resuming_a_complete_store_with_other_layers_is_refused(setup, capsys):
    tmp, model, data, *_ = setup
    store = tmp / "acts.zarr"
    assert run_cli(capsys, "capture", model, data, "--out", store, "--no-progress")[0] == 0
    line = refused(capsys, "capture", model, data, "--out", store, "--layers", "relu1", "--no-progress")
    assert "records layers ['relu0', 'relu1'], not ['relu1']" in line


def test_capture_into_an_empty_folder_and_not_into_another_folder(setup, capsys):
    tmp, model, data, *_ = setup
    (tmp / "empty").mkdir()
    code, out, err = run_cli(capsys, "capture", model, data, "--out", tmp / "empty", "--no-progress")
    assert code == 0, err
    (tmp / "other").mkdir()
    (tmp / "other" / "keep").write_text("keep")
    line = refused(capsys, "capture", model, data, "--out", tmp / "other", "--no-progress")
    assert "holds no activation store" in line and "give a file name" not in line
    assert [p.name for p in (tmp / "other").iterdir()] == ["keep"]


@pytest.mark.parametrize("form", ["current_folder", "symlink_to_empty_folder"])
def test_capture_into_the_current_folder_or_a_linked_empty_one(setup, capsys, existing_out_folder, form):
    """Both were refused: "cannot create a store at .: Invalid argument" (rmdir of "." or of
    a link) after the staged store was built."""
    tmp, model, data, *_ = setup
    real, out = existing_out_folder(tmp, form)
    code, _, err = run_cli(capsys, "capture", model, data, "--out", out, "--no-progress")
    assert code == 0, err
    code, _, err = run_cli(capsys, "capture", model, data, "--out", out, "--no-progress")  # resumes: done
    assert code == 0, err
    assert (real / "zarr.json").is_file() and (real / "relu0").is_dir()
    links = [] if form == "current_folder" else ["link"]
    assert sorted(os.listdir(tmp)) == sorted(["d.npz", "m.onnx", "naps.json", "real", *links])


def test_capture_interrupted_while_creating_its_store_leaves_no_folder(setup, capsys, monkeypatch):
    from napkit.capture import ActivationStore

    tmp, model, data, *_ = setup

    def interrupt(self, n):
        raise KeyboardInterrupt

    monkeypatch.setattr(ActivationStore, "_write_committed", interrupt)
    code, out, err = run_cli(capsys, "capture", model, data, "--out", tmp / "acts.zarr", "--no-progress")
    assert code == 130 and "interrupted" in one_line(err)
    assert sorted(os.listdir(tmp)) == ["d.npz", "m.onnx", "naps.json"]


# ---- options that would be silently ignored -----------------------------------------------------


def test_vnnlib_label_without_naps_is_refused(setup, capsys):
    tmp, model, *_ = setup
    (tmp / "p.vnnlib").write_text("(declare-const X_0 Real)\n")
    assert "give --naps" in refused(capsys, "vnnlib", model, tmp / "p.vnnlib", "--label", "1")
    assert "--label" in refused(capsys, "vnnlib", "--instances", tmp / "p.vnnlib", "--label", "1")


def test_vnnlib_out_without_instances_is_refused(setup, capsys):
    tmp, model, *_ = setup
    (tmp / "p.vnnlib").write_text("(declare-const X_0 Real)\n")
    line = refused(capsys, "vnnlib", model, tmp / "p.vnnlib", "--out", tmp / "r.csv")
    assert "--out" in line and "--instances" in line and not (tmp / "r.csv").exists()


def test_verify_witnesses_without_naps_is_refused(setup, capsys):
    tmp, model, data, *_ = setup
    line = refused(capsys, "verify", model, "--label", "0", "--domain", "--witnesses", data, "--timeout", "2")
    assert "--witnesses" in line and "--naps" in line


def test_minimize_data_split_without_data_is_refused(setup, capsys):
    tmp, model, data, naps, _ = setup
    line = refused(capsys, "minimize", model, "--naps", naps, "--label", "0", "--domain", "--data-split",
                   "test", "--out", tmp / "m.json", "--timeout", "2", "--no-progress")
    assert "--data-split needs --data" in line and not (tmp / "m.json").exists()


# ---- data files ---------------------------------------------------------------------------------


def _bad_data(tmp, kind):
    x = np.random.default_rng(0).uniform(size=(5, 3)).astype(np.float32)
    path = tmp / f"{kind}.npz"
    if kind == "npy":
        with open(path, "wb") as f:
            np.save(f, x)
    elif kind == "text":
        path.write_text("label,x0,x1\n0,1,2\n")
    elif kind == "cut":
        np.savez(tmp / "whole.npz", x=x, y=np.zeros(5, int))
        raw = (tmp / "whole.npz").read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "one_row":
        np.savez(path, x=x[:1], y=np.zeros(1, int))
    elif kind == "nan":
        x[2, 1] = np.nan
        np.savez(path, x=x, y=np.zeros(5, int))
    else:  # a zip of members that are no arrays
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x.npy", b"garbage")
            z.writestr("y.npy", b"garbage")
    return path


@pytest.mark.parametrize("command", ["mine", "codes", "verify"])
@pytest.mark.parametrize(
    "kind, msg",
    [
        ("npy", "is a single .npy array, not an .npz file"),
        ("text", "is not an .npz file (not a zip archive of arrays)"),
        ("cut", "is not a readable .npz file"),
        ("nan", "inputs contain NaN or infinity"),
        ("zip", "inputs must be real numbers"),
    ],
)
def test_a_broken_data_file_is_one_line_naming_it(setup, capsys, command, kind, msg):
    tmp, model, data, naps, _ = setup
    bad = _bad_data(tmp, kind)
    args = {
        "mine": ["mine", model, bad, "--delta", "0.9", "--out", tmp / "n.json", "--no-progress"],
        "codes": ["codes", model, bad, "--no-progress"],
        "verify": ["verify", model, "--label", "0", "--center", bad, "--eps", "0.1", "--timeout", "2"],
    }[command]
    line = refused(capsys, *args)
    assert msg in line and str(bad) in line
    assert not (tmp / "n.json").exists()


def test_codes_on_a_single_input_is_one_line(setup, capsys):
    tmp, model, *_ = setup
    line = refused(capsys, "codes", model, _bad_data(tmp, "one_row"), "--no-progress")
    assert "needs at least 2" in line


# ---- report: where --out goes -------------------------------------------------------------------


def test_report_out_under_a_file_says_so(setup, capsys):
    tmp, model, data, naps, _ = setup
    (tmp / "a_file").write_text("x")
    line = refused(capsys, "report", model, "--naps", naps, "--data", data, "--out", tmp / "a_file" / "rep",
                   "--no-progress")
    assert "a_file is a file, not a folder" in line
    assert sorted(os.listdir(tmp)) == sorted(["a_file", "d.npz", "m.onnx", "naps.json"])


def test_a_results_file_damaged_after_its_first_record_is_left_to_repair(tmp_path):
    """A crash can leave a bad middle line or a NUL-filled tail: the file is still ours (its
    first line is a record), so resuming repairs it instead of refusing it."""
    from napkit.verify.batch import check_results_file, read_results

    path = tmp_path / "r.jsonl"
    good = json.dumps({"id": "q0", "result": "verified"}) + "\n"
    path.write_bytes(good.encode() + b"garbage\n" + b"\x00" * 64)
    assert check_results_file(path) == path
    assert list(read_results(path, repair=True)) == ["q0"]


# ---- export-vnnlib: where --out goes ------------------------------------------------------------


def test_export_vnnlib_refuses_a_missing_parent_folder_as_report_does(setup, capsys):
    """export-vnnlib created the missing folders; report refused them: both refuse now."""
    tmp, model, data, naps, _ = setup
    before = sorted(os.listdir(tmp))
    for command in (["export-vnnlib", model, "--naps", naps, "--label", "0", "--domain"],
                    ["report", model, "--naps", naps, "--data", data, "--no-progress"]):
        line = refused(capsys, *command, "--out", tmp / "nowhere" / "exp")
        assert "nowhere does not exist" in line, line
    assert sorted(os.listdir(tmp)) == before


@pytest.mark.parametrize("form", ["current_folder", "symlink_to_empty_folder", "symlink_to_a_report"])
def test_report_fills_the_current_folder_or_a_linked_one_in_place(setup, capsys, existing_out_folder, form):
    """``--out .`` raised ValueError (a traceback) after all the work and left ``..queries.jsonl``;
    a link was replaced by a folder (the report missed the folder it names) and a stray
    ``.link.old-PID`` link was left behind."""
    tmp, model, data, naps, _ = setup
    real, out = existing_out_folder(tmp, form)
    args = ["report", model, "--naps", naps, "--data", data, "--no-progress"]
    if form == "symlink_to_a_report":
        assert run_cli(capsys, *args, "--out", out)[0] == 0
    code, _, err = run_cli(capsys, *args, "--out", out)
    assert code == 0, err
    assert (real / "index.html").is_file() and (real / ".napkit-report").is_file()
    links = [] if form == "current_folder" else ["link"]
    assert sorted(os.listdir(tmp)) == sorted(["d.npz", "m.onnx", "naps.json", "real", *links])
    assert form == "current_folder" or (tmp / "link").is_symlink()

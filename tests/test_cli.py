"""The command-line contract of DESIGN.md: JSON last line, exit codes, one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import cli_files, random_net
from napkit.cli import main
from napkit.network import to_onnx


@pytest.fixture
def files(tmp_path):
    model, data, net, _, _ = cli_files(tmp_path)
    return tmp_path, model, data, net


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_mine_stats_monitor_round(files, capsys):
    """The CLI prints what the library computes on the same files."""
    from napkit.network import load_model
    from napkit.patterns import NAPMonitor, NAPSet, nap_stats

    tmp, model, data, _ = files
    naps = tmp / "naps.json"
    code, out, err = run(["mine", model, data, "--delta", "0.9", "--out", naps, "--json"], capsys)
    assert code == 0, err
    res = last_json(out)
    assert res["classes"] == [0, 1, 2] and len(res["neurons"]) == 3 and res["seconds"] >= 0
    net, d = load_model(model), np.load(data)
    loaded = NAPSet.load(naps, net)
    assert res["neurons"] == loaded.sizes().tolist()
    code, out, _ = run(["stats", model, naps, data, "--json"], capsys)
    res = last_json(out)
    want = nap_stats(net, loaded, d["x"], d["y"], progress=False).to_dict()
    assert code == 0 and res["recall"] == want["recall"] and res["precision"] == want["precision"]
    code, out, _ = run(["monitor", model, naps, data, "--tolerance", "1", "--json"], capsys)
    res = last_json(out)
    rep = NAPMonitor(net, tolerance=1).set_naps(loaded).evaluate(d["x"], d["y"])
    assert code == 0 and res["flagged_rate"] == pytest.approx(rep.flagged_rate)
    assert res["misclassified_caught"] == pytest.approx(rep.misclassified_caught)
    assert res["auroc"] == pytest.approx(rep.auroc)


def test_human_output_has_a_table(files, capsys):
    tmp, model, data, _ = files
    code, out, _ = run(
        ["mine", model, data, "--delta", "0.95", "--out", tmp / "n.json", "--no-progress"], capsys
    )
    assert code == 0 and "constrained" in out and "wrote" in out


def test_layers_option_selects_layers(files, capsys):
    tmp, model, data, net = files
    naps = tmp / "one.json"
    code, out, err = run(
        [
            "mine",
            model,
            data,
            "--delta",
            "0.9",
            "--layers",
            net.layer_names[1],
            "--out",
            naps,
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(naps.read_text())["layers"] == [{"name": net.layer_names[1], "size": 24}]


@pytest.mark.parametrize(
    "args, msg",
    [
        (["mine", "{model}", "{data}", "--delta", "0.4", "--out", "{tmp}/n.json"], "δ"),
        (["mine", "{model}", "{data}", "--delta", "1.5", "--out", "{tmp}/n.json"], "δ"),
        (
            ["mine", "{model}", "{tmp}/none.npz", "--delta", "0.9", "--out", "{tmp}/n.json"],
            "not found",
        ),
        (
            ["mine", "{model}", "{data}", "--delta", "0.9", "--out", "{tmp}/no/dir/n.json"],
            "does not exist",
        ),
        (
            [
                "mine",
                "{model}",
                "{data}",
                "--delta",
                "0.9",
                "--split",
                "train",
                "--out",
                "{tmp}/n.json",
            ],
            "x_train",
        ),
        (["stats", "{model}", "{tmp}/corrupt.json", "{data}"], "not valid JSON"),
        (["stats", "{tmp}/other.onnx", "{tmp}/good.json", "{data}"], "another model"),
        (
            ["mine", "{model}", "{tmp}/badshape.npz", "--delta", "0.9", "--out", "{tmp}/n.json"],
            "do not fit",
        ),
        (["mine", "{model}", "{tmp}/nan.npz", "--delta", "0.9", "--out", "{tmp}/n.json"], "NaN"),
        (
            ["mine", "{model}", "{tmp}/badlabels.npz", "--delta", "0.9", "--out", "{tmp}/n.json"],
            "labels",
        ),
        (
            ["mine", "{model}", "{tmp}/fewlabels.npz", "--delta", "0.9", "--out", "{tmp}/n.json"],
            "labels",
        ),
        (
            ["mine", "{model}", "{tmp}/onlyone.npz", "--delta", "0.9", "--out", "{tmp}/n.json"],
            "class 1 has no",
        ),
        (["monitor", "{model}", "{tmp}/good.json", "{data}", "--tolerance", "-1"], "γ"),
        (
            ["mine", "{data}", "{data}", "--delta", "0.9", "--out", "{tmp}/n.json"],
            "unknown model format",
        ),
        (["mine", "{model}", "{data}", "--delta", "abc", "--out", "{tmp}/n.json"], "delta"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(files, capsys, args, msg):
    tmp, model, data, net = files
    (tmp / "corrupt.json").write_text("{oops")
    to_onnx(random_net(22, sizes=(8, 32, 24, 3)), tmp / "other.onnx")
    assert main(["mine", str(model), str(data), "--delta", "0.9", "--out", str(tmp / "good.json")]) == 0
    np.savez(tmp / "badshape.npz", x=np.zeros((5, 7)), y=np.zeros(5, int))
    np.savez(tmp / "nan.npz", x=np.full((5, 8), np.nan), y=np.zeros(5, int))
    np.savez(tmp / "badlabels.npz", x=np.zeros((5, 8)), y=np.array([0, 1, 2, 3, 9]))
    np.savez(tmp / "fewlabels.npz", x=np.zeros((5, 8)), y=np.zeros(4, int))
    x1 = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32)
    only0 = net.predict(x1) == 0
    np.savez(tmp / "onlyone.npz", x=x1[only0], y=np.zeros(int(only0.sum()), int))
    capsys.readouterr()
    filled = [a.format(model=model, data=data, tmp=tmp) for a in args]
    before = set(os.listdir(tmp))
    code, out, err = run(filled, capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and msg in lines[0], err
    assert "Traceback" not in err
    assert set(os.listdir(tmp)) == before


def test_console_script_runs_as_a_process(files):
    tmp, model, data, _ = files
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "napkit.cli",
            "mine",
            str(model),
            str(data),
            "--delta",
            "0.3",
            "--out",
            str(tmp / "n.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "δ" in proc.stderr


def test_demo_writes_its_report(tmp_path, capsys):
    code, out, err = run(["demo", "--out", tmp_path / "demo", "--json"], capsys)
    assert code == 0, err
    res = last_json(out)
    for key in ("report", "naps", "recall", "verified"):
        assert key in res
    assert len(res["recall"]) == 10
    for name in (
        "index.html",
        "naps.json",
        "metrics.json",
        "naps.png",
        "delta_sweep.png",
        "model.safetensors",
    ):
        assert (tmp_path / "demo" / name).exists()
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert [r["delta"] for r in metrics["sweep"]] == [1.0, 0.99, 0.95, 0.9]
    assert metrics["model"]["test_accuracy"] > 0.9


def test_capture_then_mine_from_the_store(files, capsys):
    tmp, model, data, _ = files
    store = tmp / "acts.zarr"
    code, out, err = run(
        ["capture", model, data, "--out", store, "--bits", "--batch-size", "64", "--json"], capsys
    )
    assert code == 0, err
    res = last_json(out)
    assert res["rows"] == 500 and res["mode"] == "bits" and res["resumed_from"] == 0
    code, out, err = run(["mine", model, store, "--delta", "0.9", "--out", tmp / "s.json", "--json"], capsys)
    assert code == 0, err
    run(["mine", model, data, "--delta", "0.9", "--out", tmp / "d.json"], capsys)
    from_store = json.loads((tmp / "s.json").read_text())["naps"]
    from_data = json.loads((tmp / "d.json").read_text())["naps"]
    assert from_store == from_data
    # a store of this model is refused for another one
    to_onnx(random_net(22, sizes=(8, 32, 24, 3)), tmp / "other.onnx")
    code, _, err = run(["mine", tmp / "other.onnx", store, "--delta", "0.9", "--out", tmp / "o.json"], capsys)
    assert code == 2 and "another model" in err


def test_demo_refuses_a_folder_with_other_content_before_any_work(tmp_path, capsys, monkeypatch):
    import napkit.demo

    def no_work(*a, **k):
        raise AssertionError("the demo trained before checking --out")

    monkeypatch.setattr(napkit.demo, "load_digits_split", no_work)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    code, stdout, err = run(["demo", "--out", out, "--json"], capsys)
    assert code == 2 and err.count("\n") == 1 and "other content" in err and stdout == ""
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_demo_leaves_no_half_written_folder(tmp_path, capsys, monkeypatch, existing):
    """Ctrl-C after the model and the store were written: exit 130, ``--out`` as it was
    (absent, or an earlier report untouched), and no temporary folder beside it."""
    import napkit.demo

    monkeypatch.setattr(napkit.demo, "train_mlp", lambda x, y, **k: random_net(0, (x.shape[1], 8, 10)))

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(napkit.demo, "mine_store", ctrl_c)
    out = tmp_path / "demo"
    if existing:
        out.mkdir()
        (out / ".napkit-report").write_text("written by napkit report\n")
        (out / "index.html").write_text("earlier")
    code, _, err = run(["demo", "--out", out, "--no-progress"], capsys)
    assert code == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["demo"] if existing else [])
    if existing:
        assert sorted(p.name for p in out.iterdir()) == [".napkit-report", "index.html"]
        assert (out / "index.html").read_text() == "earlier"


def test_result_lines_never_wrap_when_stdout_is_not_a_terminal(tmp_path, capsys):
    """README shows each result on one line; rich would wrap a pipe's output at 80 columns."""
    from napkit.verify import domain_box, robustness_spec, write_vnnlib

    model, _, net, _, _ = cli_files(tmp_path)
    prop = tmp_path / f"{'a_property_with_a_long_descriptive_name_' * 3}.vnnlib"
    write_vnnlib(prop, domain_box(8), robustness_spec(0, 3))
    code, out, err = run(["vnnlib", model, prop, "--timeout", "10", "--workers", "1"], capsys)
    assert code in (0, 1), err
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(prop.name) and lines[0].endswith(")")
    assert len(lines[0]) > 100


@pytest.mark.parametrize("args", [[], ["lm"]])
def test_bare_command_is_bad_input_one_line_on_stderr(args, capsys):
    """DESIGN.md: bad input exits 2 with a one-line message on stderr (stdout stays empty)."""
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("napkit: error: missing command")
    assert " ".join(["napkit", *args, "--help"]) in err


def test_json_mode_keeps_the_status_line_on_a_terminal_stderr(tmp_path, capsys, monkeypatch):
    """README: every command shows its progress on stderr when that is a terminal; --json
    only changes stdout (its last line is the JSON object). ``status_line`` itself stays
    silent when stderr is not a terminal, so --json asks it for the line."""
    from contextlib import contextmanager

    import napkit.progress
    from napkit.verify import domain_box, robustness_spec, write_vnnlib

    asked = []

    @contextmanager
    def status_line(description, enabled=True):
        asked.append((description, enabled))
        yield lambda text: None

    monkeypatch.setattr(napkit.progress, "status_line", status_line)
    model, _, _, _, _ = cli_files(tmp_path)
    prop = tmp_path / "p.vnnlib"
    write_vnnlib(prop, domain_box(8), robustness_spec(0, 3))
    for extra in (["--json"], ["--json", "--no-progress"]):
        code, out, err = run(["vnnlib", model, prop, "--timeout", "10", "--workers", "1", *extra], capsys)
        assert code in (0, 1) and last_json(out)["result"] in ("sat", "unsat")
    assert [enabled for _, enabled in asked] == [True, False]
    assert asked[0][0].startswith("deciding p.vnnlib")

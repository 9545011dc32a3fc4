"""`napkit report`: --json figures on the last line, bad input as one line on stderr with exit 2."""

import json

import numpy as np
import pytest

from napkit.cli import main
from napkit.network import save_model


@pytest.fixture(scope="module")
def files(tiny, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    save_model(tiny.net, tmp / "model.safetensors")
    tiny.naps.save(tmp / "naps.json")
    np.savez(tmp / "digits.npz", x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test,
             y_test=tiny.y_test)
    return tmp


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def base(files, out):
    return ["report", files / "model.safetensors", "--naps", files / "naps.json", "--data",
            files / "digits.npz", "--split", "test", "--out", out, "--no-progress"]


def test_json_prints_the_figures(files, tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, err = run([*base(files, out), "--mine-data", files / "digits.npz", "--mine-split", "train",
                             "--verify-timeout", "0.5", "--max-queries", "4", "--json"], capsys)
    assert code == 0, err
    figs = json.loads(stdout.strip().splitlines()[-1])
    assert figs["report"] == str(out / "index.html") and (out / "index.html").exists()
    assert len(figs["naps"]["classes"]) == 10 and figs["verification"]["queries"] == 4
    assert figs["sweep"][0]["delta"] == 1.0
    assert figs["image_shape"] == [8, 8]
    on_disk = json.loads((out / "figures.json").read_text())
    assert on_disk["monitor"] == figs["monitor"]


def test_text_output_names_the_report(files, tmp_path, capsys):
    code, stdout, err = run([*base(files, tmp_path / "r"), "--max-queries", "0"], capsys)
    assert code == 0, err
    assert "wrote" in stdout and "index.html" in stdout and "skipped" in stdout


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--image-shape", "8x8"], "--image-shape"),
        (["--image-shape", "7,7"], "image shape"),
        (["--verify-timeout", "0"], "--verify-timeout"),
        (["--verify-timeout", "nan"], "--verify-timeout"),
        (["--eps", "-0.1"], "--eps"),
        (["--max-queries", "-1"], "--max-queries"),
        (["--mine-split", "train"], "--mine-data"),
        (["--lo", "1", "--hi", "0"], "--lo"),
        (["--mine-data", "nowhere.npz"], "nowhere.npz"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys, extra, needle):
    out = tmp_path / "r"
    code, stdout, err = run([*base(files, out), *extra], capsys)
    assert code == 2
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_wrong_split_and_foreign_folder(files, tmp_path, capsys):
    args = base(files, tmp_path / "r")
    args[args.index("test")] = "nope"
    code, _, err = run(args, capsys)
    assert code == 2 and "x_nope" in err and not (tmp_path / "r").exists()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "a.txt").write_text("mine")
    code, _, err = run(base(files, taken), capsys)
    assert code == 2 and err.count("\n") == 1 and "other content" in err
    assert [p.name for p in taken.iterdir()] == ["a.txt"]

"""The CLI on bad or unusual input: invalid NAP files, labels out of range, an output path
that is a file, empty NAP lists, layer subsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import cli_files as make_cli_files
from napkit.cli import main


@pytest.fixture
def cli_files(tmp_path):
    model, data, net, x, y = make_cli_files(tmp_path)
    naps = tmp_path / "naps.json"
    assert main(["mine", str(model), str(data), "--delta", "0.9", "--out", str(naps), "--no-progress"]) == 0
    return tmp_path, model, data, naps, x, y


def _cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("edit", ["negative_label", "float_index", "bad_delta"])
def test_nap_file_fields_are_validated(cli_files, capsys, edit):
    tmp, model, data, naps, *_ = cli_files
    d = json.loads(naps.read_text())
    if edit == "negative_label":
        d["naps"][0]["label"] = -1
    elif edit == "float_index":
        d["naps"][0]["active"] = {"relu0": [1.7]}
    else:
        d["delta"] = 0.2
    bad = tmp / "bad.json"
    bad.write_text(json.dumps(d))
    code, _, err = _cli(["monitor", model, bad, data, "--json"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


# ---- CLI bad input -----------------------------------------------------------------------------


def test_cli_monitor_labels_out_of_range_exit_2(cli_files, capsys):
    tmp, model, _, naps, x, y = cli_files
    y = y.copy()
    y[0] = 7
    bad = tmp / "bad.npz"
    np.savez(bad, x=x, y=y)
    code, _, err = _cli(["monitor", model, naps, bad, "--json"], capsys)
    assert code == 2 and "labels" in err


def test_cli_capture_out_is_a_file_is_one_line_error(cli_files, capsys):
    _, model, data, *_ = cli_files
    try:
        code, _, err = _cli(["capture", model, data, "--out", data], capsys)
    except OSError as exc:
        pytest.fail(f"traceback: {exc!r}")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_cli_nap_file_without_naps_is_refused(cli_files, capsys):
    tmp, model, data, naps, *_ = cli_files
    d = json.loads(naps.read_text())
    d["naps"] = []
    empty = tmp / "empty.json"
    empty.write_text(json.dumps(d))
    for cmd in ("monitor", "stats"):
        try:
            code, _, err = _cli([cmd, model, empty, data, "--json"], capsys)
        except ValueError as exc:
            pytest.fail(f"{cmd}: traceback {exc!r}")
        assert code == 2, cmd


def test_cli_mine_from_store_refuses_layers_in_one_line(cli_files, capsys):
    """A store holds the layers chosen at capture; --layers on it is refused, nothing written."""
    tmp, model, data, *_ = cli_files
    store = tmp / "acts.zarr"
    assert _cli(["capture", model, data, "--out", store, "--no-progress"], capsys)[0] == 0
    out = tmp / "sub.json"
    code, _, err = _cli(
        ["mine", model, store, "--delta", "0.9", "--layers", "relu1", "--out", out, "--json"], capsys
    )
    assert code == 2 and "choose them at `napkit capture`" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_cli_verify_accepts_a_layer_subset_nap(cli_files, capsys):
    tmp, model, data, *_ = cli_files
    sub = tmp / "sub.json"
    args = ["mine", model, data, "--delta", "0.9", "--layers", "relu1", "--out", sub, "--no-progress"]
    assert _cli(args, capsys)[0] == 0
    code, _, err = _cli(
        ["verify", model, "--naps", sub, "--label", "0", "--domain", "--timeout", "2", "--json"], capsys
    )
    assert code in (0, 1), err


# ---- damaged stores, NAP files that do not fit the model, --layers lists ------------------------


def _damage(store, how):
    if how == "truncated chunk":
        chunk = store / "relu0" / "c" / "1" / "0"
        chunk.write_bytes(chunk.read_bytes()[:10])
    elif how == "garbled chunk":
        (store / "relu1" / "c" / "0" / "0").write_bytes(np.random.default_rng(0).bytes(200))
    elif how == "truncated array zarr.json":
        meta = store / "relu0" / "zarr.json"
        meta.write_text(meta.read_text()[:5])
    else:
        (store / "relu1" / "c" / "2" / "0").unlink()


@pytest.mark.parametrize(
    "how, msg",
    [
        ("truncated chunk", "chunk relu0/c/1/0 cannot be decoded"),
        ("garbled chunk", "chunk relu1/c/0/0 cannot be decoded"),
        ("truncated array zarr.json", "relu0/zarr.json cannot be read"),
        ("deleted chunk", "1 chunk(s) of relu1 are missing (e.g. c/2/0)"),
    ],
)
def test_cli_mine_from_a_damaged_store_is_one_line_exit_2(cli_files, capsys, how, msg):
    tmp, model, data, *_ = cli_files
    store = tmp / "acts.zarr"
    args = ["capture", model, data, "--out", store, "--batch-size", "100", "--no-progress"]
    assert _cli(args, capsys)[0] == 0
    _damage(store, how)
    out = tmp / "fs.json"
    code, _, err = _cli(["mine", model, store, "--delta", "0.99", "--out", out, "--json"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"store {store} is damaged: {msg}" in err
    assert not out.exists() and not [f for f in tmp.iterdir() if "partial" in f.name]


@pytest.mark.parametrize("cmd", ["stats", "monitor"])
@pytest.mark.parametrize(
    "edit, msg",
    [("label", "NAP for class 42"), ("layer", "names layer 'relu7'")],
)
def test_cli_nap_file_that_does_not_fit_the_model_is_refused(cli_files, capsys, cmd, edit, msg):
    tmp, model, data, naps, *_ = cli_files
    d = json.loads(naps.read_text())
    if edit == "label":
        d["naps"][0]["label"] = 42
    else:
        d["naps"][0]["active"]["relu7"] = [1]
    bad = tmp / "bad.json"
    bad.write_text(json.dumps(d))
    code, out, err = _cli([cmd, model, bad, data, "--json"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and msg in err
    assert out == ""


@pytest.mark.parametrize("layers, msg", [("", "names no layer"), ("relu1,relu1", "'relu1' more than once")])
@pytest.mark.parametrize("cmd", ["mine", "capture"])
def test_cli_empty_or_repeated_layers_are_refused(cli_files, capsys, layers, msg, cmd):
    tmp, model, data, *_ = cli_files
    out = tmp / ("o.json" if cmd == "mine" else "o.zarr")
    args = [cmd, model, data, "--layers", layers, "--out", out, "--no-progress"]
    code, _, err = _cli(args + (["--delta", "0.9"] if cmd == "mine" else []), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and msg in err
    assert not out.exists()

"""``napkit lm``: the demo's JSON contract and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from napkit.cli import main


def test_demo_prints_the_contract_keys_as_its_last_line(tmp_path, capsys):
    assert main(["lm", "demo", "--out", str(tmp_path / "d"), "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("probe_best_acc", "probe_selectivity", "probe_random_init_best_acc", "steer_effect_ratio",
                "steer_kl_reached", "seconds"):  # fmt: skip
        assert key in last
    assert (tmp_path / "d" / "figures.json").is_file() and (tmp_path / "d" / "probe_accuracy.png").is_file()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["lm", "steer", "--kl", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--kl must be a positive number" in err[0]
    assert main(["lm", "probe", "--model", str(tmp_path / "missing")]) == 2
    assert "not a local model folder" in capsys.readouterr().err
    assert main(["lm", "probe", "--c", "1", "--c", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "c_grid must hold positive" in err[0]


def test_probe_with_one_strength_reports_it(capsys):
    assert main(["lm", "probe", "--n", "60", "--c", "0.1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["probe_best_c"] == 0.1 and 0 <= res["probe_best_acc"] <= 1


def test_steer_refuses_bad_controls_and_an_existing_out_before_any_work(tmp_path, capsys):
    assert main(["lm", "steer", "--random", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--random must be at least 1" in err[0]
    out = tmp_path / "steer.json"
    out.write_text("keep")
    assert main(["lm", "steer", "--random", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0] and "--force" in err[0]
    assert out.read_text() == "keep"


def test_bad_input_on_a_loaded_model_is_still_one_line(capsys):
    """Loading the model prints nothing (transformers' progress bars are off in the CLI)."""
    args = ["lm", "patch", "--clean", "alice lives in", "--corrupted", "bob lives in the",
            "--answer", "paris", "--wrong", "rome"]
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("napkit: error:") and "4 tokens" in err[0], err


def test_steer_out_writes_the_measured_intervention(tiny, tmp_path, capsys):
    from napkit.lm.interventions import Intervention
    from napkit.lm.regime_steering import regime_vector

    out = tmp_path / "steer.json"
    assert main(["lm", "steer", "--layer", "3", "--random", "2", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    iv = Intervention.load(out, tiny)
    assert iv.module == res["steer_site"] == "blocks.3.hook_resid_post"
    assert iv.alpha == pytest.approx(res["steer_alpha"], rel=1e-5)  # the JSON rounds to 6 digits
    assert iv.positions is None and res["steer_add"] == "all"
    assert iv.vector.equal(regime_vector(tiny, iv.module, res["steer_take"]))

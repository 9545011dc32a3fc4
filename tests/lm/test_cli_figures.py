"""`napkit lm occupation-probe | pronoun-steer | sae-siblings`: JSON last line, one-line errors."""

from __future__ import annotations

import json

from napkit.cli import main
from napkit.cli_output import json_text
from napkit.lm.models import load_tiny, tiny_path
from napkit.lm.sae_siblings import sibling_study


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("napkit: error:"), err
    return err[0]


def test_occupation_commands_refuse_a_model_without_the_pronouns(capsys):
    assert main(["lm", "occupation-probe", "--model", str(tiny_path()), "--no-random-init"]) == 2
    assert "pronoun ' he' is not in the model's vocabulary" in one_error_line(capsys)
    assert main(["lm", "pronoun-steer", "--layer", "1", "--model", str(tiny_path())]) == 2
    assert "pronoun ' he' is not in the model's vocabulary" in one_error_line(capsys)


def test_bad_options_exit_2_with_one_line(tmp_path, capsys):
    assert main(["lm", "pronoun-steer", "--layer", "1", "--kl", "0", "--model", "x"]) == 2
    assert "--kl must be a positive number" in one_error_line(capsys)
    assert main(["lm", "occupation-probe", "--layers", "1,a", "--model", str(tiny_path())]) == 2
    assert "--layers" in one_error_line(capsys)
    assert main(["lm", "sae-siblings", "--plot", str(tmp_path / "no" / "x.png")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert main(["lm", "sae-siblings", "--layer", "7"]) == 2
    assert "layer must lie in 0..3" in one_error_line(capsys)


def test_sae_siblings_prints_json_last_and_writes_the_heat_map(tmp_path, capsys):
    plot = tmp_path / "map.png"
    args = [
        "lm",
        "sae-siblings",
        "--steps",
        "20",
        "--sentences",
        "40",
        "--contexts",
        "2",
        "--plot",
        str(plot),
    ]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    figures, _ = sibling_study(load_tiny(), layer=2, steps=20, n_sentences=40, n_contexts=2)
    assert out.pop("plot") == str(plot) and out == json.loads(json_text(figures))
    for m in ("sae_in", "sae_out", "dom", "unembed", "random"):
        assert f"{m}_success_mean" in out and f"{m}_confusion_mean" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"

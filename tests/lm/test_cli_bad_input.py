"""`napkit lm ...` on bad input: exit 2, one stderr line, nothing half-written, nothing replaced."""

from __future__ import annotations

import shutil

import pytest
import torch

from napkit.cli import main
from napkit.errors import NapkitError
from napkit.lm.models import tiny_path


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("napkit: error:"), err
    return err[0]


PAIR = ["--answer", "paris", "--wrong", "rome"]
SMALL_SNMF = ["--rank", "2", "--iters", "2", "--sentences", "5"]


def test_existing_outputs_are_kept_without_force(tmp_path, capsys):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    for args in (
        ["sae", "--out", kept, "--steps", "2", "--sentences", "5"],
        ["demo", "--out", kept],
        ["attribute", "--prompt", "alice lives in", *PAIR, "--plots", kept],
    ):
        assert main(["lm", *map(str, args)]) == 2
        assert "is not empty" in one_error_line(capsys) and (kept / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    png = tmp_path / "old.png"
    png.write_text("mine")
    assert main(["lm", "sae-siblings", "--plot", str(png)]) == 2
    assert "--force" in one_error_line(capsys) and png.read_text() == "mine"


def test_the_steering_vector_beside_out_is_not_replaced(tmp_path, capsys):
    """``steer --out x.json`` also writes x.safetensors: an existing one is someone's vector."""
    vec = tmp_path / "x.safetensors"
    vec.write_text("mine")
    assert main(["lm", "steer", "--random", "1", "--out", str(tmp_path / "x.json")]) == 2
    assert "x.safetensors exists" in one_error_line(capsys) and vec.read_text() == "mine"
    assert main(["lm", "steer", "--random", "1", "--out", str(vec), "--force"]) == 2
    assert ".json name" in one_error_line(capsys) and vec.read_text() == "mine"


def test_an_output_of_the_wrong_kind_is_one_line_not_a_traceback(tmp_path, capsys):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    assert main(["lm", "steer", "--random", "1", "--out", str(folder), "--force"]) == 2
    assert "is a folder" in one_error_line(capsys)
    assert main(["lm", "sae-siblings", "--plot", str(folder), "--force"]) == 2
    assert "is a folder" in one_error_line(capsys)
    assert main(["lm", "attribute", "--prompt", "alice lives in", *PAIR, "--plots", str(a_file)]) == 2
    assert "--plots" in one_error_line(capsys) and a_file.read_text() == "mine"
    assert main(["lm", "sae", "--out", str(a_file / "sae"), "--steps", "2", "--sentences", "5"]) == 2
    assert "is a file, not a folder" in one_error_line(capsys)
    assert main(["lm", "steer", "--random", "1", "--out", str(a_file / "v.json")]) == 2
    assert "is a file, not a folder" in one_error_line(capsys) and a_file.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.png"]  # no .tmp left


def test_an_intervention_saved_onto_a_folder_leaves_no_partial_file(tiny, tmp_path):
    from napkit.lm.interventions import Intervention

    iv = Intervention("blocks.0.hook_resid_post", vector=torch.ones(tiny.model.config.n_embd))
    (tmp_path / "iv.json").mkdir()
    with pytest.raises(NapkitError, match="is a folder"):
        iv.save(tmp_path / "iv.json", tiny)
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(NapkitError, match=".json name"):
        iv.save(tmp_path / "iv.safetensors", tiny)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["snmf", "--top", "-3"], "--top must be at least 1, got -3"),
        (["snmf", "--iters", "0"], "--iters must be at least 1, got 0"),
        (["sae", "--out", "{tmp}/sae", "--steps", "0"], "--steps must be at least 1, got 0"),
        (["attribute", "--prompt", "alice lives in", *PAIR, "--top", "99"], "(--top) must lie in [1, 20]"),
        (["sae-siblings", "--steps", "2", "--sentences", "3", "--contexts", "1"], "(--sentences)"),
        (["wordclass", "--windows", "20", "--seed", "-1"], "'--seed'"),
        (["sae", "--out", "{tmp}/sae", "--seed", "-1"], "'--seed'"),
    ],
)
def test_bad_counts_name_their_option(args, message, tmp_path, capsys):
    assert main(["lm", *(a.replace("{tmp}", str(tmp_path)) for a in args)]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "sae").exists()


def test_a_model_folder_without_tokenizer_or_with_cut_weights_is_one_line(tmp_path, capsys):
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_path() / name, no_tok / name)
    assert main(["lm", "snmf", "--model", str(no_tok), *SMALL_SNMF]) == 2
    assert "holds no tokenizer" in one_error_line(capsys)
    cut = shutil.copytree(tiny_path(), tmp_path / "cut")
    with (cut / "model.safetensors").open("r+b") as f:
        f.truncate(1000)
    assert main(["lm", "snmf", "--model", str(cut), *SMALL_SNMF]) == 2
    assert "unreadable weights file" in one_error_line(capsys)


def test_an_architecture_without_aliases_says_so(tmp_path, capsys):
    """`steer` reads TL-style aliases: on a GPT-NeoX folder there are none and no near name."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from napkit.lm.models import load_tiny

    tok = load_tiny().tokenizer
    cfg = GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        vocab_size=len(tok), max_position_embeddings=32)  # fmt: skip
    folder = tmp_path / "neox"
    GPTNeoXForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    out = tmp_path / "steer.json"
    assert main(["lm", "steer", "--random", "1", "--model", str(folder), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "'blocks.0.hook_resid_post'" in line and "aliases are defined for gpt2, llama" in line
    assert not out.exists() and not out.with_suffix(".safetensors").exists()


def test_a_prompt_longer_than_the_context_is_one_line(capsys):
    """The tiny model has 32 positions: a 41-token prompt was an IndexError in the embedding."""
    clean, corrupted = ("alice lives in paris and " * 8).strip(), ("bob lives in paris and " * 8).strip()
    assert main(["lm", "attribute", "--prompt", clean, *PAIR]) == 2
    assert "41 tokens exceed the model's context of 32" in one_error_line(capsys)
    assert main(["lm", "patch", "--clean", clean, "--corrupted", corrupted, *PAIR]) == 2
    assert "41 tokens exceed the model's context of 32" in one_error_line(capsys)


def test_a_broken_intervention_file_is_one_clear_error(tiny, tmp_path):
    """A vector file gone or cut short, a JSON without its module, or not an object at all."""
    import json

    from napkit.lm.interventions import Intervention

    path = Intervention("blocks.0.hook_resid_post", vector=torch.ones(128)).save(tmp_path / "iv.json", tiny)
    vec = tmp_path / "iv.safetensors"
    with vec.open("r+b") as f:
        f.truncate(10)
    with pytest.raises(NapkitError, match="cannot read the vector"):
        Intervention.load(path, tiny)
    vec.unlink()
    with pytest.raises(NapkitError, match="cannot read the vector"):
        Intervention.load(path, tiny)
    doc = json.loads(path.read_text())
    del doc["module"]
    path.write_text(json.dumps(doc))
    with pytest.raises(NapkitError, match="lacks module"):
        Intervention.load(path, tiny)
    path.write_text("[]")
    with pytest.raises(NapkitError, match="is not a napkit.intervention/1 file"):
        Intervention.load(path, tiny)

"""`napkit lm snmf | sae | patch | attribute | wordclass` on a tiny random model folder."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from napkit.errors import NapkitError
from napkit.lm.cli_methods import register


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random 2-layer GPT-2 over the grammar's vocabulary, saved as a local HF folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from napkit.lm.tokenizer import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(0)
    cfg = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=4,
        n_inner=64,
        activation_function="relu",
        vocab_size=len(tok),
        n_positions=32,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    path = tmp_path_factory.mktemp("model")
    GPT2LMHeadModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [str(a) for a in args], standalone_mode=False, catch_exceptions=True)

    return run


def last_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_snmf(cli, model_dir):
    out = last_json(
        cli("snmf", "--model", model_dir, "--rank", 4, "--iters", 20, "--sentences", 20, "--json")
    )
    assert out["rank"] == 4 and len(out["features"]) == 4 and out["svd_rel_error"] <= out["rel_error"] + 1e-9


def test_sae(cli, model_dir, tmp_path):
    out = last_json(
        cli(
            "sae",
            "--model",
            model_dir,
            "--layer",
            1,
            "--k",
            4,
            "--steps",
            30,
            "--sentences",
            40,
            "--out",
            tmp_path / "sae",
            "--json",
        )
    )
    assert (tmp_path / "sae" / "cfg.json").exists() and out["d_sae"] == 128 and out["l0"] <= 4


def test_patch_and_its_bad_input(cli, model_dir):
    args = ["patch", "--model", model_dir, "--clean", "alice lives in", "--corrupted", "bob lives in"]
    out = last_json(cli(*args, "--answer", "paris", "--wrong", "rome", "--component", "head", "--json"))
    assert out["shape"] == [2, 4]
    r = cli(
        "patch",
        "--model",
        model_dir,
        "--clean",
        "alice lives in",
        "--corrupted",
        "bob lives in the",
        "--answer",
        "paris",
        "--wrong",
        "rome",
    )
    assert isinstance(r.exception, NapkitError) and "4 tokens" in str(r.exception) and "5" in str(r.exception)
    r = cli(*args, "--answer", "paris rome", "--wrong", "rome")
    assert isinstance(r.exception, NapkitError) and "not one" in str(r.exception)


def test_words_outside_the_vocabulary_are_refused_not_read_as_unk(cli, model_dir):
    """The word-level tokenizer maps an unknown word to <unk>: patching or attributing it
    would analyse a token that means nothing, so prompts and answers must be known words."""
    pair = ["--answer", "paris", "--wrong", "rome"]
    r = cli("patch", "--model", model_dir, "--clean", "qqq lives in", "--corrupted", "bob lives in", *pair)
    assert isinstance(r.exception, NapkitError) and "'qqq lives in'" in str(r.exception)
    r = cli("patch", "--model", model_dir, "--clean", "alice lives in", "--corrupted", "bob lives qqq", *pair)
    assert isinstance(r.exception, NapkitError) and "'bob lives qqq'" in str(r.exception)
    r = cli("attribute", "--model", model_dir, "--prompt", "alice lives in", "--answer", "zzzunknown",
            "--wrong", "rome")
    assert isinstance(r.exception, NapkitError) and "'zzzunknown' is not in the model's vocabulary" in str(
        r.exception)
    r = cli("attribute", "--model", model_dir, "--prompt", "alice qqq in", *pair)
    assert isinstance(r.exception, NapkitError) and "vocabulary does not know" in str(r.exception)


def test_attribute(cli, model_dir, tmp_path):
    out = last_json(
        cli(
            "attribute",
            "--model",
            model_dir,
            "--prompt",
            "alice lives in",
            "--answer",
            "paris",
            "--wrong",
            "rome",
            "--plots",
            tmp_path,
            "--json",
        )
    )
    assert out["sum_error"] <= 1e-4 and len(out["plots"]) == 2
    assert all((tmp_path / f"attention_layer{i}.png").exists() for i in range(2))


def test_wordclass(cli, model_dir):
    out = last_json(cli("wordclass", "--model", model_dir, "--windows", 200, "--json"))
    assert len(out["wordclass_purity_by_layer"]) == 3
    r = cli("wordclass", "--model", model_dir, "--windows", 3)
    assert isinstance(r.exception, NapkitError)

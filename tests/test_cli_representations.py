"""`napkit codes` and `napkit similarity`: JSON fields, PNG, bad input."""

import json

import numpy as np
import pytest

from helpers import random_net
from napkit.cli import main
from napkit.network import save_model


@pytest.fixture
def files(tmp_path):
    for seed in (1, 2):
        save_model(random_net(seed, sizes=(6, 24, 16, 3)), tmp_path / f"m{seed}.safetensors")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = random_net(1, sizes=(6, 24, 16, 3)).predict(x)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return tmp_path


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_codes_report(files, capsys):
    code, out, err = run(capsys, "codes", files / "m1.safetensors", files / "d.npz", "--no-kmeans", "--json")
    assert code == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["train_samples"] == 240 and res["test_samples"] == 60
    assert res["bits"] <= res["units"] == 40
    # the CLI prints the library's report on the same seeded 80/20 split
    from sklearn.model_selection import train_test_split

    from napkit.codes import codes_report
    from napkit.network import load_model

    d = np.load(files / "d.npz")
    x, xt, y, yt = train_test_split(d["x"], d["y"], test_size=0.2, random_state=0)
    want = codes_report(load_model(files / "m1.safetensors"), x, y, xt, yt, kmeans=False)
    for key in ("redundancy_test", "knn_accuracy", "bits"):
        assert res[key] == pytest.approx(want[key]), key


def test_similarity_of_two_models_and_of_one(files, capsys):
    png = files / "sim.png"
    code, out, err = run(
        capsys,
        "similarity",
        files / "m1.safetensors",
        files / "m2.safetensors",
        files / "d.npz",
        "--png",
        png,
        "--json",
    )
    assert code == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    m = np.array(res["matrix"])
    assert m.shape == (2, 2) and ((m >= -1e-9) & (m <= 1 + 1e-9)).all()
    assert png.exists() and png.stat().st_size > 0
    code, out, _ = run(capsys, "similarity", files / "m1.safetensors", files / "d.npz", "--json")
    self_sim = np.array(json.loads(out.strip().splitlines()[-1])["matrix"])
    np.testing.assert_allclose(np.diag(self_sim), 1.0, atol=1e-9)  # every layer is itself


@pytest.mark.parametrize(
    "args, msg",
    [
        (["similarity", "{d}"], "MODEL DATA"),
        (["similarity", "{m}", "{d}", "--samples", "1"], "--samples"),
        (["similarity", "{m}", "{d}", "--method", "nope"], "nope"),
        (["codes", "{m}", "{tmp}/none.npz"], "not"),
    ],
)
def test_bad_input(files, capsys, args, msg):
    filled = [a.format(d=files / "d.npz", m=files / "m1.safetensors", tmp=files) for a in args]
    code, _, err = run(capsys, *filled)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and msg in lines[0], err

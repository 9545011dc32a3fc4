"""`napkit verify`, `ambiguity`, `vnnlib`, `export-vnnlib`: verdicts, exit codes, round trip."""


import numpy as np
import pytest

from helpers import last_json, random_net, run_cli, three_class_files
from napkit.network import to_onnx


@pytest.fixture
def setup(tmp_path):
    return three_class_files(tmp_path)


def run(capsys, *args):
    return run_cli(capsys, *args)


def test_verify_domain_and_ball_agree_with_exit_codes(setup, capsys):
    tmp, model, data, naps, net = setup
    for label in range(3):
        code, out, err = run(
            capsys, "verify", model, "--naps", naps, "--label", label, "--domain", "--timeout", "20", "--json"
        )
        res = last_json(out)
        assert res["result"] in {"verified", "falsified", "unknown", "vacuous"}, err
        assert code == (1 if res["result"] == "falsified" else 0)
        if res["result"] == "falsified":
            x = np.array(res["counterexample"])
            assert ((0 <= x) & (x <= 1)).all()
            assert net.logits(x)[0].argmax() != label or res["strict"] is False
    code, out, _ = run(
        capsys,
        "verify",
        model,
        "--label",
        0,
        "--center",
        data,
        "--index",
        0,
        "--eps",
        "0.01",
        "--timeout",
        "20",
        "--json",
    )
    assert last_json(out)["nap"] is False


def test_export_then_vnnlib_agrees_with_verify(setup, capsys):
    tmp, model, data, naps, net = setup
    label = int(net.predict(np.load(data)["x"][:1])[0])
    code, out, _ = run(
        capsys,
        "verify",
        model,
        "--naps",
        naps,
        "--label",
        label,
        "--center",
        data,
        "--index",
        0,
        "--eps",
        "0.2",
        "--timeout",
        "20",
        "--json",
    )
    verdict = last_json(out)["result"]
    code, out, err = run(
        capsys,
        "export-vnnlib",
        model,
        "--naps",
        naps,
        "--label",
        label,
        "--center",
        data,
        "--index",
        0,
        "--eps",
        "0.2",
        "--out",
        tmp / "export",
        "--json",
    )
    assert code == 0, err
    files = last_json(out)
    code, out, err = run(capsys, "vnnlib", files["onnx"], files["vnnlib"], "--timeout", "20", "--json")
    answer = last_json(out)["result"]
    expected = {"verified": "unsat", "vacuous": "unsat", "falsified": "sat", "unknown": "unknown"}[verdict]
    if "unknown" not in (answer, expected):
        assert answer == expected, (verdict, answer, err)
    assert code == (1 if answer == "sat" else 0)


def test_ambiguity_lists_every_pair(setup, capsys):
    tmp, model, data, naps, net = setup
    code, out, err = run(capsys, "ambiguity", model, naps, "--timeout", "10", "--json")
    res = last_json(out)
    assert [(p["i"], p["j"]) for p in res["pairs"]] == [(0, 1), (0, 2), (1, 2)]
    assert code == (1 if res["falsified"] else 0)
    for p in res["pairs"]:
        assert p["result"] in {"verified", "falsified", "unknown"}


def test_vnnlib_with_the_shared_properties(capsys):
    from helpers import need_shared

    onnx_path = need_shared("benchmarks", "mnist_fc", "onnx", "mnist-net_256x2.onnx.gz")
    prop = need_shared("benchmarks", "mnist_fc", "vnnlib", "prop_0_0.03.vnnlib.gz")
    code, out, err = run(capsys, "vnnlib", onnx_path, prop, "--timeout", "20", "--json")
    res = last_json(out)
    assert res["result"] in {"unsat", "unknown"}, err  # ground truth: unsat
    assert code == 0


@pytest.mark.parametrize(
    "args, msg",
    [
        (
            [
                "verify",
                "{model}",
                "--naps",
                "{naps}",
                "--label",
                "0",
                "--domain",
                "--center",
                "{data}",
                "--eps",
                "0.1",
            ],
            "exactly one region",
        ),
        (["verify", "{model}", "--naps", "{naps}", "--label", "0"], "exactly one region"),
        (
            ["verify", "{model}", "--naps", "{naps}", "--label", "0", "--center", "{data}", "--eps", "-1"],
            "--eps",
        ),
        (["verify", "{model}", "--naps", "{naps}", "--label", "7", "--domain"], "--label"),
        (
            [
                "verify",
                "{model}",
                "--naps",
                "{naps}",
                "--label",
                "0",
                "--center",
                "{data}",
                "--index",
                "9999",
                "--eps",
                "0.1",
            ],
            "--index",
        ),
        (["verify", "{other}", "--naps", "{naps}", "--label", "0", "--domain"], "another model"),
        (["vnnlib", "{model}", "{tmp}/bad.vnnlib"], "bad.vnnlib"),
        (["vnnlib", "{model}", "{tmp}/wrongdim.vnnlib"], "1 inputs but the network has 3"),
        (["verify", "{tmp}/sigmoid.onnx", "--label", "0", "--domain"], "Sigmoid"),
        (
            [
                "export-vnnlib",
                "{model}",
                "--naps",
                "{naps}",
                "--label",
                "0",
                "--domain",
                "--out",
                "{tmp}/naps.json",
            ],
            "cannot",
        ),
    ],
)
def test_bad_input_exit_2(setup, capsys, args, msg):
    tmp, model, data, naps, net = setup
    to_onnx(random_net(32, sizes=(3, 10, 8, 3)), tmp / "other.onnx")
    (tmp / "bad.vnnlib").write_text("(declare-const X_0 Real)\n(assert (<= X_0 ")
    (tmp / "wrongdim.vnnlib").write_text(
        "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 0))\n"
        "(assert (>= Y_0 0))\n"
    )
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["y"], name="squash")],
        "s",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp / "sigmoid.onnx")
    filled = [a.format(model=model, data=data, naps=naps, tmp=tmp, other=tmp / "other.onnx") for a in args]
    code, out, err = run(capsys, *filled)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and msg in lines[0], err


def test_minimize_writes_a_smaller_reverified_nap(tmp_path, capsys):
    from napkit.network import ReluNetwork, save_model
    from napkit.patterns import NAPSet

    w0 = np.array([[-1.0, 0.0], [1.0, 1.0], [0.0, -1.0], [0.0, 1.0]])
    w1 = np.array([[0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0]])
    net = ReluNetwork((w0, w1), (np.array([0.5, 1.0, -1.0, -0.5]), np.array([1.0, 0.5])))
    save_model(net, tmp_path / "m.safetensors")
    naps = NAPSet(
        net.layer_names,
        net.layer_sizes,
        net.fingerprint(),
        0.9,
        np.array([0]),
        np.array([[False, True, False, True]]),
        np.array([[True, False, True, False]]),
        np.array([10]),
    )
    naps.save(tmp_path / "naps.json")
    x = np.random.default_rng(0).uniform(size=(300, 2))
    np.savez(tmp_path / "d.npz", x=x, y=net.predict(x))
    code, out, err = run(
        capsys,
        "minimize",
        tmp_path / "m.safetensors",
        "--naps",
        tmp_path / "naps.json",
        "--label",
        "0",
        "--domain",
        "--method",
        "greedy",
        "--data",
        tmp_path / "d.npz",
        "--out",
        tmp_path / "min.json",
        "--json",
    )
    assert code == 0, err
    res = last_json(out)
    assert (res["original"], res["kept"], res["final"]) == (4, 1, "verified")
    assert res["recall_after"] >= res["recall_before"]
    smaller = NAPSet.load(tmp_path / "min.json", net)
    assert smaller.inactive[0].tolist() == [True, False, False, False] and not smaller.active.any()


def test_verify_takes_a_witness_from_data(setup, capsys):
    tmp, model, data, naps, net = setup
    for label in range(3):
        code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", label, "--domain",
                             "--timeout", "20", "--witnesses", data, "--json")
        res = last_json(out)
        # the NAPs were mined from these inputs, so some of them follow each NAP
        assert res["witness"] == "given", err
        assert res["result"] in {"verified", "falsified", "unknown"}


def test_first_follower_is_a_strict_follower_or_none():
    from napkit.verify import first_follower, follows_phases

    net = random_net(4, sizes=(3, 10, 8, 3))
    x = np.random.default_rng(1).uniform(size=(500, 3))
    _, pre = net.forward(x)
    phases = [np.where(z[7] > 0, 1, -1).astype(np.int8) for z in pre]  # row 7's own pattern
    w = first_follower(net, phases, x, batch=64)
    assert w is not None
    first = int(np.argmax(follows_phases(pre, phases, strict=True)))
    np.testing.assert_array_equal(w, x[first])
    from napkit.verify import InputBox

    assert first_follower(net, phases, x, box=InputBox(np.full(3, 2.0), np.full(3, 3.0))) is None


def test_verify_witnesses_bad_input_is_one_line(setup, capsys, tmp_path):
    _, model, _, naps, _ = setup
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((5, 7), np.float32), y=np.zeros(5, np.int64))  # 7 inputs, model takes 3
    for path in (tmp_path / "absent.npz", wrong):
        code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", 0, "--domain",
                             "--witnesses", path)
        assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_one_query_gives_the_same_verdict_with_one_or_two_workers(setup, capsys):
    tmp, model, data, naps, net = setup
    verdicts = {}
    for workers in (1, 2):
        code, out, err = run(capsys, "verify", model, "--naps", naps, "--label", "1", "--domain",
                             "--timeout", "20", "--workers", workers, "--json")
        verdicts[workers] = last_json(out)["result"]
        assert code == (1 if verdicts[workers] == "falsified" else 0), err
    assert verdicts[1] == verdicts[2] != "unknown"  # decided well within the timeout on a 3-10-8-3 net
    code, out, err = run(capsys, "verify", model, "--label", "1", "--domain", "--workers", "0")
    assert code == 2 and "--workers" in err

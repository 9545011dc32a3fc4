"""Review of the foundation (network, capture, patterns, CLI mine/capture/stats/monitor).

Most tests here first demonstrated defects found in review and pass since they were fixed
(the last one, normalisation arithmetic in a torch forward, in the second session).
The plain tests pin behaviour that the review checked and found right.
"""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from helpers import cli_files as make_cli_files
from helpers import random_net
from napkit.capture import ActivationStore, iter_activations, record
from napkit.cli import main
from napkit.errors import NapkitError
from napkit.network import ReluNetwork, from_onnx, from_torch, load_model, onnx_logits
from napkit.patterns import NAPMiner, NAPMonitor, evaluate_many, mine, nap_stats


def _x(n=200, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


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


# ---- mining ---------------------------------------------------------------------------------


def test_delta_with_many_decimals_does_not_overflow():
    miner = NAPMiner(1, ("h",), (2,), "fp")
    n = 5000
    signs = np.zeros((n, 2), bool)
    signs[:, 0] = True  # unit 0 always active, unit 1 never
    miner.update(signs, np.zeros(n, int), np.zeros(n, int))
    naps = miner.naps(0.9000000000000001)
    assert naps.active[0].tolist() == [True, False]
    assert naps.inactive[0].tolist() == [False, True]


def test_delta_boundary_exact_for_short_decimals():
    """Checked right: p_j = δ exactly is in A, and 1 - p_j = δ exactly is in D."""
    miner = NAPMiner(1, ("h",), (3,), "fp")
    signs = np.zeros((100, 3), bool)
    signs[:99, 0] = True  # p = 0.99
    signs[:1, 1] = True  # 1 - p = 0.99
    signs[:98, 2] = True  # p = 0.98
    miner.update(signs, np.zeros(100, int), np.zeros(100, int))
    naps = miner.naps(0.99)
    assert naps.active[0].tolist() == [True, False, False]
    assert naps.inactive[0].tolist() == [False, True, False]


# ---- capture of torch modules ---------------------------------------------------------------


class _ReusedRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 5), nn.Linear(5, 6), nn.Linear(6, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.c(self.act(self.b(self.act(self.a(x)))))


def test_reused_relu_module_records_both_layers_or_refuses():
    torch.manual_seed(0)
    model = _ReusedRelu()
    try:
        batch = next(iter_activations(model, _x(), progress=False))
    except NapkitError:
        return  # a clear refusal is acceptable too
    assert sum(a.shape[1] for a in batch.acts.values()) == 5 + 6


def test_inplace_relu_records_preactivations():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(inplace=True), nn.Linear(5, 3))
    x = _x()
    batch = next(iter_activations(model, x, progress=False))
    with torch.no_grad():
        pre = model[0](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(batch.acts["1"], pre, rtol=1e-6, atol=1e-6)


class _FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.l, self.o = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.o(F.relu(self.l(x)))


def test_naps_of_a_functional_relu_model_can_be_evaluated():
    torch.manual_seed(0)
    model = _FunctionalRelu()
    x = _x()
    y = model(torch.from_numpy(x)).argmax(1).numpy()
    naps = mine(model, x, y, 0.6, classes=sorted(set(y.tolist())), progress=False)
    nap_stats(model, naps, x, y, progress=False)
    NAPMonitor(model).set_naps(naps).evaluate(x, y)


# ---- network import -------------------------------------------------------------------------


def test_from_torch_folds_normalisation_as_the_readme_says():
    class Norm(nn.Module):
        def __init__(self):
            super().__init__()
            self.l, self.o = nn.Linear(4, 5), nn.Linear(5, 3)

        def forward(self, x):
            return self.o(F.relu(self.l((x - 0.5) / 0.25)))

    torch.manual_seed(0)
    model = Norm().double()
    net = from_torch(model)
    x = _x().astype(np.float64)
    np.testing.assert_allclose(net.logits(x), model(torch.from_numpy(x)).detach().numpy(), atol=1e-9)


def test_from_torch_uses_execution_order():
    class Order(nn.Module):
        def __init__(self):
            super().__init__()
            self.out, self.inp, self.r = nn.Linear(5, 3), nn.Linear(4, 5), nn.ReLU()

        def forward(self, x):
            return self.out(self.r(self.inp(x)))

    assert from_torch(Order()).layer_sizes == (5,)


def test_from_torch_reused_relu_module():
    torch.manual_seed(0)
    assert from_torch(_ReusedRelu()).layer_sizes == (5, 6)


def _onnx(nodes, inits):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _onnx_tail():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    w1 = rng.normal(size=(2, 4)).astype(np.float32)
    inits = [numpy_helper.from_array(w0, "W0"), numpy_helper.from_array(w1, "W1")]
    tail = [
        helper.make_node("Gemm", ["xf", "W0"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W1"], ["y"], transB=1),
    ]
    return inits, tail


def test_onnx_cast_to_integer_is_refused_or_exact():
    inits, tail = _onnx_tail()
    nodes = [
        helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT32),
        helper.make_node("Cast", ["xi"], ["xf"], to=TensorProto.FLOAT),
        *tail,
    ]
    m = _onnx(nodes, inits)
    try:
        net = from_onnx(m)
    except NapkitError:
        return
    x = _x(5, 3) * 3
    np.testing.assert_allclose(net.logits(x), onnx_logits(m, x, net.input_shape), atol=1e-4)


def test_onnx_constant_value_float():
    inits, tail = _onnx_tail()
    nodes = [
        helper.make_node("Constant", [], ["c"], value_float=0.5),
        helper.make_node("Sub", ["x", "c"], ["xf"]),
        *tail,
    ]
    m = _onnx(nodes, inits)
    try:
        net = from_onnx(m)
    except NapkitError:
        return
    x = _x(5, 3)
    np.testing.assert_allclose(net.logits(x), onnx_logits(m, x, net.input_shape), atol=1e-4)


def test_checkpoint_layer_order_is_kept(tmp_path):
    torch.manual_seed(0)
    layers = [nn.Linear(3, 3) for _ in range(11)]
    sd = collections.OrderedDict()
    for i, lin in enumerate(layers, 1):
        sd[f"fc{i}.weight"], sd[f"fc{i}.bias"] = lin.weight.detach(), lin.bias.detach()
    torch.save(sd, tmp_path / "m.pt")
    seq = nn.Sequential(*[m for lin in layers for m in (lin, nn.ReLU())][:-1]).double()
    x = _x(5, 3).astype(np.float64)
    net = load_model(tmp_path / "m.pt")
    np.testing.assert_allclose(net.logits(x), seq(torch.from_numpy(x)).detach().numpy(), atol=1e-9)


def test_checkpoint_with_mixed_key_names_is_a_clear_error(tmp_path):
    sd = collections.OrderedDict(
        [("layers.0.weight", torch.zeros(3, 3)), ("layers.out.weight", torch.zeros(2, 3))]
    )
    torch.save(sd, tmp_path / "m.pt")
    try:
        load_model(tmp_path / "m.pt")
    except NapkitError:
        pass


# ---- metrics and monitor ----------------------------------------------------------------------


def test_monitor_refuses_labels_out_of_range():
    net = random_net(1)
    x = _x(300)
    y = net.predict(x)
    naps = mine(net, x, y, 0.9, progress=False)
    y[0] = 7
    with pytest.raises(NapkitError, match="labels"):
        NAPMonitor(net).set_naps(naps).evaluate(x, y)


def test_evaluate_many_refuses_naps_of_another_model():
    x = _x(300)
    net = random_net(1)
    naps = mine(net, x, net.predict(x), 0.9, progress=False)
    other = random_net(2)
    with pytest.raises(NapkitError, match="another model"):
        evaluate_many(other, [naps], x, other.predict(x), progress=False)


def test_monitor_on_empty_data_reports_undefined_rates():
    net = random_net(1)
    x = _x(300)
    y = net.predict(x)
    rep = NAPMonitor(net).set_naps(mine(net, x, y, 0.9, progress=False)).evaluate(x[:0], y[:0])
    assert rep.accuracy is None and rep.flagged_rate is None


def test_monitor_auroc_matches_sklearn_on_ties():
    """Checked right: AUROC by violation count (with ties) and max-softmax on the same inputs."""
    from sklearn.metrics import roc_auc_score

    net = random_net(5, sizes=(4, 16, 3))
    x = _x(400)
    y = net.predict(x)
    y[:60] = (y[:60] + 1) % 3
    mon = NAPMonitor(net, delta=0.9).fit(x, y)
    v, pred, soft = mon.scan(x)
    rep = mon.evaluate(x, y)
    wrong = pred != y
    assert rep.auroc == pytest.approx(roc_auc_score(wrong, v))
    assert rep.max_softmax_auroc == pytest.approx(roc_auc_score(wrong, -soft))


# ---- NAP file validation -----------------------------------------------------------------------


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


def test_cli_mine_from_store_respects_layers(cli_files, capsys):
    tmp, model, data, *_ = cli_files
    store = tmp / "acts.zarr"
    assert _cli(["capture", model, data, "--out", store, "--no-progress"], capsys)[0] == 0
    out = tmp / "sub.json"
    code, _, _ = _cli(
        ["mine", model, store, "--delta", "0.9", "--layers", "relu1", "--out", out, "--json"], capsys
    )
    if code == 2:
        return  # refusing the combination is fine too
    assert [layer["name"] for layer in json.loads(out.read_text())["layers"]] == ["relu1"]


def test_cli_verify_accepts_a_layer_subset_nap(cli_files, capsys):
    tmp, model, data, *_ = cli_files
    sub = tmp / "sub.json"
    args = ["mine", model, data, "--delta", "0.9", "--layers", "relu1", "--out", sub, "--no-progress"]
    assert _cli(args, capsys)[0] == 0
    code, _, err = _cli(
        ["verify", model, "--naps", sub, "--label", "0", "--domain", "--timeout", "2", "--json"], capsys
    )
    assert code in (0, 1), err


# ---- store resumption -------------------------------------------------------------------------


def test_capture_interrupted_while_creating_the_store_can_be_rerun(tmp_path, monkeypatch):
    net = random_net(2)
    x = _x(50)
    y = net.predict(x)
    real = ActivationStore._write_committed
    calls = []

    def crash_first(self, n):
        calls.append(n)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(self, n)

    monkeypatch.setattr(ActivationStore, "_write_committed", crash_first)
    with pytest.raises(KeyboardInterrupt):
        record(net, x, y, tmp_path / "s.zarr", progress=False)
    store = record(net, x, y, tmp_path / "s.zarr", progress=False)
    assert store.complete


def test_resume_with_another_batch_size_matches_a_full_capture(tmp_path, monkeypatch):
    """Checked right: a resumed capture keeps the store's chunking, whatever batch size is given."""
    import napkit.capture.to_store as to_store

    net = random_net(4)
    x = _x(100)
    y = net.predict(x)
    full = record(net, x, y, tmp_path / "full.zarr", mode="bits", batch_size=16, progress=False)
    real = to_store.iter_activations

    def crashing(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 3:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(to_store, "iter_activations", crashing)
    with pytest.raises(KeyboardInterrupt):
        record(net, x, y, tmp_path / "r.zarr", mode="bits", batch_size=16, progress=False)
    monkeypatch.setattr(to_store, "iter_activations", real)
    resumed = record(net, x, y, tmp_path / "r.zarr", mode="bits", batch_size=7, progress=False)
    for name in net.layer_names:
        np.testing.assert_array_equal(resumed.signs(name), full.signs(name))
    np.testing.assert_array_equal(resumed.labels(), full.labels())


def test_network_without_hidden_layer_mines_and_monitors():
    """Checked right: a network with no ReLU gives empty NAPs that everything accepts."""
    net = ReluNetwork((np.eye(3, 4),), (np.zeros(3),))
    x = _x()
    y = net.predict(x)
    naps = mine(net, x, y, 0.9, progress=False)
    assert naps.n_neurons == 0
    assert np.all(nap_stats(net, naps, x, y, progress=False).recall == 1.0)
    assert NAPMonitor(net).set_naps(naps).evaluate(x, y).flagged_rate == 0.0

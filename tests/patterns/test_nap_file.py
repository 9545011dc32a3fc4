import json

import numpy as np
import pytest

from helpers import random_net
from napkit.errors import NapkitError
from napkit.patterns import NAP_FORMAT, NAPSet, mine


@pytest.fixture
def mined():
    net = random_net(3, sizes=(4, 10, 7, 3))
    x = np.random.default_rng(0).normal(size=(300, 4))
    pred = net.predict(x)
    classes = sorted(set(pred.tolist()))
    return net, mine(net, x, pred, 0.9, all_samples=True, classes=classes, progress=False)


def test_round_trip(tmp_path, mined):
    net, naps = mined
    p = naps.save(tmp_path / "naps.json")
    back = NAPSet.load(p, net)
    np.testing.assert_array_equal(back.active, naps.active)
    np.testing.assert_array_equal(back.inactive, naps.inactive)
    assert back.labels.tolist() == naps.labels.tolist()
    assert back.delta == 0.9 and back.all_samples
    d = json.loads(p.read_text())
    assert d["format"] == NAP_FORMAT and d["fingerprint"] == net.fingerprint()
    assert [layer["size"] for layer in d["layers"]] == [10, 7]


def test_phases_and_per_layer_view(mined):
    _, naps = mined
    c = int(naps.labels[0])
    phases = naps.phases(c)
    nap = naps.nap(c)
    assert [len(p) for p in phases] == [10, 7]
    for k, name in enumerate(naps.layer_names):
        assert np.flatnonzero(phases[k] == 1).tolist() == nap.active[name].tolist()
        assert np.flatnonzero(phases[k] == -1).tolist() == nap.inactive[name].tolist()
    assert nap.size == int(naps.sizes()[0])
    with pytest.raises(NapkitError, match="no NAP for class 99"):
        naps.nap(99)


def test_nap_of_another_model_is_refused(tmp_path, mined):
    _, naps = mined
    p = naps.save(tmp_path / "naps.json")
    with pytest.raises(NapkitError, match="another model"):
        NAPSet.load(p, random_net(4, sizes=(4, 10, 7, 3)))


@pytest.mark.parametrize(
    "text, msg",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a napkit NAP file"),
        ('{"format": "other/1"}', "format"),
        ('{"format": "napkit.naps/1", "layers": []}', "holds no NAPs"),
    ],
)
def test_corrupt_files(tmp_path, text, msg):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(NapkitError, match=msg):
        NAPSet.load(p)


def test_out_of_range_unit_is_refused(tmp_path, mined):
    _, naps = mined
    d = naps.to_dict()
    d["naps"][0]["active"][naps.layer_names[0]] = [10]
    with pytest.raises(NapkitError, match="out of range"):
        NAPSet.from_dict(d)


def test_contradictory_nap_is_refused(mined):
    _, naps = mined
    d = naps.to_dict()
    name = naps.layer_names[0]
    d["naps"][0]["active"][name] = [0]
    d["naps"][0]["inactive"][name] = [0]
    with pytest.raises(NapkitError, match="both active and inactive"):
        NAPSet.from_dict(d)


def test_unwritable_path(tmp_path, mined):
    _, naps = mined
    with pytest.raises(NapkitError, match="cannot write"):
        naps.save(tmp_path / "missing" / "naps.json")
    assert not (tmp_path / "missing").exists()


def test_class_the_model_does_not_have_is_refused(tmp_path, mined):
    net, naps = mined
    d = naps.to_dict()
    d["naps"][0]["label"] = 42
    p = tmp_path / "l42.json"
    p.write_text(json.dumps(d))
    NAPSet.load(p)  # without a model there is nothing to compare with
    with pytest.raises(NapkitError, match="NAP for class 42, but the model has 3 output classes"):
        NAPSet.load(p, net)


@pytest.mark.parametrize("key", ["active", "inactive"])
def test_unknown_layer_in_a_nap_is_refused_naming_the_nearest(mined, key):
    _, naps = mined
    d = naps.to_dict()
    d["naps"][1][key]["relu7"] = [1]
    with pytest.raises(NapkitError, match=rf"'{key}' set names layer 'relu7'.*nearest: relu\d, relu\d"):
        NAPSet.from_dict(d)


def test_layer_list_naming_a_layer_the_model_lacks_is_refused(tmp_path, mined):
    net, naps = mined
    d = naps.to_dict()
    d["layers"].append({"name": "relu7", "size": 4})
    p = tmp_path / "h7.json"
    p.write_text(json.dumps(d))
    with pytest.raises(NapkitError, match="layer 'relu7', which the model does not have; nearest: relu"):
        NAPSet.load(p, net)


def test_layer_subset_nap_still_loads(tmp_path):
    net = random_net(3, sizes=(4, 10, 7, 3))
    x = np.random.default_rng(0).normal(size=(200, 4))
    pred = net.predict(x)
    classes = sorted(set(pred.tolist()))
    naps = mine(net, x, pred, 0.9, layers=["relu1"], classes=classes, progress=False)
    back = NAPSet.load(naps.save(tmp_path / "sub.json"), net)
    assert back.layer_names == ("relu1",)

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
        ("[" * 100000 + "]" * 100000, "not valid JSON"),  # RecursionError: a traceback before
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


# ---- fields out of their domain: one message naming the file, the class and the field ----------


def _edit(d: dict, what: str) -> tuple[str, str]:
    """Spoil field ``what`` of the second NAP (or of the file); the class and field to name."""
    nap = d["naps"][1]
    label, layer = nap["label"], d["layers"][0]["name"]
    if what == "negative_support":
        nap["support"] = -3
        return f"class {label}", "'support'"
    if what == "fractional_support":
        nap["support"] = 2.5
        return f"class {label}", "'support'"
    if what == "string_support":
        nap["support"] = "12"
        return f"class {label}", "'support'"
    if what == "repeated_active":
        nap["active"][layer] = [1, 1]
        nap["inactive"][layer] = []
        return f"class {label}", f"'active' units of layer '{layer}'"
    if what == "repeated_inactive":
        nap["inactive"][layer] = [2, 0, 2]
        nap["active"][layer] = []
        return f"class {label}", f"'inactive' units of layer '{layer}'"
    if what == "active_and_inactive":
        nap["active"][layer] = [3]
        nap["inactive"][layer] = [3]
        return f"class {label}", f"layer '{layer}'"
    if what == "index_too_large":
        nap["active"][layer] = [d["layers"][0]["size"]]
        return f"class {label}", f"'active' units of layer '{layer}'"
    if what == "negative_index":
        nap["inactive"][layer] = [-1]
        nap["active"][layer] = []
        return f"class {label}", f"'inactive' units of layer '{layer}'"
    if what == "delta_too_small":
        d["delta"] = 0.5
        return "", "'delta'"
    if what == "delta_not_a_number":
        d["delta"] = "high"
        return "", "'delta'"
    if what == "negative_label":
        nap["label"] = -1
        return "-1", "'label'"
    if what == "label_of_no_class":
        nap["label"] = 7
        return "class 7", "3 output classes"
    if what == "all_samples_not_a_bool":  # "false" was read as True
        d["all_samples"] = "false"
        return "", "'all_samples'"
    if what == "huge_label":  # beyond int64: numpy overflowed with a traceback
        nap["label"] = 10**30
        return str(10**30), "'label'"
    if what == "huge_support":
        nap["support"] = 10**30
        return f"class {label}", "'support'"
    if what == "huge_layer_size":
        d["layers"][0]["size"] = 10**30
        return "", "'layers'"
    if what == "layer_sizes_beyond_memory":  # fits int64, not memory: MemoryError before
        d["layers"][0]["size"] = 10**15
        return "", "'layers'"
    raise AssertionError(what)


@pytest.mark.parametrize(
    "what",
    [
        "negative_support", "fractional_support", "string_support", "repeated_active",
        "repeated_inactive", "active_and_inactive", "index_too_large", "negative_index",
        "delta_too_small", "delta_not_a_number", "negative_label", "label_of_no_class",
        "huge_label", "huge_support", "huge_layer_size", "layer_sizes_beyond_memory",
        "all_samples_not_a_bool",
    ],
)
def test_load_refuses_a_field_out_of_its_domain_naming_file_class_and_field(tmp_path, mined, what):
    """Negative or fractional support and repeated units were accepted before."""
    net, naps = mined
    d = naps.to_dict()
    cls, field = _edit(d, what)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(NapkitError) as info:
        NAPSet.load(p, net)
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg and cls in msg and field in msg, msg


def test_from_dict_names_the_nap_file_generically_without_a_path(mined):
    _, naps = mined
    d = naps.to_dict()
    d["naps"][0]["support"] = -1
    with pytest.raises(NapkitError, match=r"the NAP file, class \d+, 'support'"):
        NAPSet.from_dict(d)


def test_zero_support_and_empty_patterns_still_load(tmp_path, mined):
    """A class mined from no sample has support 0 and no constraint: still a valid file."""
    net, naps = mined
    d = naps.to_dict()
    d["naps"][0].update(support=0, active={}, inactive={})
    p = tmp_path / "z.json"
    p.write_text(json.dumps(d))
    back = NAPSet.load(p, net)
    assert back.support[0] == 0 and back.sizes()[0] == 0


def test_a_nap_file_without_layers_says_so_instead_of_an_empty_nearest_list(mined):
    _, naps = mined
    d = naps.to_dict()
    d["layers"] = []
    with pytest.raises(NapkitError) as info:
        NAPSet.from_dict(d)
    msg = str(info.value)
    assert "lists no layers" in msg and not msg.rstrip().endswith("nearest:"), msg

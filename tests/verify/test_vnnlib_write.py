"""export_nap_query: the ONNX with pre-activations and the VNN-LIB spec of a NAP property,
written both or neither, into an existing or new folder whose parent exists."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import random_net
from napkit.errors import NapkitError
from napkit.verify import domain_box, export_nap_query


def _query(net):
    return [np.ones(s, np.int8) for s in net.layer_sizes]


def test_export_writes_the_onnx_and_the_spec_into_a_new_folder(tmp_path):
    net = random_net(2)
    onnx_path, spec_path = export_nap_query(net, 1, _query(net), domain_box(4), tmp_path / "exp", "m")
    assert onnx_path == tmp_path / "exp" / "m-preacts.onnx" and onnx_path.stat().st_size > 0
    assert spec_path == tmp_path / "exp" / "nap_class1.vnnlib"
    assert spec_path.read_text().startswith(";")


def test_export_refuses_a_missing_parent_folder_and_creates_nothing(tmp_path):
    net = random_net(2)
    with pytest.raises(NapkitError, match="nowhere does not exist"):
        export_nap_query(net, 1, _query(net), domain_box(4), tmp_path / "nowhere" / "exp", "m")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_non_empty_folder_without_force(tmp_path):
    net = random_net(2)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "keep.txt").write_text("keep")
    with pytest.raises(NapkitError, match="not empty"):
        export_nap_query(net, 1, _query(net), domain_box(4), tmp_path / "exp", "m")
    assert [p.name for p in (tmp_path / "exp").iterdir()] == ["keep.txt"]
    export_nap_query(net, 1, _query(net), domain_box(4), tmp_path / "exp", "m", force=True)
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["keep.txt", "m-preacts.onnx",
                                                                   "nap_class1.vnnlib"]


def test_export_into_a_file_is_refused(tmp_path):
    net = random_net(2)
    (tmp_path / "exp").write_text("keep")
    with pytest.raises(NapkitError, match="not a folder"):
        export_nap_query(net, 1, _query(net), domain_box(4), tmp_path / "exp", "m")
    assert (tmp_path / "exp").read_text() == "keep"


def test_a_failing_spec_writer_leaves_neither_file_nor_a_new_folder(tmp_path, monkeypatch):
    net = random_net(2)

    def broken(path, *a, **k):
        path.write_text("(half a spec")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("napkit.verify.vnnlib_write.write_vnnlib", broken)
    with pytest.raises(NapkitError, match="No space left"):
        export_nap_query(net, 1, _query(net), domain_box(4), tmp_path / "exp", "m")
    assert list(tmp_path.iterdir()) == []

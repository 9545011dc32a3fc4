
import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.network import ReluNetwork
from napkit.verify import (
    linf_ball,
    read_vnnlib,
    read_vnnlib_text,
    robustness_spec,
    vnnlib_text,
    write_vnnlib,
)

SMALL = """; a comment
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (<= X_0 1.0))
(assert (>= X_0 -1.0))
(assert (and (<= X_1 0.5) (>= X_1 0.25)))
(assert (or (and (>= Y_1 Y_0)) (and (>= Y_2 Y_0))))
"""


def test_small_file_parses():
    s = read_vnnlib_text(SMALL)
    assert s.box.lower.tolist() == [-1.0, 0.25] and s.box.upper.tolist() == [1.0, 0.5]
    prop = s.to_property(2, 3)
    assert prop.output.label == 0 and prop.phases is None


def test_general_output_forms():
    text = SMALL.replace(
        "(assert (or (and (>= Y_1 Y_0)) (and (>= Y_2 Y_0))))",
        "(assert (<= (+ Y_0 (* 2 Y_1) (- Y_2)) 3))\n(assert (>= Y_0 -1))",
    )
    s = read_vnnlib_text(text)
    (c, d), = s.disjuncts
    rows = {tuple(r) + (v,) for r, v in zip(c.tolist(), d.tolist(), strict=True)}
    assert rows == {(1.0, 2.0, -1.0, 3.0), (-1.0, 0.0, 0.0, 1.0)}
    assert s.to_property(2, 3).output.label is None


@pytest.mark.parametrize(
    "bad, msg",
    [
        (SMALL + "(assert (<= X_0 1.0)", "unbalanced"),
        (SMALL + ")", "unbalanced"),
        (SMALL.replace("(declare-const X_1 Real)", ""), "before declaring"),
        (SMALL.replace("(assert (>= X_0 -1.0))", ""), "no lower or no upper"),
        (SMALL + "(assert (<= X_0 Y_1))", "mixing"),
        (SMALL + "(assert (foo X_0 1))", "unsupported operator"),
        (SMALL + "(assert (<= X_0 abc))", "unknown symbol"),
        (SMALL + "(check-sat)", "unsupported command"),
        (SMALL.replace("(assert (or (and (>= Y_1 Y_0)) (and (>= Y_2 Y_0))))", ""), "no output"),
        (SMALL + "(assert (<= (* Y_0 Y_1) 1))", "not linear"),
    ],
)
def test_malformed_text_is_refused(bad, msg):
    with pytest.raises(NapkitError, match=msg):
        read_vnnlib_text(bad)


def test_dimension_mismatch():
    s = read_vnnlib_text(SMALL)
    with pytest.raises(NapkitError, match="inputs"):
        s.to_property(3, 3)
    with pytest.raises(NapkitError, match="outputs"):
        s.to_property(2, 4)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(NapkitError, match="not found"):
        read_vnnlib(tmp_path / "nope.vnnlib")
    p = tmp_path / "x.vnnlib.gz"
    p.write_bytes(b"not gzip")
    with pytest.raises(NapkitError, match="not a readable"):
        read_vnnlib(p)


def test_shared_files_parse(mnist_fc):
    for f in sorted((mnist_fc / "vnnlib").glob("*.vnnlib.gz")):
        s = read_vnnlib(f)
        prop = s.to_property(784, 10)
        assert prop.box.n == 784 and prop.output.label is not None
        assert (prop.box.lower >= 0).all() and (prop.box.upper <= 1).all()
        assert len(prop.output.disjuncts) == 9


def test_round_trip_with_phases(tmp_path):
    rng = np.random.default_rng(0)
    net = ReluNetwork((rng.normal(size=(3, 2)), rng.normal(size=(2, 3)), rng.normal(size=(4, 2))),
                      (np.zeros(3), np.zeros(2), np.zeros(4)))
    box = linf_ball(np.array([0.3, 0.6]), 0.1)
    phases = [np.array([1, 0, -1], np.int8), np.array([0, 1], np.int8)]
    spec = robustness_spec(2, 4)
    p = write_vnnlib(tmp_path / "q.vnnlib.gz", box, spec, phases)
    back = read_vnnlib(p).to_property(2, 4, net.layer_sizes)
    assert np.array_equal(back.box.lower, box.lower) and np.array_equal(back.box.upper, box.upper)
    assert back.output.label == 2
    assert [a.tolist() for a in back.phases] == [a.tolist() for a in phases]
    # without phases, the text has exactly the logits as outputs
    assert "Y_4" not in vnnlib_text(box, spec)

import numpy as np
import pytest

from napkit.datasets import check_data, load_digits_split, load_npz
from napkit.errors import NapkitError


def test_uint8_pixels_are_scaled(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.full((3, 4), 255, np.uint8), y_train=np.arange(3))
    x, y = load_npz(tmp_path / "d.npz", "train")
    assert x.dtype == np.float32 and x.max() == 1.0 and y.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "x, y, msg",
    [
        (np.zeros(3), np.zeros(3), "sample axis"),
        (np.zeros((3, 2)), np.zeros((3, 1)), "1-D"),
        (np.zeros((3, 2)), np.array([0.5, 1, 2]), "whole numbers"),
        (np.zeros((3, 2)), np.array([-1, 0, 1]), "≥ 0"),
        (np.zeros((0, 2)), np.zeros(0), "no samples"),
        (np.array([["a", "b"]]), np.zeros(1), "real numbers"),
    ],
)
def test_bad_arrays(x, y, msg):
    with pytest.raises(NapkitError, match=msg):
        check_data(x, y)


def test_pickled_npz_is_not_loaded(tmp_path):
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(NapkitError, match="not a readable"):
        load_npz(tmp_path / "p.npz")


def test_not_an_npz(tmp_path):
    (tmp_path / "f.npz").write_text("hello")
    with pytest.raises(NapkitError, match=r"is not an \.npz file"):
        load_npz(tmp_path / "f.npz")


def test_digits_split_is_seeded():
    a = load_digits_split(seed=0)
    b = load_digits_split(seed=0)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert a[0].max() <= 1.0 and len(a[0]) + len(a[1]) == 1797

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.verify import (
    InputBox,
    check_phases,
    domain_box,
    follows_phases,
    linf_ball,
    merge_phases,
    robustness_spec,
)


def test_boxes():
    b = linf_ball(np.array([0.0, 0.5, 1.0]), 0.1)
    assert np.allclose(b.lower, [0.0, 0.4, 0.9]) and np.allclose(b.upper, [0.1, 0.6, 1.0])
    assert domain_box(4).n == 4 and (domain_box(4).upper == 1).all()
    with pytest.raises(NapkitError, match="empty input box"):
        InputBox(np.array([1.0]), np.array([0.0]))
    with pytest.raises(NapkitError):
        linf_ball(np.array([2.0]), 0.1)


def test_robustness_spec_closed_and_strict():
    s = robustness_spec(1, 3)
    y = np.array([[0.0, 1.0, 0.5], [1.0, 1.0, 0.0], [0.0, 0.5, 2.0]])
    assert s.violated(y).tolist() == [False, True, True]
    assert s.violated(y, strict=True).tolist() == [False, False, True]
    assert s.competitors == [0, 2]
    with pytest.raises(NapkitError):
        robustness_spec(3, 3)


def test_phases_checked_and_merged():
    with pytest.raises(NapkitError, match="layers"):
        check_phases([2, 2], [np.zeros(2)])
    with pytest.raises(NapkitError, match="units"):
        check_phases([2, 2], [np.zeros(2), np.zeros(3)])
    with pytest.raises(NapkitError, match="-1, 0 or"):
        check_phases([2], [np.array([2, 0])])
    assert check_phases([2], [np.zeros(2)]) is None
    m, conflict = merge_phases([np.array([1, 0, 0], np.int8)], [np.array([0, -1, 0], np.int8)])
    assert not conflict and m[0].tolist() == [1, -1, 0]
    _, conflict = merge_phases([np.array([1], np.int8)], [np.array([-1], np.int8)])
    assert conflict


def test_follows_closed_vs_strict():
    pre = [np.array([[0.0, -1.0], [1.0, 0.0]])]
    ph = [np.array([1, -1], np.int8)]
    assert follows_phases(pre, ph).tolist() == [True, True]
    assert follows_phases(pre, ph, strict=True).tolist() == [False, True]

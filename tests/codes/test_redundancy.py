"""Redundancy ratio on hand-made codes."""

import numpy as np
import pytest

from napkit.codes import distinct_codes, pack_codes, redundancy_ratio
from napkit.errors import NapkitError


def test_redundancy_hand_case():
    bits = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 1, 0]], dtype=bool)
    assert distinct_codes(bits) == 3
    assert redundancy_ratio(bits) == pytest.approx(2 / 5)
    assert redundancy_ratio(pack_codes(bits)) == pytest.approx(2 / 5)


def test_all_distinct_and_all_same():
    assert redundancy_ratio(np.eye(4, dtype=bool)) == 0.0
    assert redundancy_ratio(np.ones((4, 9), dtype=np.uint8)) == pytest.approx(3 / 4)


def test_no_samples_is_an_error():
    with pytest.raises(NapkitError):
        redundancy_ratio(np.zeros((0, 3), dtype=np.uint8))

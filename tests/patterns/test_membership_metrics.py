import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napkit.errors import NapkitError
from napkit.patterns import (
    NAPSet,
    StatsAccumulator,
    pack_signs,
    syntactic_disjoint,
    violations_for,
    violations_per_class,
)


@st.composite
def masks_and_patterns(draw):
    n = draw(st.integers(1, 130))  # crosses several 64-bit words
    c = draw(st.integers(1, 4))
    phase = draw(arrays(np.int8, (c, n), elements=st.integers(-1, 1)))
    signs = draw(arrays(bool, (draw(st.integers(1, 30)), n)))
    return phase == 1, phase == -1, signs


def naive_violations(active, inactive, signs):
    return np.array(
        [[int((a & ~s).sum() + (d & s).sum()) for a, d in zip(active, inactive, strict=True)] for s in signs]
    )


@settings(max_examples=150, deadline=None)
@given(masks_and_patterns())
def test_packed_violations_equal_naive_count(data):
    active, inactive, signs = data
    ref = naive_violations(active, inactive, signs)
    packed = pack_signs(signs)
    pa, pd = pack_signs(active), pack_signs(inactive)
    np.testing.assert_array_equal(violations_per_class(packed, pa, pd), ref)
    rows = np.arange(len(signs)) % len(active)
    np.testing.assert_array_equal(violations_for(packed, pa, pd, rows), ref[np.arange(len(signs)), rows])


def _napset(active, inactive, labels=None):
    c, n = active.shape
    return NAPSet(
        ("l",),
        (n,),
        "fp",
        0.9,
        np.arange(c) if labels is None else labels,
        active,
        inactive,
        np.ones(c),
    )


@settings(max_examples=100, deadline=None)
@given(masks_and_patterns(), st.integers(0, 3), st.data())
def test_recall_and_precision_equal_naive(data, tol, draw):
    active, inactive, signs = data
    c = len(active)
    labels = draw.draw(arrays(np.int64, len(signs), elements=st.integers(0, c - 1)))
    acc = StatsAccumulator(_napset(active, inactive), tol)
    half = len(signs) // 2
    acc.update(pack_signs(signs[:half]), labels[:half])
    acc.update(pack_signs(signs[half:]), labels[half:])
    stats = acc.result()
    follows = naive_violations(active, inactive, signs) <= tol
    for k in range(c):
        own = labels == k
        hit = (follows[:, k] & own).sum()
        if own.sum():
            assert stats.recall[k] == pytest.approx(hit / own.sum())
        else:
            assert np.isnan(stats.recall[k])
        if follows[:, k].sum():
            assert stats.precision[k] == pytest.approx(hit / follows[:, k].sum())
        else:
            assert np.isnan(stats.precision[k])


def test_syntactic_disjointness():
    active = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], bool)
    inactive = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 1]], bool)
    dis = syntactic_disjoint(_napset(active, inactive))
    # 0 needs unit1 off, 1 needs it on -> disjoint; 0 and 2 are compatible; 1 and 2 too
    assert dis.tolist() == [[False, True, False], [True, False, False], [False, False, False]]


def test_negative_tolerance_is_refused():
    with pytest.raises(NapkitError, match="γ"):
        StatsAccumulator(_napset(np.zeros((1, 2), bool), np.zeros((1, 2), bool)), -1)

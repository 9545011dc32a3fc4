"""Hamming distances between bit-packed codes, in blocks, and a k-NN classifier on them.

Codes are XOR-ed as 64-bit words and counted with ``np.bitwise_count``. The k nearest
references of each query are found block by block (queries × references), keeping a
running top-k, so memory is bounded by the block size and never quadratic in N. Ties in
distance go to the reference with the smaller index, which makes results deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from napkit.codes._input import as_labels
from napkit.codes.binary import check_codes
from napkit.errors import NapkitError


def as_words(codes: Any) -> np.ndarray:
    """Packed uint8 codes as a contiguous (samples, words) uint64 array (zero padded)."""
    c = check_codes(codes)
    pad = (-c.shape[1]) % 8
    if pad:
        c = np.concatenate([c, np.zeros((c.shape[0], pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(c).view(np.uint64)


def _same_width(a: Any, b: Any) -> None:
    """Codes compared must have as many bytes (zero padding to words would hide a mismatch)."""
    na, nb = check_codes(a, "a").shape[1], check_codes(b, "b").shape[1]
    if na != nb:
        raise NapkitError(f"codes of different lengths: {na} and {nb} bytes")


def _block_distances(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(len q, len r) int32 Hamming distances between word matrices."""
    x = q[:, None, 0] ^ r[None, :, 0]
    d = np.bitwise_count(x).astype(np.int32)
    for w in range(1, q.shape[1]):
        np.bitwise_xor(q[:, None, w], r[None, :, w], out=x)
        d += np.bitwise_count(x)
    return d


def hamming_distances(a: Any, b: Any) -> np.ndarray:
    """Full (len a, len b) Hamming distance matrix between packed codes (for small inputs)."""
    _same_width(a, b)
    wa, wb = as_words(a), as_words(b)
    if wa.shape[1] != wb.shape[1]:
        raise NapkitError(f"codes of different lengths: {wa.shape[1]} and {wb.shape[1]} words")
    return _block_distances(wa, wb)


def hamming_kneighbors(
    queries: Any, refs: Any, k: int, block_bytes: int = 1 << 22
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices (each queries × k, nearest first) of the k nearest refs.

    Memory is about ``block_bytes`` beyond inputs and outputs, whatever the sizes.
    """
    _same_width(queries, refs)
    wq, wr = as_words(queries), as_words(refs)
    if wq.shape[1] != wr.shape[1]:
        raise NapkitError("queries and references have codes of different lengths")
    n_ref = wr.shape[0]
    if not 1 <= k <= n_ref:
        raise NapkitError(f"k = {k} must be between 1 and the number of references ({n_ref})")
    pairs = max(block_bytes // 16, 4 * (k + 1))  # int32 distances and keys + temporaries
    bq = int(min(wq.shape[0], max(1, min(512, pairs // (k + 1)))))
    # keys distance * br + j must fit in int32 for the fast partition
    br_max = max(k + 1, (2**31 - 1) // (64 * wq.shape[1] + 1))
    br = int(min(n_ref, br_max, max(k + 1, pairs // bq)))
    dist = np.empty((wq.shape[0], k), dtype=np.int64)
    idx = np.empty((wq.shape[0], k), dtype=np.int64)
    for q0 in range(0, wq.shape[0], bq):
        q = wq[q0 : q0 + bq]
        best = np.empty((q.shape[0], 0), dtype=np.int64)  # keys: distance * n_ref + index
        for r0 in range(0, n_ref, br):
            d = _block_distances(q, wr[r0 : r0 + br])
            width = d.shape[1]
            d *= width
            d += np.arange(width, dtype=np.int32)
            if width > k:
                d = np.partition(d, k - 1, axis=1)[:, :k]
            dd, jj = np.divmod(d.astype(np.int64), width)
            cand = dd * n_ref + (jj + r0)
            best = np.concatenate([best, cand], axis=1) if best.shape[1] else cand
            if best.shape[1] > k:
                best = np.partition(best, k - 1, axis=1)[:, :k]
        best.sort(axis=1)
        dist[q0 : q0 + bq], idx[q0 : q0 + bq] = np.divmod(best, n_ref)
    return dist, idx


class HammingKNN(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier on bit-packed codes (Hamming distance, majority vote).

    Vote ties go to the smallest class label, as in scikit-learn.
    """

    def __init__(self, n_neighbors: int = 9, block_bytes: int = 1 << 22) -> None:
        self.n_neighbors = n_neighbors
        self.block_bytes = block_bytes

    def fit(self, X: Any, y: Any) -> HammingKNN:
        codes = check_codes(X)
        labels = as_labels(y, codes.shape[0])
        self.classes_, self._y = np.unique(labels, return_inverse=True)
        self._codes = codes
        return self

    def kneighbors(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_codes"):
            raise NapkitError("HammingKNN is not fitted yet")
        return hamming_kneighbors(X, self._codes, self.n_neighbors, self.block_bytes)

    def predict(self, X: Any) -> np.ndarray:
        _, idx = self.kneighbors(X)
        votes = self._y[idx]
        counts = np.zeros((votes.shape[0], self.classes_.shape[0]), dtype=np.int64)
        np.add.at(counts, (np.arange(votes.shape[0])[:, None], votes), 1)
        return self.classes_[counts.argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)``; labels are checked as in ``fit`` (whole numbers, one per code)."""
        pred = self.predict(X)
        labels = as_labels(y, pred.shape[0])
        if sample_weight is None:
            return float(np.mean(pred == labels))
        w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if w.shape != pred.shape or not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise NapkitError(f"sample_weight must be {pred.shape[0]} finite weights >= 0, not all zero")
        return float(np.average(pred == labels, weights=w))

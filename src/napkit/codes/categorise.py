"""Categorisation on codes: how well plain classifiers and clustering read the classes.

Lei et al. measure it with k-means (k = number of classes), k-NN and logistic
regression on the binary codes. Clustering accuracy is given two ways: the best
one-to-one matching of clusters to labels (Hungarian algorithm), and the greedy mapping
of each cluster to its majority label (what the authors' code does; it may map two
clusters to one label and so is never lower).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from napkit.codes._input import as_labels
from napkit.codes.binary import check_codes, unpack_codes
from napkit.errors import NapkitError

# _ONE_BLAS_THREAD: these fits make many small BLAS calls; on a busy machine, multi-threaded
# OpenBLAS spins and ran 60x slower (28 s instead of 0.5 s for 3000 MNIST codes).


def _contingency(y_true: Any, clusters: Any) -> np.ndarray:
    c = as_labels(clusters, np.size(clusters), "clusters")
    y = as_labels(y_true, c.shape[0], "labels")
    if y.shape[0] == 0:
        raise NapkitError("no samples to score")
    _, ci = np.unique(c, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    table = np.zeros((ci.max() + 1, yi.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, yi), 1)
    return table


def matched_accuracy(y_true: Any, clusters: Any) -> float:
    """Accuracy under the best one-to-one matching of clusters to labels."""
    table = _contingency(y_true, clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def greedy_accuracy(y_true: Any, clusters: Any) -> float:
    """Accuracy when every cluster predicts its majority label."""
    table = _contingency(y_true, clusters)
    return float(table.max(axis=1).sum() / table.sum())


def _features(codes: Any, n_bits: int | None) -> np.ndarray:
    return unpack_codes(check_codes(codes), n_bits).astype(np.float32)


def kmeans_accuracy(
    codes: Any,
    y: Any,
    n_clusters: int | None = None,
    n_bits: int | None = None,
    seed: int = 0,
    n_init: int = 4,
) -> dict[str, float]:
    """k-means on the code bits (k = number of classes); matched and greedy accuracy."""
    x = _features(codes, n_bits)
    labels = as_labels(y, x.shape[0])
    k = int(n_clusters or np.unique(labels).shape[0])
    if not 1 <= k <= x.shape[0]:
        raise NapkitError(f"cannot make {k} clusters of {x.shape[0]} samples")
    with threadpool_limits(limits=1, user_api="blas"):  # see _ONE_BLAS_THREAD
        clusters = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
    return {
        "matched": matched_accuracy(labels, clusters),
        "greedy": greedy_accuracy(labels, clusters),
    }


def logistic_accuracy(
    train_codes: Any,
    y_train: Any,
    test_codes: Any,
    y_test: Any,
    n_bits: int | None = None,
    seed: int = 0,
    max_iter: int = 500,
) -> float:
    """Test accuracy of a (multinomial) logistic regression trained on the code bits."""
    xtr, xte = _features(train_codes, n_bits), _features(test_codes, n_bits)
    if xtr.shape[1] != xte.shape[1]:
        raise NapkitError("train and test codes have different lengths")
    ytr, yte = as_labels(y_train, xtr.shape[0]), as_labels(y_test, xte.shape[0])
    if np.unique(ytr).shape[0] < 2:
        raise NapkitError("logistic regression needs at least two classes in the train labels")
    with threadpool_limits(limits=1, user_api="blas"):  # see _ONE_BLAS_THREAD
        model = LogisticRegression(max_iter=max_iter, random_state=seed).fit(xtr, ytr)
    return float((model.predict(xte) == yte).mean())

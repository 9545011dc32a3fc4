"""One call that measures everything codes offer for one network and one data split.

Meant to be called as is by the CLI (``napkit codes``): returns a JSON-ready dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napkit.codes._input import as_labels
from napkit.codes.binary import CodeEncoder, on_off_and_predictions
from napkit.codes.categorise import kmeans_accuracy, logistic_accuracy
from napkit.codes.hamming import HammingKNN
from napkit.codes.redundancy import distinct_codes
from napkit.errors import NapkitError
from napkit.network import ReluNetwork, from_torch


def codes_report(
    net: Any,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    layers: Sequence[int | str] | None = None,
    k: int = 9,
    seed: int = 0,
    kmeans: bool = True,
    logistic: bool = True,
    knn: bool = True,
) -> dict[str, Any]:
    """Redundancy, k-NN, logistic-regression and k-means figures of a network's codes.

    Codes of the chosen hidden layers (all by default) are fitted on the train inputs
    (constant units dropped), k-NN and logistic regression train on train codes and are
    scored on test codes, k-means clusters train and test codes separately (as Lei et
    al. do). ``net`` is a :class:`ReluNetwork` or a torch module of Linear and ReLU.
    If no unit varies over the train inputs, the constant units are kept (every code is
    the same) so that a sweep over tiny or untrained networks still gets its row.
    """
    if not isinstance(net, ReluNetwork):
        if hasattr(net, "named_modules"):
            net = from_torch(net)
        else:
            raise NapkitError(f"expected a ReluNetwork or a torch module, got {type(net).__name__}")
    bits_tr, pred_tr = on_off_and_predictions(net, x_train, layers)
    bits_te, pred_te = on_off_and_predictions(net, x_test, layers)
    ytr, yte = as_labels(y_train, bits_tr.shape[0]), as_labels(y_test, bits_te.shape[0])
    varying = bits_tr.any(axis=0) & ~bits_tr.all(axis=0)
    enc = CodeEncoder(drop_constant=bool(varying.any())).fit(bits_tr)
    ctr, cte = enc.transform(bits_tr), enc.transform(bits_te)
    n_tr, n_te = ctr.shape[0], cte.shape[0]
    d_tr, d_te = distinct_codes(ctr), distinct_codes(cte)
    names = [net.layer_names[i] for i in range(len(net.layer_sizes))]
    chosen = names if layers is None else [names[i] if isinstance(i, int) else i for i in layers]
    out: dict[str, Any] = {
        "layers": chosen,
        "units": int(enc.n_units_in_),
        "bits": int(enc.n_bits_),
        "varying_units": int(varying.sum()),
        "train_samples": n_tr,
        "test_samples": n_te,
        "train_accuracy": float((pred_tr == ytr).mean()),
        "test_accuracy": float((pred_te == yte).mean()),
        "distinct_train": d_tr,
        "distinct_test": d_te,
        "redundancy_train": (n_tr - d_tr) / n_tr,
        "redundancy_test": (n_te - d_te) / n_te,
    }
    if knn:
        out["knn_accuracy"] = float((HammingKNN(k).fit(ctr, ytr).predict(cte) == yte).mean())
    if logistic:
        out["logistic_accuracy"] = logistic_accuracy(ctr, ytr, cte, yte, enc.n_bits_, seed)
    if kmeans:
        n_classes = int(np.unique(ytr).shape[0])
        for split, codes, y in (("train", ctr, ytr), ("test", cte, yte)):
            acc = kmeans_accuracy(codes, y, n_classes, enc.n_bits_, seed)
            out[f"kmeans_{split}_matched"] = acc["matched"]
            out[f"kmeans_{split}_greedy"] = acc["greedy"]
    return out

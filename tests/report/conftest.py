"""A tiny trained model for the report tests: a 64-16-16-10 MLP on scikit-learn's digits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from napkit.datasets import load_digits_split
from napkit.network import ReluNetwork
from napkit.patterns import NAPSet, mine
from napkit.zoo import train_mlp


@dataclass
class Tiny:
    net: ReluNetwork
    naps: NAPSet
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# short verification for the shared report: 0.5 s per query, 6 solver queries at most
QUICK = {"verify_timeout": 0.5, "max_queries": 6}


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    x_tr, x_te, y_tr, y_te = load_digits_split(seed=0)
    net = train_mlp(x_tr, y_tr, hidden=(16, 16), epochs=15, seed=0)
    naps = mine(net, x_tr, y_tr, 0.95, progress=False)
    return Tiny(net, naps, x_tr, y_tr, x_te, y_te)


@pytest.fixture(scope="session")
def built_report(tiny, tmp_path_factory):
    """(folder, figures) of one report of the tiny model, with mining data (the δ sweep)."""
    from napkit.report import build_report

    out = tmp_path_factory.mktemp("rep") / "report"
    figs = build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, out,
                        mine_data=(tiny.x_train, tiny.y_train), source="tiny.safetensors", **QUICK)
    return out, figs

"""Cross-validated linear probes per layer and position, with a control task and baselines.

A probe is a standardised logistic regression scored by stratified k-fold accuracy. The
**control task** (Hewitt & Liang 2019) gives every value of a key (by default the token at
the probed position; for sequence-level labels, e.g. the cue word) a fixed random label with
the task's class balance: a probe that scores as well on it memorises rather than reads the
property. The control accuracy is the mean over :data:`CONTROL_DRAWS` draws of those labels: with
few keys one draw agrees with the task on a random share of them, and the shipped tiny model's
regime probe (16 cue words) gives selectivities from 0.285 to 0.525 across six single draws
(``benchmarks/lm_probe_draws.py``).
**Selectivity** = task accuracy − control accuracy. The **random-init baseline**
runs the same probes on the same architecture with fresh weights
(:func:`napkit.lm.models.random_init_like`).

**Probe capacity.** Hewitt & Liang found that the probe's capacity decides selectivity: a
probe free to memorise scores on the control task too, while a constrained one keeps the task
accuracy if the representation really holds the property. Each site's L2 strength is chosen
from :data:`C_GRID` by the one-standard-error rule (Hastie, Tibshirani & Friedman §7.10, the
``lambda.1se`` of glmnet): the most regularised probe whose mean task accuracy is within one
standard error (over the folds) of the best one. The choice looks at the task only; the
control probes at that site use the same strength. On the tiny model's binding probe this moves
the selectivity at the best site from 0.14 (scikit-learn's default C = 1 alone) to 0.64 at the
same accuracy 1.0 (``benchmarks/lm_probe_capacity.py``). There every strength reads the task
perfectly, so the rule takes the grid's end, 0.001, and the figure depends on where the grid
stops (0.32 at 0.1, 0.50 at 0.01). The accuracy reported is the chosen strength's on the same
folds that chose it (as glmnet's ``cv`` reports it), a mild optimism the rule itself limits.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napkit.errors import NapkitError
from napkit.lm.capture import capture
from napkit.lm.models import load

if TYPE_CHECKING:
    from sklearn.model_selection import BaseCrossValidator

FOLDS = 5
MAX_ITER = 2000
CONTROL_DRAWS = 5  # control-task label draws averaged per site (seeds seed .. seed + 4)
# inverse L2 strengths tried per site: scikit-learn's default and three decades stronger
C_GRID = (1.0, 0.1, 0.01, 0.001)


@dataclass
class ProbeResult:
    """Accuracies (modules × positions) of the task and control probes."""

    modules: list[str]
    positions: list[int]
    accuracy: np.ndarray
    control: np.ndarray  # NaN where the control task has one class
    c: np.ndarray  # the inverse L2 strength chosen per site (NaN where the task has one class)

    @property
    def best_index(self) -> tuple[int, int]:
        """(module row, position column) of the most accurate site."""
        i, j = np.unravel_index(int(np.nanargmax(self.accuracy)), self.accuracy.shape)
        return int(i), int(j)

    @property
    def best(self) -> tuple[str, int, float]:
        i, j = self.best_index
        return self.modules[i], self.positions[j], float(self.accuracy[i, j])

    @property
    def best_acc(self) -> float:
        return float(np.nanmax(self.accuracy))

    @property
    def selectivity(self) -> np.ndarray:
        return self.accuracy - self.control

    @property
    def max_selectivity(self) -> float:
        """The largest task − control gap over all probed sites."""
        return float(np.nanmax(self.selectivity))

    def to_dict(self) -> dict:
        m, p, a = self.best
        return {
            "modules": self.modules,
            "positions": self.positions,
            "accuracy": self.accuracy.round(4).tolist(),
            "control": np.where(np.isnan(self.control), None, self.control.round(4)).tolist(),
            "c": np.where(np.isnan(self.c), None, self.c).tolist(),
            "best": {"module": m, "position": p, "accuracy": a},
            "max_selectivity": self.max_selectivity,
        }


def control_labels(keys: Sequence, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A fixed random label per distinct key, drawn with the task's class proportions."""
    keys = np.asarray(keys)
    uniq, inverse = np.unique(keys, return_inverse=True)
    classes, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(seed)
    per_key = rng.choice(classes, size=len(uniq), p=counts / counts.sum())
    return per_key[inverse]


def _splits(y: np.ndarray, folds: int, seed: int):
    """Stratified k folds, k = ``folds`` or the smallest class count if that is lower (None: one class)."""
    from sklearn.model_selection import StratifiedKFold

    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        return None
    k = int(min(folds, counts.min()))
    if k < 2:
        raise NapkitError(
            f"each class needs at least 2 examples for cross-validation; counts {counts.tolist()}"
        )
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)


def fold_accuracies(
    x: np.ndarray, y: np.ndarray, c: float, cv: BaseCrossValidator, groups: np.ndarray | None = None
) -> np.ndarray:
    """Held-out accuracy per fold of a standardised logistic regression with inverse L2 strength ``c``."""
    from sklearn.exceptions import FitFailedWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER))
    with warnings.catch_warnings():  # a failed fold scores NaN; the callers say what that means
        warnings.simplefilter("ignore", FitFailedWarning)
        return cross_val_score(model, x, y, cv=cv, groups=groups)


def one_standard_error_choice(grid: Sequence[float], scores: np.ndarray) -> int:
    """Index of the smallest ``c`` whose mean fold score is within one standard error of the best.

    ``scores`` is [len(grid), folds]; the standard error is the best entry's fold standard
    deviation over √folds (the largest one when several entries share the best mean, so the
    choice does not depend on the grid's order). Ties (e.g. several strengths at accuracy 1.0)
    go to the strongest regularisation. A NaN score (a fold whose fit failed, e.g. one class
    in its training part) is refused.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] != len(grid):
        raise NapkitError(f"scores must be [len(grid) = {len(grid)}, folds], got shape {scores.shape}")
    if np.isnan(scores).any():
        raise NapkitError(
            "a cross-validation fold failed (NaN score): each training fold needs every class; "
            "use fewer folds or more examples per class or group"
        )
    mean = scores.mean(axis=1)
    top = mean >= mean.max() - 1e-12
    k = scores.shape[1]
    se = float(scores[top].std(axis=1, ddof=1).max() / np.sqrt(k)) if k > 1 else 0.0
    near = np.nonzero(mean >= mean.max() - se - 1e-12)[0]
    return int(near[np.argmin(np.asarray(grid, dtype=float)[near])])


def check_grid(c_grid: Sequence[float]) -> tuple[float, ...]:
    """The grid as floats; refuses an empty grid or a non-positive or non-finite strength."""
    grid = tuple(float(c) for c in c_grid)
    if not grid or not all(np.isfinite(c) and c > 0 for c in grid):
        raise NapkitError(f"c_grid must hold positive finite inverse L2 strengths, got {list(c_grid)}")
    return grid


def select_and_score(
    x: np.ndarray,
    y: np.ndarray,
    cv: BaseCrossValidator,
    c_grid: Sequence[float] = C_GRID,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """(accuracy, c): the cross-validated accuracy at the strength the one-SE rule picks."""
    grid = check_grid(c_grid)
    scores = np.array([fold_accuracies(x, y, c, cv, groups) for c in grid])
    i = one_standard_error_choice(grid, scores)
    return float(scores[i].mean()), grid[i]


def cv_accuracy(x: np.ndarray, y: np.ndarray, folds: int = FOLDS, seed: int = 0, c: float = 1.0) -> float:
    """Stratified k-fold accuracy of a standardised logistic regression (NaN for one class)."""
    cv = _splits(np.asarray(y), folds, seed)
    return float("nan") if cv is None else float(fold_accuracies(x, y, c, cv).mean())


def selected_cv_accuracy(
    x: np.ndarray, y: np.ndarray, folds: int = FOLDS, seed: int = 0, c_grid: Sequence[float] = C_GRID
) -> tuple[float, float]:
    """(accuracy, c) of the probe whose strength the one-SE rule picks ((NaN, NaN) for one class)."""
    cv = _splits(np.asarray(y), folds, seed)
    return (float("nan"), float("nan")) if cv is None else select_and_score(x, y, cv, c_grid)


def _control_accuracy(x, keys, y, folds: int, seed: int, draws: int, c: float = 1.0) -> float:
    """Mean control-task accuracy over ``draws`` label draws (NaN when every draw has one class)."""
    scores = [cv_accuracy(x, control_labels(keys, y, seed + d), folds, seed, c) for d in range(draws)]
    scores = [a for a in scores if not np.isnan(a)]
    return float(np.mean(scores)) if scores else float("nan")


def probe(
    lm,
    texts: Sequence[str],
    labels: Sequence[int],
    modules: Sequence[str],
    positions: Sequence[int],
    control_keys: Sequence | None = None,
    folds: int = FOLDS,
    seed: int = 0,
    control_draws: int = CONTROL_DRAWS,
    c_grid: Sequence[float] = C_GRID,
) -> ProbeResult:
    """Probe ``labels`` from each module at each position (one capture for all of them).

    Each site's L2 strength is the one-SE choice over ``c_grid`` (``c_grid=(1.0,)``: plain
    scikit-learn default). The control accuracy at a site is the mean over ``control_draws``
    control-label draws at that strength (seeds ``seed`` onwards; a draw with one class is
    skipped); ``control_draws=0`` fits no control (NaN), for baselines whose accuracy alone is
    reported.
    """
    lm = load(lm)
    y = np.asarray(labels)
    if len(y) != len(texts):
        raise NapkitError(f"{len(texts)} texts but {len(y)} labels")
    if len(np.unique(y)) < 2:
        raise NapkitError("a probe needs at least two classes in its labels")
    if control_draws < 0:
        raise NapkitError(f"control_draws must be 0 or more, got {control_draws}")
    grid = check_grid(c_grid)
    positions = [int(p) for p in positions]
    got = capture(lm, list(texts), list(modules), positions=positions)
    n, p = len(texts), len(positions)
    tokens = got.token.reshape(n, p)
    acc = np.full((len(modules), p), np.nan)
    ctl = np.full((len(modules), p), np.nan)
    cs = np.full((len(modules), p), np.nan)
    for i, name in enumerate(modules):
        x = got.acts[name].reshape(n, p, -1)
        if not np.isfinite(x).all():
            raise NapkitError(f"activations at {name} hold NaN or infinity")
        for j in range(p):
            acc[i, j], cs[i, j] = selected_cv_accuracy(x[:, j], y, folds, seed, grid)
            if control_draws:
                keys = tokens[:, j] if control_keys is None else np.asarray(control_keys)
                ctl[i, j] = _control_accuracy(x[:, j], keys, y, folds, seed, control_draws, cs[i, j])
    return ProbeResult(list(modules), positions, acc, ctl, cs)

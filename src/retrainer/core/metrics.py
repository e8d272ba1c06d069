"""Metrics that know their direction, so the gate and the monitor never special-case one.

>>> import numpy as np
>>> m = METRICS["accuracy"]
>>> m.bigger_is_better, m.better(0.9, 0.8)
(True, True)
>>> round(METRICS["mae"].compute(np.array([1.0, 2.0]), np.array([1.5, 2.5]), None), 3)
0.5
>>> sorted(compute_all("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]), None))
['mae', 'mape', 'r2', 'rmse']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

# y_true, y_pred, proba (probability of the positive class or (n, k) matrix, or None)
MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction. ``needs_proba`` metrics are NaN without scores."""

    name: str
    task: str
    bigger_is_better: bool
    fn: MetricFn
    needs_proba: bool = False

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None) -> float:
        if self.needs_proba and proba is None:
            return math.nan
        try:
            return float(self.fn(y_true, y_pred, proba))
        except ValueError:  # e.g. ROC AUC with one class present
            return math.nan

    def better(self, a: float, b: float) -> bool:
        """True when value ``a`` is strictly better than ``b``."""
        return a > b if self.bigger_is_better else a < b

    def improvement(self, new: float, old: float) -> float:
        """Signed improvement of ``new`` over ``old`` (positive is better)."""
        return new - old if self.bigger_is_better else old - new

    def degradation(self, live: float, baseline: float) -> float:
        """Relative degradation of ``live`` against ``baseline`` (0.2 = 20% worse)."""
        if not math.isfinite(live) or not math.isfinite(baseline) or baseline == 0:
            return math.nan
        return -self.improvement(live, baseline) / abs(baseline)


def _pos(proba: np.ndarray | None) -> np.ndarray:
    assert proba is not None
    return proba if proba.ndim == 1 else proba[:, 1]


def _auc(y: np.ndarray, _p: np.ndarray, proba: np.ndarray | None) -> float:
    assert proba is not None
    if proba.ndim == 2 and proba.shape[1] > 2:
        return float(skm.roc_auc_score(y, proba, multi_class="ovr"))
    return float(skm.roc_auc_score(y, _pos(proba)))


def _logloss(y: np.ndarray, _p: np.ndarray, proba: np.ndarray | None) -> float:
    assert proba is not None
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    return float(skm.log_loss(y, proba, labels=list(range(proba.shape[1]))))


def _brier(y: np.ndarray, _p: np.ndarray, proba: np.ndarray | None) -> float:
    assert proba is not None
    if proba.ndim == 2 and proba.shape[1] > 2:
        onehot = np.eye(proba.shape[1])[y.astype(int)]
        return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    return float(np.mean((_pos(proba) - y) ** 2))


def _f1(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    average = "binary" if len(np.unique(np.concatenate([y, p]))) <= 2 else "macro"
    return float(skm.f1_score(y, p, average=average, zero_division=0.0))


def _mape(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    return float(skm.mean_absolute_percentage_error(y, p))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", "classification", True, lambda y, p, _s: skm.accuracy_score(y, p)),
        Metric("f1", "classification", True, _f1),
        Metric("roc_auc", "classification", True, _auc, needs_proba=True),
        Metric("log_loss", "classification", False, _logloss, needs_proba=True),
        Metric("brier", "classification", False, _brier, needs_proba=True),
        Metric("mae", "regression", False, lambda y, p, _s: skm.mean_absolute_error(y, p)),
        Metric(
            "rmse", "regression", False, lambda y, p, _s: math.sqrt(skm.mean_squared_error(y, p))
        ),
        Metric("r2", "regression", True, lambda y, p, _s: skm.r2_score(y, p)),
        Metric("mape", "regression", False, _mape),
    ]
}

DEFAULT_PRIMARY = {"classification": "accuracy", "regression": "mae"}


def task_metrics(task: str) -> list[Metric]:
    """Every metric of a task, in their documented order."""
    return [m for m in METRICS.values() if m.task == task]


def compute_all(
    task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None
) -> dict[str, float]:
    """All metrics of ``task``; classification labels are class indices 0..k-1."""
    return {m.name: m.compute(y_true, y_pred, proba) for m in task_metrics(task)}

"""The computations behind core.metrics, on numpy and scikit-learn.

Imported only when a metric is computed, so reading a spec or a metric's direction never
loads scikit-learn. Every function takes ``(y_true, y_pred, proba)`` where ``proba`` is the
probability of the positive class, an ``(n, k)`` matrix, or None.

>>> import numpy as np
>>> from retrainer.core.metrics import METRICS
>>> sorted(FUNCTIONS) == sorted(METRICS)
True
>>> round(FUNCTIONS["rmse"](np.array([1.0, 2.0]), np.array([2.0, 3.0]), None), 3)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

# y_true, y_pred, proba (probability of the positive class or (n, k) matrix, or None)
MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


def _pos(proba: np.ndarray | None) -> np.ndarray:
    assert proba is not None
    return proba if proba.ndim == 1 else proba[:, 1]


def _accuracy(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    return float(skm.accuracy_score(y, p))


def _f1(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    average = "binary" if len(np.unique(np.concatenate([y, p]))) <= 2 else "macro"
    return float(skm.f1_score(y, p, average=average, zero_division=0.0))


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


def _mae(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    return float(skm.mean_absolute_error(y, p))


def _rmse(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    return math.sqrt(skm.mean_squared_error(y, p))


def _r2(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    return float(skm.r2_score(y, p))


def _mape(y: np.ndarray, p: np.ndarray, _s: np.ndarray | None) -> float:
    return float(skm.mean_absolute_percentage_error(y, p))


# one entry per metric of core.metrics.METRICS, by name
FUNCTIONS: dict[str, MetricFn] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "roc_auc": _auc,
    "log_loss": _logloss,
    "brier": _brier,
    "mae": _mae,
    "rmse": _rmse,
    "r2": _r2,
    "mape": _mape,
}

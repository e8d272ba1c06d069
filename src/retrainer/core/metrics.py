"""Metrics that know their direction, so the gate and the monitor never special-case one.

The definitions here (name, task, direction, whether scores are needed) import nothing
heavy; the numbers come from ``core.metric_fns`` (numpy and scikit-learn), imported the
first time a metric is computed.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from .metric_fns import MetricFn


@dataclass(frozen=True)
class Metric:
    """A named metric with its direction. ``needs_proba`` metrics are NaN without scores."""

    name: str
    task: str
    bigger_is_better: bool
    needs_proba: bool = False

    @property
    def fn(self) -> MetricFn:
        """The function computing this metric (imports scikit-learn on first use)."""
        from .metric_fns import FUNCTIONS

        return FUNCTIONS[self.name]

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


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", "classification", True),
        Metric("f1", "classification", True),
        Metric("roc_auc", "classification", True, needs_proba=True),
        Metric("log_loss", "classification", False, needs_proba=True),
        Metric("brier", "classification", False, needs_proba=True),
        Metric("mae", "regression", False),
        Metric("rmse", "regression", False),
        Metric("r2", "regression", True),
        Metric("mape", "regression", False),
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

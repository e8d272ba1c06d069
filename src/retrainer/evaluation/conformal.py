"""Calibrated prediction intervals for a regression model: split conformal.

The absolute residuals of a model on rows it was not fitted on (the temporal holdout, or a
fine-tune's validation slice) give one half-width ``q``: the ``ceil((n + 1) * coverage)``-th
smallest of the ``n`` residuals. For new rows exchangeable with those, ``prediction ± q``
holds the actual with probability at least ``coverage`` — no assumption on the model or the
noise's shape. Only ``q`` and its inputs are kept: the interval round-trips through JSON and
costs two additions on the serving path. Time-ordered data may drift away from the holdout;
the monitor reports each version's live coverage so that shows.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.normal(0, 1, 4000)
>>> iv = fit_interval(y[:2000], np.zeros(2000), coverage=0.9)
>>> lower, upper = iv.bounds(np.zeros(2000))
>>> 0.87 < covered_share(y[2000:], lower, upper) < 0.93
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputError

METHOD = "conformal"


@dataclass(frozen=True)
class ConformalInterval:
    """``prediction ± half_width`` covers an actual with probability ``coverage``; measured
    on ``residuals`` rows the model was not fitted on."""

    coverage: float
    half_width: float
    residuals: int

    def bounds(self, predictions: Any) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds around ``predictions``."""
        p = np.asarray(predictions, dtype=float)
        return p - self.half_width, p + self.half_width

    def covers(self, actual: Any, predicted: Any) -> np.ndarray:
        """Whether each actual lies within its prediction's interval."""
        err = np.abs(np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float))
        return np.asarray(err <= self.half_width)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "coverage": self.coverage,
            "half_width": self.half_width,
            "residuals": self.residuals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConformalInterval:
        """The interval a version stored (``details["interval"]``)."""
        try:
            return cls(float(data["coverage"]), float(data["half_width"]), int(data["residuals"]))
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f"A stored prediction interval must hold coverage, half_width and residuals; "
                f"got {dict(data)!r}. Retrain the version to store it again."
            ) from None


def min_rows(coverage: float) -> int:
    """The fewest residuals that give a finite interval at ``coverage``.

    >>> min_rows(0.9), min_rows(0.95)
    (9, 19)
    """
    return math.ceil(coverage / (1 - coverage) - 1e-9)


def fit_interval(y_true: Any, y_pred: Any, coverage: float) -> ConformalInterval:
    """The split-conformal interval from predictions on rows the model did not learn."""
    if not 0 < coverage < 1:
        raise InputError(
            f"calibration_coverage must be between 0 and 1 (exclusive), got {coverage!r}; "
            "e.g. 0.9 for an interval that holds nine actuals in ten."
        )
    err = np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float))
    err = np.sort(err[np.isfinite(err)])
    n = len(err)
    k = math.ceil((n + 1) * coverage)
    if k > n:
        raise InputError(
            f"A {coverage:g} prediction interval needs at least {min_rows(coverage)} held-out "
            f"rows to measure; there are {n}. Hold out more rows (training.holdout_fraction, "
            "fine_tune.validation_fraction) or lower calibration_coverage."
        )
    return ConformalInterval(float(coverage), float(err[k - 1]), n)


def covered_share(y_true: Any, lower: Any, upper: Any) -> float:
    """The share of actuals within their [lower, upper] bounds (NaN for no rows)."""
    y = np.asarray(y_true, dtype=float)
    if not len(y):
        return math.nan
    inside = (y >= np.asarray(lower, dtype=float)) & (y <= np.asarray(upper, dtype=float))
    return float(inside.mean())


def interval_bounds(
    interval: ConformalInterval, outputs: list[Any]
) -> tuple[list[float | None], list[float | None]]:
    """JSON-ready (lower, upper) lists for predictions ``outputs`` (None stays None).

    >>> interval_bounds(ConformalInterval(0.9, 0.5, 40), [1.0, None])
    ([0.5, None], [1.5, None])
    """
    w = interval.half_width
    lower = [None if v is None else float(v) - w for v in outputs]
    upper = [None if v is None else float(v) + w for v in outputs]
    return lower, upper

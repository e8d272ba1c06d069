"""Split-conformal prediction intervals: the coverage they promise holds on rows they were not
measured on, and too few residuals, a bad coverage or a broken stored interval are clear
errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from retrainer.core.errors import InputError
from retrainer.evaluation.conformal import (
    ConformalInterval,
    covered_share,
    fit_interval,
    interval_bounds,
    min_rows,
)


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear signal with heavy-tailed noise whose spread grows with the first feature."""
    x = rng.uniform(-2, 2, (n, 3))
    noise = rng.standard_t(3, n) * (0.5 + 0.4 * np.abs(x[:, 0]))
    return x, 1.5 * x[:, 0] - 0.8 * x[:, 1] + 0.3 * x[:, 2] + noise


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_coverage_holds_on_held_out_rows(coverage: float) -> None:
    rng = np.random.default_rng(14)
    x_fit, y_fit = _rows(rng, 2_000)
    x_cal, y_cal = _rows(rng, 1_000)
    x_new, y_new = _rows(rng, 20_000)
    model = LinearRegression().fit(x_fit, y_fit)
    interval = fit_interval(y_cal, model.predict(x_cal), coverage)
    assert interval.residuals == 1_000 and interval.coverage == coverage
    lower, upper = interval.bounds(model.predict(x_new))
    share = covered_share(y_new, lower, upper)
    # the calibration set's own sampling error (sd about sqrt(c(1-c)/1000) <= 0.013) dominates
    assert abs(share - coverage) < 0.03, share
    assert share == pytest.approx(interval.covers(y_new, model.predict(x_new)).mean())


def test_coverage_is_met_on_average_over_many_calibrations() -> None:
    rng = np.random.default_rng(7)
    shares = []
    for _ in range(400):  # small calibration sets: the guarantee is on average
        y_cal, y_new = rng.normal(0, 1, 19), rng.normal(0, 1, 500)
        interval = fit_interval(y_cal, np.zeros(19), 0.9)
        shares.append(covered_share(y_new, *interval.bounds(np.zeros(500))))
    # n = 19: each draw covers Beta(18, 2) = 0.9 in expectation (sd 0.065, of the mean 0.003)
    assert abs(float(np.mean(shares)) - 0.9) < 0.015
    assert min(shares) < 0.8 < 0.97 < max(shares)  # one small calibration set can miss a lot


def test_the_half_width_is_the_right_order_statistic() -> None:
    residuals = np.arange(1.0, 20.0)  # 19 residuals 1..19
    # ceil((19 + 1) * 0.9) = 18: the 18th smallest
    assert fit_interval(residuals, np.zeros(19), 0.9).half_width == 18.0
    assert fit_interval(-residuals, np.zeros(19), 0.5).half_width == 10.0  # |error|


def test_too_few_residuals_is_a_clear_error() -> None:
    assert min_rows(0.9) == 9 and min_rows(0.8) == 4 and min_rows(0.95) == 19
    fit_interval(np.ones(9), np.zeros(9), 0.9)  # the fewest that give a finite interval
    with pytest.raises(InputError) as info:
        fit_interval(np.ones(8), np.zeros(8), 0.9)
    msg = str(info.value)
    assert "A 0.9 prediction interval needs at least 9 held-out rows to measure" in msg
    assert "there are 8" in msg
    assert "training.holdout_fraction" in msg and "lower calibration_coverage" in msg


def test_missing_predictions_do_not_count_as_residuals() -> None:
    y = np.arange(12.0)
    pred = np.where(y < 4, np.nan, y)  # four rows without a prediction: 8 residuals left
    with pytest.raises(InputError, match="there are 8"):
        fit_interval(y, pred, 0.9)


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5, -0.1])
def test_coverage_outside_zero_and_one_is_refused(coverage: float) -> None:
    with pytest.raises(InputError, match="calibration_coverage must be between 0 and 1"):
        fit_interval(np.ones(50), np.zeros(50), coverage)


def test_the_stored_interval_round_trips_and_a_broken_one_is_named() -> None:
    interval = fit_interval(np.arange(40.0), np.zeros(40), 0.9)
    stored = interval.to_dict()
    assert stored["method"] == "conformal"
    assert ConformalInterval.from_dict(stored) == interval
    with pytest.raises(InputError, match="must hold coverage, half_width and residuals"):
        ConformalInterval.from_dict({"coverage": 0.9})


def test_bounds_for_json_keep_a_missing_prediction_missing() -> None:
    lower, upper = interval_bounds(ConformalInterval(0.9, 0.25, 40), [1.0, None, -2])
    assert lower == [0.75, None, -2.25] and upper == [1.25, None, -1.75]
    assert math.isnan(covered_share([], [], []))

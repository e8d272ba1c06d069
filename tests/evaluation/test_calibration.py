import json

import numpy as np
import pytest

from retrainer.core.errors import ConfigError, InputError
from retrainer.evaluation.calibration import (
    CalibrationReport,
    Calibrator,
    calibration_report,
    expected_calibration_error,
    fit_calibrator,
)

METHODS = ["sigmoid", "isotonic"]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def overconfident(n_classes: int, n: int = 4000, seed: int = 0):
    """True probabilities from logits z; the 'model' reports softmax(3 z): far too sure."""
    rng = np.random.default_rng(seed)
    if n_classes == 2:
        z = rng.normal(0, 1.5, n)
        y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
        return 1 / (1 + np.exp(-3 * z)), y
    z = rng.normal(0, 1.5, (n, n_classes))
    true = _softmax(z)
    y = (rng.random((n, 1)) > np.cumsum(true, axis=1)).sum(axis=1)
    return _softmax(3 * z), y


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibration_lowers_ece_and_brier_on_unseen_rows(method, n_classes):
    proba, y = overconfident(n_classes)
    cal = fit_calibrator(method, proba[:2000], y[:2000])
    assert cal is not None and cal.n_classes == n_classes
    test, y_test = proba[2000:], y[2000:]
    report = calibration_report(test, cal.apply(test), y_test)
    assert report.ece_after < 0.5 * report.ece_before
    assert report.brier_after < report.brier_before
    assert report.improved and report.n_rows == 2000


def test_binary_matrix_and_vector_agree():
    proba, y = overconfident(2)
    cal = fit_calibrator("sigmoid", proba, y)
    matrix = np.column_stack([1 - proba, proba])
    assert fit_calibrator("sigmoid", matrix, y) == cal
    out = cal.apply(matrix)
    assert out.shape == matrix.shape
    np.testing.assert_allclose(out[:, 1], cal.apply(proba))
    # the over-confidence is three-fold: Platt's slope on the log-odds recovers about 1/3
    assert cal.slopes[0] == pytest.approx(1 / 3, abs=0.05)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_apply_keeps_rows_summing_to_one_and_in_range(method, n_classes):
    proba, y = overconfident(n_classes, n=600)
    matrix = proba if proba.ndim == 2 else np.column_stack([1 - proba, proba])
    cal = fit_calibrator(method, matrix, y)
    out = cal.apply(matrix)
    assert out.shape == matrix.shape
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    assert out.min() >= 0 and out.max() <= 1
    # one row at a time gives the same numbers as the batch (the serving path)
    np.testing.assert_allclose(cal.apply(matrix[:1]), out[:1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_json_round_trip_gives_identical_outputs(method, n_classes):
    proba, y = overconfident(n_classes, n=800)
    cal = fit_calibrator(method, proba, y)
    restored = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert restored == cal
    np.testing.assert_array_equal(restored.apply(proba), cal.apply(proba))


def test_to_dict_holds_only_numbers_of_the_method():
    proba, y = overconfident(3, n=600)
    sig = fit_calibrator("sigmoid", proba, y).to_dict()
    assert set(sig) == {"method", "n_classes", "slopes", "intercepts"}
    assert len(sig["slopes"]) == 3
    iso = fit_calibrator("isotonic", proba, y).to_dict()
    assert set(iso) == {"method", "n_classes", "x_thresholds", "y_thresholds"}
    pairs = zip(iso["x_thresholds"], iso["y_thresholds"], strict=True)
    assert all(len(x) == len(v) for x, v in pairs)


def test_isotonic_is_monotone_and_clips_outside_the_fitted_range():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.2, 0.8, 500)
    y = (rng.random(500) < p).astype(int)
    cal = fit_calibrator("isotonic", p, y)
    grid = np.linspace(0, 1, 101)
    out = cal.apply(grid)
    assert np.all(np.diff(out) >= 0)
    assert out[0] == out[20] and out[-1] == out[80]


def test_isotonic_row_mapped_to_zero_everywhere_is_kept_as_given():
    cal = Calibrator("isotonic", 3, x_thresholds=((0.0, 1.0),) * 3, y_thresholds=((0.0, 0.0),) * 3)
    row = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_array_equal(cal.apply(row), row)


def test_none_returns_no_calibrator_and_unknown_method_is_a_config_error():
    assert fit_calibrator("none", np.array([0.2, 0.8]), [0, 1]) is None
    with pytest.raises(ConfigError, match="calibration must be one of none, sigmoid, isotonic"):
        fit_calibrator("platt", np.array([0.2, 0.8]), [0, 1])


@pytest.mark.parametrize(
    ("proba", "y", "match"),
    [
        (np.array([0.2, 1.7]), [0, 1], r"probabilities in \[0, 1\]. Got 1.7"),
        (np.array([0.2, np.nan]), [0, 1], "probabilities in"),
        (np.array([[0.2, 0.8]]), [2], "class indices 0..1"),
        (np.array([0.2, 0.8]), [0], "vector of 2 class indices"),
        (np.array([0.2, 0.8]), ["a", "b"], "dtype"),
        (np.array([0.2, 0.8, 0.4]), [1, 1, 1], "at least 2 classes"),
        (np.zeros((2, 1)), [0, 0], "k >= 2"),
    ],
)
def test_bad_input_names_the_problem(proba, y, match):
    with pytest.raises(InputError, match=match):
        fit_calibrator("sigmoid", proba, y)


def test_apply_rejects_wrong_shapes():
    cal = fit_calibrator("sigmoid", *overconfident(3, n=300))
    with pytest.raises(InputError, match=r"\(n, 3\); pass one row as shape \(1, k\)"):
        cal.apply(np.array([0.2, 0.3, 0.5]))
    with pytest.raises(InputError, match="shape"):
        cal.apply(np.zeros((4, 2)))


def test_from_dict_rejects_incomplete_or_inconsistent_data():
    with pytest.raises(InputError, match=r"lacks \['intercepts'\]"):
        Calibrator.from_dict({"method": "sigmoid", "n_classes": 2, "slopes": [1.0]})
    with pytest.raises(InputError, match="needs 3 slopes"):
        Calibrator.from_dict(
            {"method": "sigmoid", "n_classes": 3, "slopes": [1.0], "intercepts": [0.0]}
        )
    with pytest.raises(InputError, match="'sigmoid' or 'isotonic'"):
        Calibrator("none", 2)


def test_ece_known_values():
    # perfectly calibrated bins: confidence 0.75 and 3 of 4 right
    assert expected_calibration_error(np.full(4, 0.75), [1, 1, 1, 0]) == pytest.approx(0.0)
    # always sure and always wrong: the largest error there is
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), [1, 0]) == 1.0
    with pytest.raises(InputError, match="bins must be an int >= 1"):
        expected_calibration_error(np.full(4, 0.75), [1, 1, 1, 0], bins=0)


def test_report_is_json_safe_and_checks_shapes():
    proba, y = overconfident(2, n=200)
    report = calibration_report(proba, proba, y, bins=5)
    assert isinstance(report, CalibrationReport)
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()
    assert report.brier_before == report.brier_after and report.bins == 5
    with pytest.raises(InputError, match="same rows"):
        calibration_report(proba, proba[:-1], y)

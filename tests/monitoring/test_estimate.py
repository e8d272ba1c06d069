from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from retrainer.core.errors import InputError
from retrainer.monitoring.estimate import (
    PerformanceEstimate,
    estimate_performance,
    expected_accuracy,
    expected_correct,
    expected_roc_auc,
    mean_confidence,
)

W = np.array([1.5, -1.0, 0.5])


def binary(n: int, rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(0, scale, (n, 3))
    p = 1 / (1 + np.exp(-(X @ W + 0.3)))
    return X, (rng.random(n) < p).astype(int)


def multiclass(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(0, 1, (n, 3))
    logits = X @ np.array([[1.0, -0.5, 0.0], [0.0, 1.0, -1.0], [0.5, 0.5, 1.0]])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return X, y


def test_calibrated_binary_estimate_is_close_to_realised() -> None:
    rng = np.random.default_rng(0)
    model = LogisticRegression().fit(*binary(5000, rng))
    X, y = binary(5000, rng)
    proba = model.predict_proba(X)
    est = estimate_performance(proba)
    realised_acc = accuracy_score(y, model.predict(X))
    assert abs(est.accuracy - realised_acc) < 0.02
    assert abs(est.accuracy - realised_acc) < 4 * est.accuracy_std + 0.005
    assert abs(est.roc_auc - roc_auc_score(y, proba[:, 1])) < 0.02
    assert est.n_rows == 5000 and est.method == "cbpe"


def test_estimate_tracks_covariate_shift_before_labels_arrive() -> None:
    rng = np.random.default_rng(1)
    model = LogisticRegression().fit(*binary(5000, rng))
    X, y = binary(5000, rng)
    Xs, ys = binary(5000, rng, scale=0.3)  # rows crowd the decision boundary
    before = accuracy_score(y, model.predict(X))
    after = accuracy_score(ys, model.predict(Xs))
    assert before - after > 0.1
    est = estimate_performance(model.predict_proba(Xs))
    assert abs(est.accuracy - after) < 0.02
    assert abs(est.roc_auc - roc_auc_score(ys, model.predict_proba(Xs)[:, 1])) < 0.03


def test_calibrated_multiclass_estimate_is_close_to_realised() -> None:
    rng = np.random.default_rng(2)
    model = LogisticRegression().fit(*multiclass(6000, rng))
    X, y = multiclass(6000, rng)
    proba = model.predict_proba(X)
    est = estimate_performance(proba)
    assert abs(est.accuracy - accuracy_score(y, proba.argmax(axis=1))) < 0.02
    assert abs(est.roc_auc - roc_auc_score(y, proba, multi_class="ovr")) < 0.02
    assert est.mean_confidence == pytest.approx(est.accuracy)  # argmax predictions


@pytest.mark.parametrize("seed", range(5))
def test_oracle_probabilities_realise_within_the_spread(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, 3000)
    y = (rng.random(3000) < p).astype(int)
    est = estimate_performance(p)
    assert abs(est.accuracy - accuracy_score(y, (p > 0.5).astype(int))) < 4 * est.accuracy_std
    assert abs(est.roc_auc - roc_auc_score(y, p)) < 0.03


def test_overconfident_probabilities_overestimate() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)
    sharp = np.where(p > 0.5, 0.99, 0.01)  # not calibrated: the estimate cannot be trusted
    assert expected_accuracy(sharp) - accuracy_score(y, (p > 0.5).astype(int)) > 0.15


def test_positive_class_vector_and_matrix_agree_and_predictions_can_be_given() -> None:
    p = np.array([0.9, 0.2, 0.6, 0.5])
    matrix = np.column_stack([1 - p, p])
    np.testing.assert_allclose(expected_correct(p), expected_correct(matrix))
    np.testing.assert_allclose(expected_correct(p, [1, 1, 0, 1]), [0.9, 0.2, 0.4, 0.5])
    assert expected_roc_auc(p) == pytest.approx(expected_roc_auc(matrix))
    assert mean_confidence(p) == pytest.approx(0.7)


def test_undefined_auc_is_json_safe() -> None:
    est = estimate_performance(np.zeros(10))  # no positive is expected: AUC undefined
    assert est.accuracy == 1.0 and np.isnan(est.roc_auc)
    payload = json.loads(json.dumps(est.to_dict(), allow_nan=False))
    assert payload["roc_auc"] is None
    assert PerformanceEstimate(**{**payload, "roc_auc": float("nan")}).n_rows == 10


def test_bad_inputs_say_what_to_pass() -> None:
    with pytest.raises(InputError, match=r"shape \(0,\)"):
        expected_accuracy([])
    with pytest.raises(InputError, match=r"within \[0, 1\]"):
        expected_accuracy([0.5, 1.7])
    with pytest.raises(InputError, match=r"must sum to 1\. A row sums to 0\.9"):
        expected_accuracy([[0.5, 0.4]])
    with pytest.raises(InputError, match=r"y_pred must hold 2 class indices in \[0, 1\]"):
        expected_correct([0.2, 0.7], y_pred=[0, 2])

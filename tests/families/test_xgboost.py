"""XGBoost: native JSON payload with categorical feature types, early stopping, fine-tune."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retrainer.families import ValidationSet
from retrainer.families.base import read_artifact

pytest.importorskip("xgboost", reason="pip install 'retrainer[xgboost]'")

from retrainer.families.xgboost_family import XGBoostModel


def data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], size=n)})
    return X, pd.Series((X["x"] + (X["c"] == "a") > 0.5).astype(int))


def test_payload_is_json_with_categorical_feature_types() -> None:
    X, y = data()
    m = XGBoostModel("classification", ["x"], ["c"], {"n_estimators": 5}).fit(X, y)
    _, payload = read_artifact(m.save())
    learner = json.loads(payload)["learner"]
    assert learner["feature_types"] == ["q", "c"]


def test_validation_stops_early_and_keeps_the_best_round() -> None:
    X, y = data()
    X_val, y_val = data(seed=1)
    params = {"n_estimators": 300, "early_stopping_rounds": 3, "learning_rate": 0.5}
    m = XGBoostModel("classification", ["x"], ["c"], params).fit(X, y, ValidationSet(X_val, y_val))
    assert m.booster_.num_boosted_rounds() < 300


def test_fine_tune_adds_at_most_the_requested_rounds() -> None:
    X, _ = data()
    m = XGBoostModel("regression", ["x"], ["c"], {"n_estimators": 10}).fit(X, X["x"])
    m.fine_tune(X, X["x"] * 2, rounds=7)
    assert m.booster_.num_boosted_rounds() == 17

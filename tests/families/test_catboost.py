"""CatBoost: canonical .cbm metadata, the missing/unseen category sentinel, init_model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrainer.families import load_model

pytest.importorskip("catboost", reason="pip install 'retrainer[catboost]'")

from retrainer.families.catboost_family import CatBoostModel


def data(n: int = 200) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", None], size=n)})
    return X, pd.Series((X["x"] + (X["c"] == "a") > 0.5).astype(int))


def test_volatile_metadata_is_blanked_in_the_artifact() -> None:
    X, y = data()
    fitted = CatBoostModel("classification", ["x"], ["c"], {"iterations": 10}).fit(X, y)
    m = load_model(fitted.save())
    assert isinstance(m, CatBoostModel)
    metadata = m.model_.get_metadata()
    assert metadata["train_finish_time"] == "" and metadata["model_guid"] == ""


def test_missing_and_unseen_categories_share_the_sentinel() -> None:
    X, _ = data()
    m = CatBoostModel("regression", ["x"], ["c"], {"iterations": 10}).fit(X, X["x"])
    rows = pd.DataFrame({"x": [0.3, 0.3], "c": [None, "never-seen"]})
    out = m.predict(rows)
    assert out[0] == out[1]


def test_fine_tune_continues_from_the_model() -> None:
    X, y = data()
    m = CatBoostModel("classification", ["x"], ["c"], {"iterations": 10}).fit(X, y)
    m.fine_tune(X, 1 - y, rounds=5)
    assert m.model_.tree_count_ == 15

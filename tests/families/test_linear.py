"""The linear family: what it computes is scikit-learn's logistic regression or ridge on
imputed, standardised, one-hot columns; its artifact holds numbers only; bad params are named."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrainer.core.errors import ConfigError
from retrainer.families import load_model
from retrainer.families.linear_family import LinearModel


def _rows(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    x[rng.random(n) < 0.1, 1] = np.nan
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.choice(["u", "v", "w"], n)})


def _reference(final: object) -> object:
    numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    # one-hot levels are standardised too (they are columns of the one design matrix)
    levels = make_pipeline(OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                           StandardScaler())  # fmt: skip
    columns = ColumnTransformer([("n", numeric, ["a", "b"]), ("c", levels, ["c"])])
    return make_pipeline(columns, final)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_it_computes_what_scikit_learn_computes(task: str) -> None:
    X = _rows()
    signal = X["a"] - 0.5 * X["b"].fillna(0) + (X["c"] == "u")
    y = (signal > 0).astype(int) if task == "classification" else 3 * signal + 1
    ours = LinearModel(task, ["a", "b"], ["c"], {"alpha": 0.5}).fit(X, y)
    final = LogisticRegression(C=2.0, max_iter=1000) if task == "classification" else Ridge(0.5)
    ref = _reference(final).fit(X, y)  # type: ignore[attr-defined]
    new = _rows(50, seed=1)
    got = ours.predict_raw(new)
    want = ref.predict_proba(new) if task == "classification" else ref.predict(new)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_its_artifact_holds_numbers_only_and_loads_to_the_same_predictions() -> None:
    X = _rows()
    model = LinearModel("regression", ["a", "b"], ["c"]).fit(X, X["a"] * 2)
    data = model.save()
    with zipfile.ZipFile(BytesIO(data)) as z:
        state = json.loads(z.read("model.json"))
    assert sorted(state) == [
        "classes", "coef", "flagged", "intercept", "levels", "means", "medians", "scales",
    ]  # fmt: skip
    assert state["flagged"] == [False, True] and state["levels"] == [3]
    assert load_model(data).predict(X).tolist() == model.predict(X).tolist()


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"alpha": 0}, "params.alpha of the 'linear' family must be a number above 0"),
        ({"alpha": "big"}, "params.alpha"),
        ({"max_iter": 0}, "params.max_iter of the 'linear' family must be a whole number"),
    ],
)
def test_bad_params_are_named(params: dict[str, object], said: str) -> None:
    X = _rows()
    with pytest.raises(ConfigError, match=said):
        LinearModel("regression", ["a", "b"], ["c"], params).fit(X, X["a"])

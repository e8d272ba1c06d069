"""Your own scikit-learn models and feature steps, importable by path in tests
(``byo_models:make_pipeline``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.pipeline import make_pipeline as sk_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


def columns() -> ColumnTransformer:
    """Numbers imputed and scaled, categories imputed and one-hot encoded (unseen ignored)."""
    return ColumnTransformer(
        [
            (
                "num",
                sk_pipeline(SimpleImputer(), StandardScaler()),
                make_column_selector(dtype_include=np.number),
            ),
            (
                "cat",
                sk_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                make_column_selector(dtype_exclude=np.number),
            ),
        ]
    )


def make_pipeline(task: str) -> Pipeline:
    """A ColumnTransformer then an SGD model: fine-tunes through partial_fit."""
    final: Any = SGDClassifier(loss="log_loss") if task == "classification" else SGDRegressor()
    return Pipeline([("columns", columns()), ("model", final)])


def plain(task: str) -> Pipeline:
    """A model with neither partial_fit nor warm_start: no fine-tune."""
    final: Any = KNeighborsClassifier() if task == "classification" else KNeighborsRegressor()
    return Pipeline([("columns", columns()), ("model", final)])


def double(X: Any) -> Any:
    return X * 2.0


def with_function(task: str) -> Pipeline:
    """A pipeline holding a function of this module: skops does not trust it by default."""
    return Pipeline(
        [
            ("columns", columns()),
            ("double", FunctionTransformer(double)),
            (
                "model",
                SGDClassifier(loss="log_loss") if task == "classification" else SGDRegressor(),
            ),
        ]
    )


def not_an_estimator() -> dict[str, int]:
    return {"a": 1}


NOT_CALLABLE = 42


def add_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """A feature step: the ratio of two numeric columns."""
    return df.assign(ratio=df["income"] / df["debt"].where(df["debt"] != 0))


def drops_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[1:]


def raises(df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("no column 'salary'")

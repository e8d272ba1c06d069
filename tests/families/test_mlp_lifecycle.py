"""The mlp family through the lifecycle on the bundled weather data: a full retrain (early
stopping on the newest rows, refit), a fine-tune from the champion's weights, predictions from
the registry's verified artifact; and, without torch, the fallback family with the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pandas as pd
import pytest

from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_rows
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

SMALL = {"hidden_sizes": [32, 16], "epochs": 40, "batch_size": 128, "patience": 5}


def _years(df: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return df[(df["date"] >= start) & (df["date"] < end)]


def test_train_fine_tune_and_predict_through_the_registry(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    pytest.importorskip("torch", reason="the mlp family needs pip install 'retrainer[mlp]'")
    ws = make_workspace(family="mlp", params=SMALL)
    ingest_frame(ws, "weather", _years(weather_df, "1949-01-01", "1952-01-01"))
    v1 = train(ws, "weather", deploy=True).version
    assert v1.family == "mlp" and "fallback" not in v1.details
    assert v1.params["epochs"] == 40 and 0.6 < v1.metrics["accuracy"] < 0.95
    ingest_frame(ws, "weather", _years(weather_df, "1952-01-01", "1952-07-01"))
    ft = fine_tune(ws, "weather").version
    assert (ft.version, ft.kind, ft.family) == ("1.0.1", "fine_tune", "mlp")
    rounds = ft.details["training_choice"]["rounds"]
    assert 1 <= rounds["added"] <= rounds["most"]
    pred = predict_rows(ws, "weather", weather_df.head(5), log=False).frame
    assert list(pred.columns[-3:]) == ["prediction", "proba_0", "proba_1"]
    assert pred["proba_1"].between(0, 1).all()


def test_without_torch_the_fallback_family_trains_and_says_why(
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    monkeypatch.delitem(sys.modules, "retrainer.families.mlp_family", raising=False)
    ws = make_workspace(family="mlp", params={"mlp": SMALL, "randomforest": {"n_estimators": 5}})
    ingest_frame(ws, "weather", _years(weather_df, "1949-01-01", "1951-01-01"))
    v = train(ws, "weather").version
    assert v.family == "randomforest"
    fallback = v.details["fallback"]
    assert fallback["requested"] == "mlp"
    assert "torch" in fallback["reason"] and "pip install 'retrainer[mlp]'" in fallback["reason"]

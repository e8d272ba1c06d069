"""Every training path takes the same feature set: when the stored rows lack the columns of
the set the flag chooses, a full retrain, a fine-tune, an imported model file and the policy's
"new feature" rule all use the fallback set, and the versions say so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.import_model import import_model
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import new_features
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

MODEL = "weather"
FELL = {
    "name": "original",
    "requested": "enhanced",
    "reason": "feature set 'enhanced' needs column(s) ['solar_index'], which the rows do not hold",
    "missing": ["solar_index"],
}


def _workspace(make_workspace: Callable[..., Workspace]) -> Workspace:
    return make_workspace(
        features={},
        feature_sets={
            "original": {"numeric": WEATHER_FEATURES},
            "enhanced": {"numeric": [*WEATHER_FEATURES, "solar_index"]},
        },
        feature_set="enhanced",
        params={"n_estimators": 20, "num_threads": 1},
    )


def test_rows_without_the_flag_set_train_tune_and_import_on_the_fallback(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    import lightgbm as lgb

    ws = _workspace(make_workspace)
    first, later = (
        weather_df[weather_df["date"] < "1951-01-01"],
        weather_df[(weather_df["date"] >= "1951-01-01") & (weather_df["date"] < "1951-03-01")],
    )
    assert ingest_frame(ws, MODEL, first).inserted == len(first)
    trained = train(ws, MODEL, deploy=True).version
    assert trained.details["feature_set"] == FELL
    assert trained.feature_schema["numeric"] == WEATHER_FEATURES
    champion = ws.store.get_version(MODEL, trained.version)
    # the champion lacks solar_index, but no training could use it: not a "new feature"
    assert new_features(ws, ws.model_spec(MODEL), champion) == ()

    ingest_frame(ws, MODEL, later)
    tuned = fine_tune(ws, MODEL).version  # the champion's columns are the set in use
    assert tuned.kind == "fine_tune" and tuned.feature_schema["numeric"] == WEATHER_FEATURES

    rows = pd.concat([first, later])
    path = tmp_path / "outside.txt"
    params = {"objective": "binary", "verbose": -1, "num_threads": 1}
    lgb.train(params, lgb.Dataset(rows[WEATHER_FEATURES], rows["rain"]), 40).save_model(path)
    imported = import_model(ws, MODEL, path, force=True)
    assert imported.kind == "import" and imported.details["feature_set"] == FELL
    assert imported.feature_schema["numeric"] == WEATHER_FEATURES

"""``fine_tune.learning_rate``: the added rounds learn at that absolute rate (the demand team's
0.03), whatever the champion's own rate; a family without a learning rate says so."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

import pandas as pd
import pytest

from retrainer.core.errors import InputError
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace


def _shrinkages(ws: Workspace, version: str) -> list[float]:
    data = ws.artifact_bytes(ws.store.get_version("weather", version))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        text = z.read("model.txt").decode()
    return [float(x) for x in re.findall(r"^shrinkage=(\S+)$", text, flags=re.M)]


def test_added_rounds_learn_at_the_absolute_rate(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(
        params={"n_estimators": 30, "learning_rate": 0.1, "num_threads": 1},
        fine_tune={"learning_rate": 0.03, "rounds": 20, "min_rows": 50},
    )
    ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
    first = train(ws, "weather", deploy=True)
    ingest_frame(ws, "weather", weather_df[weather_df["date"].between("1952-01-01", "1953-01-01")])
    tuned = fine_tune(ws, "weather")
    before = _shrinkages(ws, first.version.version)
    after = _shrinkages(ws, tuned.version.version)
    assert set(before[1:]) == {0.1}  # LightGBM's first tree carries shrinkage 1
    added = after[len(before) :]
    # a fine-tuned version carries its validation slice's confusion matrix, as a training does
    assert tuned.version.details["confusion_matrix"]["labels"] == [0, 1]
    assert added and all(abs(x - 0.03) < 1e-9 for x in added), added


def test_a_family_without_a_learning_rate_is_told(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(
        family="randomforest",
        params={"n_estimators": 10, "n_jobs": 1},
        fine_tune={"learning_rate": 0.03, "min_rows": 50},
    )
    ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
    train(ws, "weather", deploy=True)
    ingest_frame(ws, "weather", weather_df[weather_df["date"].between("1952-01-01", "1953-01-01")])
    with pytest.raises(InputError, match="'randomforest' family has no learning rate"):
        fine_tune(ws, "weather")

"""A retrain on exactly the champion's rows has nothing newer to be judged on: the gate says
"insufficient" on every metric, including one on probabilities (it used to fail asking for
the champion's probabilities), and `train --deploy` deploys it as documented for that verdict."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace


def test_retrain_on_the_same_rows_is_insufficient_on_roc_auc(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(
        params={"n_estimators": 20, "num_threads": 1}, gate={"primary_metric": "roc_auc"}
    )
    ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
    first = train(ws, "weather", deploy=True)
    assert first.deployed
    again = train(ws, "weather", deploy=True)
    gate = again.version.details["gate"]
    assert gate["verdict"] == "insufficient" and gate["metric"] == "roc_auc"
    assert gate["n_rows"] == 0 and again.deployed

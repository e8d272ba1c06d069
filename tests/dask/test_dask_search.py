"""A hyper-parameter search on the Dask engine with the window on the workers: its trials one
after another, each fold's recipe fit on the partitions and its test block scored by the
workers holding it; the same rows and folds as a local search, fold values within the
distributed fits' tolerance, recorded on the version as locally."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer.lifecycle import dask_rows
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.search import SearchRequest
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

pytest.importorskip("distributed")
pytest.importorskip("optuna")

TOLERANCE = 0.05  # a fold's accuracy, distributed vs local fit (see test_partitioned_choice)
YEARS = [1949, 1950, 1951, 1952]


def test_a_search_runs_on_the_partitions_as_it_runs_locally(
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dask_rows, "PARTITION_ROWS", 400)  # a year's segment each
    out: dict[str, Any] = {}
    for engine in ("local", "dask"):
        training: dict[str, Any] = {
            "window_days": 1500,
            "engine": engine,
            "choice": {"enabled": False},
            "search": {"folds": 2, "seed": 3},
        }
        if engine == "dask":
            training["scheduler"] = scheduler
        ws = make_workspace(
            store=f"sqlite:///{tmp_path / f'{engine}.db'}",
            params={"n_estimators": 30, "num_threads": 1},
            training=training,
        )
        for year in YEARS:  # one segment, one partition, per year
            ingest_frame(ws, "weather", weather_df[weather_df["date"].dt.year == year])
        out[engine] = train(ws, "weather", search=SearchRequest(trials=3)).version
    local, dask = out["local"], out["dask"]
    assert dask.details["engine"] == {"name": "dask", "partitions": 4}  # read on the workers
    mine, theirs = dask.details["search"], local.details["search"]
    assert mine["rows"] == theirs["rows"] and mine["folds"] == theirs["folds"] == 2
    assert mine["parallel"] == 1  # one trial at a time, each fit on the whole cluster
    assert len(mine["history"]) == 3 and mine["trigger"] == "asked (train --search)"
    for a, b in zip(mine["default_folds"], theirs["default_folds"], strict=True):
        assert abs(a - b) <= TOLERANCE, (mine["default_folds"], theirs["default_folds"])
    assert mine["chosen"] in ("search", "defaults") and mine["cpu_seconds"] > 0
    assert dask.details["fit_cpu_seconds"] >= mine["cpu_seconds"]  # the search's counted
    assert abs(dask.metrics["accuracy"] - local.metrics["accuracy"]) <= TOLERANCE

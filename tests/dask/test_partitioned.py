"""The training window read on the workers, one partition per stored segment: the same
window, quality report, reference statistics and (within the libraries' tolerance, see
test_dask_engine) holdout metrics as the local engine, with the process that trains holding
the holdout and one column at a time, never the window."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle import dask_rows
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import resolve_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

pytest.importorskip("distributed")

# holdout rows predicted differently, net (test_dask_engine's 0.03 accuracy on ~290 rows;
# distributed binning moves a few borderline rows whatever the holdout's size)
TOLERANCE_ROWS = 9
YEARS = [1949, 1950, 1951, 1952]


def _ingest_by_year(ws: Workspace, df: pd.DataFrame) -> None:
    """One ingest (one segment) per year: four partitions on the cluster."""
    for year in YEARS:
        ingest_frame(ws, "weather", df[df["date"].dt.year == year])


@pytest.mark.parametrize(
    ("family", "days_back", "partitions", "calibration"),
    [
        ("lightgbm", None, 3, "none"),
        ("xgboost", None, 3, "none"),
        ("lightgbm", 700, 2, "none"),
        ("xgboost", None, 3, "isotonic"),
    ],
    ids=["lightgbm", "xgboost", "lightgbm, train --days-back 700", "xgboost, isotonic"],
)
def test_a_window_read_on_the_workers_trains_as_the_local_one(
    family: str,
    days_back: int | None,
    partitions: int,
    calibration: str,
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dask_rows, "PARTITION_ROWS", 400)  # a year's segment each
    params = {"n_estimators": 60, "num_threads" if family == "lightgbm" else "nthread": 1}
    out: dict[str, Any] = {}
    for engine in ("local", "dask"):
        training: dict[str, Any] = {
            "window_days": 1000,
            "engine": engine,
            "choice": {"enabled": False},  # its candidates are fitted in one process
        }
        if engine == "dask":
            training["scheduler"] = scheduler
        ws = make_workspace(
            store=f"sqlite:///{tmp_path / f'{engine}.db'}",
            family=family,
            params=params,
            training=training,
            features={"numeric": WEATHER_FEATURES, "categorical": ["month"]},
            calibration=calibration,
        )
        _ingest_by_year(ws, weather_df.assign(month=weather_df["date"].dt.month_name()))
        if engine == "dask":
            assert dask_rows.unsupported(ws, ws.model_spec("weather")) is None
        out[engine] = train(ws, "weather", days_back=days_back)
    local, dask = out["local"].version, out["dask"].version
    # 1000 days: 3 years; 700: 2
    assert dask.details["engine"] == {"name": "dask", "partitions": partitions}
    assert (dask.n_rows, dask.train_start, dask.train_end) == (
        local.n_rows,
        local.train_start,
        local.train_end,
    )
    assert dask.details["reference"] == local.details["reference"]
    assert out["dask"].plan.quality == out["local"].plan.quality
    assert out["dask"].plan.class_balance == out["local"].plan.class_balance
    assert dask.feature_schema == local.feature_schema
    assert abs(dask.details["holdout_rows"] - local.details["holdout_rows"]) <= 1  # ties at the cut
    gap = abs(dask.metrics["accuracy"] - local.metrics["accuracy"])
    assert round(gap * local.details["holdout_rows"]) <= TOLERANCE_ROWS
    assert dask.metrics["accuracy"] > 0.6
    if calibration != "none":  # fitted on the newest slice's raw scores, read on the workers
        ours, theirs = dask.details["calibration"], local.details["calibration"]
        assert ours["method"] == theirs["method"] == calibration
        assert ours["n_rows"] == theirs["n_rows"]
        assert ours["brier_after"] == pytest.approx(theirs["brier_after"], abs=0.02)
        predictor = resolve_predictor(ws, "weather", dask.version)  # ws: the dask one
        assert predictor.calibrator is not None  # saved with the version, applied when served
        assert predictor.calibrator.to_dict() == out["dask"].fitted.calibrator.to_dict()


def test_what_the_workers_cannot_read_is_read_here_and_said(
    make_workspace: Callable[..., Workspace],
) -> None:
    off = {"enabled": False}
    ws = make_workspace(store="sqlite://", training={"engine": "dask", "choice": off})
    assert "in-memory SQLite" in str(dask_rows.unsupported(ws, ws.model_spec("weather")))
    ws = make_workspace(training={"engine": "dask"})  # training.choice, on by default, is
    assert dask_rows.unsupported(ws, ws.model_spec("weather")) is None  # (test_partitioned_choice)
    ws = make_workspace(training={"engine": "dask"}, calibration="sigmoid")  # on the workers
    assert dask_rows.unsupported(ws, ws.model_spec("weather")) is None

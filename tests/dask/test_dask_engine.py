"""training.engine: dask on a LocalCluster of 2 worker processes (LightGBM's Dask interface
opens one network per process, so the workers cannot be threads of this one).

The same weather model is trained with the local and the Dask engine and their holdout
accuracy compared. Distributed training is not bit-identical (LightGBM and XGBoost both say
so: each worker bins its own partition, XGBoost merges per-worker quantile sketches), so the
bound is 0.03 accuracy: about 9 of the ~290 holdout days predicted differently, well above the
few-row differences binning gives and well below what a broken fit (a partition lost, labels
misaligned; accuracy near the base rate, ~0.2 lower) would give.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.errors import ConfigError
from retrainer.core.spec import parse_spec
from retrainer.families import dask_boosting
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_frame, resolve_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from weather_spec import weather_model

distributed = pytest.importorskip("distributed")

TOLERANCE = 0.03


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["date"] >= "1949-01-01") & (df["date"] < "1953-01-01")]


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_dask_engine_matches_the_local_one_and_serves(
    family: str,
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    tmp_path: Path,
) -> None:
    params = {"n_estimators": 60, "num_threads" if family == "lightgbm" else "nthread": 1}
    trained: dict[str, Any] = {}
    for engine in ("local", "dask"):
        training: dict[str, Any] = {"window_days": 1500, "engine": engine}
        if engine == "dask":
            training["scheduler"] = scheduler
        ws = make_workspace(
            store=f"sqlite:///{tmp_path / f'{engine}.db'}",
            family=family,
            params=params,
            training=training,
        )
        ingest_frame(ws, "weather", _rows(weather_df))
        trained[engine] = (ws, train(ws, "weather", deploy=True).version)
    local, dask = trained["local"][1], trained["dask"][1]
    assert dask.family == family and "fallback" not in dask.details
    assert abs(dask.metrics["accuracy"] - local.metrics["accuracy"]) <= TOLERANCE
    assert dask.metrics["accuracy"] > 0.6
    ws = trained["dask"][0]
    rows = weather_df[weather_df["date"] >= "1953-01-01"].head(50)
    out = predict_frame(resolve_predictor(ws, "weather"), rows)
    assert len(out) == 50 and set(out["prediction"]) <= set(weather_df["rain"])
    ingest_frame(ws, "weather", weather_df[weather_df["date"].between("1953-01-01", "1953-06-30")])
    tuned = fine_tune(ws, "weather").version  # continues the local booster in this process
    assert tuned.parent == dask.version


def test_an_unreachable_scheduler_is_exit_1_naming_it_and_nothing_registered(
    tmp_path: Path, weather_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    model = weather_model(training={"window_days": 1500, "engine": "dask", "scheduler": address})
    cfg = tmp_path / "retrainer.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "store": "sqlite:///retrainer.db",
                "artifacts": "artifacts",
                "models": {"weather": model},
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    csv = tmp_path / "rows.csv"
    _rows(weather_df).to_csv(csv, index=False)
    runner = CliRunner()
    assert runner.invoke(app, ["-c", str(cfg), "ingest", "weather", str(csv)]).exit_code == 0
    res = runner.invoke(app, ["-c", str(cfg), "train", "weather"])
    msg = " ".join(res.output.split())
    assert res.exit_code == 1, msg
    assert address in msg and "cannot be reached" in msg and "Nothing was trained" in msg
    versions = runner.invoke(app, ["-c", str(cfg), "versions", "weather", "--json"])
    assert versions.exit_code == 0 and "1.0.0" not in versions.output


def test_a_family_without_a_dask_interface_is_a_spec_error_naming_those_with_one() -> None:
    body = {"models": {"m": weather_model(family="randomforest", training={"engine": "dask"})}}
    with pytest.raises(ConfigError, match="lightgbm, xgboost"):
        parse_spec(body, environ={})
    body = {"models": {"m": weather_model(training={"scheduler": "tcp://h:8786"})}}
    with pytest.raises(ConfigError, match="engine: dask"):
        parse_spec(body, environ={})


def test_without_a_scheduler_a_local_cluster_trains_and_is_closed(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(
        family="xgboost",
        params={"n_estimators": 20, "nthread": 1},
        training={"window_days": 1500, "engine": "dask", "threads": 1},
    )
    ingest_frame(ws, "weather", _rows(weather_df))
    version = train(ws, "weather").version
    assert version.family == "xgboost" and version.metrics["accuracy"] > 0.6
    assert dask_boosting.active() is None  # the engine closed with the training


def _spin(seconds: float) -> None:
    """Use ``seconds`` of this process's CPU."""
    import time

    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


def test_a_trainings_cpu_counts_its_workers(scheduler: str) -> None:
    """What a Dask training records as its fits' CPU (candidates' ``cpu_seconds``,
    ``fit_cpu_seconds``) includes the workers' processes, where the fits run."""
    from cluster_help import distributed

    with (
        distributed.Client(scheduler, set_as_default=False) as client,
        dask_boosting.using(client),
    ):
        before = dask_boosting.cpu_seconds()
        client.run(_spin, 0.5)  # half a CPU second on each of the 2 workers
        assert dask_boosting.cpu_seconds() - before >= 1.0
    assert dask_boosting.cpu_seconds() < before  # no cluster active: this process's alone

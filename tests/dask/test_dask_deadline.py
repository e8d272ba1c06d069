"""A Dask training that cannot finish ends, for good, with nothing registered: past
``training.deadline_minutes``, and on a cluster that has had no worker for
``dask_watch.NO_WORKERS_SECONDS`` (its tasks would wait for ever). Both run against a
scheduler with no worker, where a fit can never end on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cluster_help import distributed
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.errors import ConfigError
from retrainer.core.spec import parse_spec
from retrainer.lifecycle import dask_watch
from weather_spec import weather_model


@pytest.fixture(scope="module")
def workerless() -> Iterator[str]:
    """The address of a scheduler with no worker."""
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:
        yield str(cluster.scheduler_address)


def _train(tmp_path: Path, df: pd.DataFrame, training: dict[str, object]) -> tuple[int, str, Path]:
    model = weather_model(training={"window_days": 1500, "engine": "dask", **training})
    cfg = tmp_path / "retrainer.yaml"
    body = {"store": f"sqlite:///{tmp_path / 'r.db'}", "artifacts": str(tmp_path / "artifacts")}
    cfg.write_text(yaml.safe_dump({**body, "models": {"weather": model}}))
    csv = tmp_path / "rows.csv"
    df[(df["date"] >= "1949-01-01") & (df["date"] < "1953-01-01")].to_csv(csv, index=False)
    runner = CliRunner()
    assert runner.invoke(app, ["-c", str(cfg), "ingest", "weather", str(csv)]).exit_code == 0
    res = runner.invoke(app, ["-c", str(cfg), "train", "weather"], env={"COLUMNS": "2000"})
    return res.exit_code, " ".join(res.output.split()), cfg


def _nothing_registered(cfg: Path) -> None:
    res = CliRunner().invoke(app, ["-c", str(cfg), "versions", "weather", "--json"])
    assert res.exit_code == 0 and "1.0.0" not in res.output, res.output
    artifacts = cfg.parent / "artifacts"
    assert not artifacts.exists() or not [p for p in artifacts.rglob("*") if p.is_file()]


def test_past_its_deadline_a_training_is_abandoned_with_nothing_registered(
    tmp_path: Path, weather_df: pd.DataFrame, workerless: str
) -> None:
    code, msg, cfg = _train(
        tmp_path, weather_df, {"scheduler": workerless, "deadline_minutes": 0.05}
    )
    assert code == 1, msg
    assert "did not finish within training.deadline_minutes (0.05)" in msg, msg
    assert workerless in msg and "Nothing was registered" in msg and "failed twice" not in msg
    _nothing_registered(cfg)


def test_a_cluster_with_no_worker_ends_the_training_naming_it(
    tmp_path: Path, weather_df: pd.DataFrame, workerless: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dask_watch, "NO_WORKERS_SECONDS", 2.0)
    code, msg, cfg = _train(tmp_path, weather_df, {"scheduler": workerless})
    assert code == 1, msg
    assert "had no worker for 2 s" in msg and "dask worker" in msg, msg
    assert workerless in msg and "failed twice" not in msg  # not retried
    _nothing_registered(cfg)


def test_a_deadline_is_for_the_dask_engine_only() -> None:
    body = {"models": {"m": weather_model(training={"deadline_minutes": 30})}}
    with pytest.raises(ConfigError, match=r"deadline_minutes \(30.0\) is used by engine: dask"):
        parse_spec(body, environ={})
    body = {"models": {"m": weather_model(training={"engine": "dask", "deadline_minutes": 0})}}
    with pytest.raises(ConfigError, match="deadline_minutes"):
        parse_spec(body, environ={})

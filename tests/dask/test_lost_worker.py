"""A worker lost in the middle of a fit (its process ended at round 2 by the test hook
``RETRAINER_DASK_LOSE_WORKER``, see ``retrainer.families.dask_faults``): the training is
tried once more on a fresh connection and registers (LightGBM); lost again, it ends with exit 1
naming both losses, and nothing is registered: no version, no role, no artifact (XGBoost, whose
survivors leave its collective when the peer's socket closes, so the retry starts at once).

The trainings run as ``retrainer train`` subprocesses with a deadline, so a fit that waited
for ever on a lost worker would fail the test naming what it waited for, not hang it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from cluster_help import distributed, whole
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.families.dask_faults import ENV
from retrainer.lifecycle.dask_watch import lock_ids
from weather_spec import weather_model

pytest.importorskip("distributed")

TRAIN_SECONDS = 300  # a training of ~20 s, a worker restarted by its nanny, and a retry


def _setup(tmp_path: Path, scheduler: str, family: str, weather_df: pd.DataFrame) -> Path:
    training = {
        "window_days": 1500,
        "engine": "dask",
        "scheduler": scheduler,
        "choice": {"enabled": False},
    }
    params = {"n_estimators": 30}
    model = weather_model(family=family, params=params, training=training)
    cfg = tmp_path / "retrainer.yaml"
    body = {"store": "sqlite:///retrainer.db", "artifacts": "artifacts"}
    cfg.write_text(yaml.safe_dump({**body, "models": {"weather": model}}))
    csv = tmp_path / "rows.csv"
    weather_df[(weather_df["date"] >= "1949-01-01") & (weather_df["date"] < "1953-01-01")].to_csv(
        csv, index=False
    )
    res = CliRunner().invoke(app, ["-c", str(cfg), "ingest", "weather", str(csv)])
    assert res.exit_code == 0, res.output
    return cfg


def _train_losing(tmp_path: Path, cfg: Path, losses: int) -> subprocess.CompletedProcess[str]:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    for i in range(losses):
        (tokens / f"token-{i}").touch()
    env = {**os.environ, ENV: str(tokens), "COLUMNS": "2000"}
    cmd = [sys.executable, "-m", "retrainer.cli.main", "-c", str(cfg), "train", "weather"]
    try:
        return subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TRAIN_SECONDS
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"`retrainer train` with {losses} worker(s) lost did not end within "
            f"{TRAIN_SECONDS} s (a fit waiting on a lost worker?)"
        )


def _lose(
    tmp_path: Path, scheduler: str, family: str, df: pd.DataFrame, losses: int
) -> tuple[Path, Any]:
    """A ``family`` model's training that loses ``losses`` workers; the cluster is whole
    again after it (its config and the finished process)."""
    cfg = _setup(tmp_path, scheduler, family, df)
    try:
        return cfg, _train_losing(tmp_path, cfg, losses=losses)
    finally:
        whole(scheduler)


def _versions(cfg: Path) -> list[Any]:
    res = CliRunner().invoke(app, ["-c", str(cfg), "versions", "weather", "--json"])
    assert res.exit_code == 0, res.output
    out = yaml.safe_load(res.stdout)
    return list(out["versions"] if isinstance(out, dict) else out)


def test_a_worker_lost_once_is_retried_and_the_version_registers(
    tmp_path: Path,
    scheduler: str,
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg, res = _lose(tmp_path, scheduler, "lightgbm", weather_df, losses=1)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in (tmp_path / "tokens").glob("used-*")) == ["used-0"]
    assert "lost" in res.stderr and "trying once more" in res.stderr
    assert [v["version"] for v in _versions(cfg)] == ["1.0.0"]


def test_a_worker_lost_twice_fails_cleanly_with_nothing_registered(
    tmp_path: Path,
    scheduler: str,
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    # XGBoost here (LightGBM above): a lost worker's peers leave XGBoost's collective at once
    # (its ring allreduce fails on the closed socket), so the retry starts and is lost too
    cfg, res = _lose(tmp_path, scheduler, "xgboost", weather_df, losses=2)
    msg = " ".join((res.stdout + res.stderr).split())
    assert res.returncode == 1, msg
    assert "failed twice" in msg and msg.count("lost") >= 2 and scheduler in msg, msg
    assert "Nothing was registered" in msg and "XGBoostError" not in msg, msg
    assert sorted(p.name for p in (tmp_path / "tokens").glob("used-*")) == ["used-0", "used-1"]
    assert _versions(cfg) == []
    # no lock of the abandoned fits is left on the survivors (a later XGBoost fit on them
    # would wait for it for ever)
    with distributed.Client(scheduler, set_as_default=False) as client:
        assert lock_ids(client) == frozenset()
    roles = CliRunner().invoke(app, ["-c", str(cfg), "status", "weather", "--json"])
    assert "champion" not in roles.stdout or '"champion": null' in roles.stdout
    artifacts = tmp_path / "artifacts"
    assert not artifacts.exists() or not [p for p in artifacts.rglob("*") if p.is_file()]

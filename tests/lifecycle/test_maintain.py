"""maintain: monitor → policy → act once, under the model's lease; every decision stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from retrainer.core.errors import LeaseHeld
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import maintain
from retrainer.lifecycle.predict import predict_file
from retrainer.plumbing.lease import held_lease
from retrainer.plumbing.workspace import Workspace


def _setup(make_workspace: Callable[..., Workspace], df: pd.DataFrame, tmp_path: Path) -> Workspace:
    ws = make_workspace(params={"n_estimators": 20})
    ingest_frame(ws, "weather", df[df["date"] < "1952-01-01"])
    first = maintain(ws, "weather")  # no champion -> full retrain, deployed
    assert first.decision.action == "full_retrain" and first.deployed
    live = df[(df["date"] >= "1970-01-01") & (df["date"] < "1971-01-01")]
    live.to_csv(tmp_path / "live.csv", index=False)
    predict_file(ws, "weather", tmp_path / "live.csv", tmp_path / "out.csv")
    return ws


def test_dry_run_decides_and_changes_nothing(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    ws = _setup(make_workspace, weather_df, tmp_path)
    before = [v.version for v in ws.store.list_versions("weather")]
    r = maintain(ws, "weather", dry_run=True)
    assert r.decision.dry_run and r.decision.reasons
    assert r.decision.numbers["champion"] == "1.0.0"
    assert [v.version for v in ws.store.list_versions("weather")] == before
    stored = ws.store.decisions("weather")
    assert [d.action for d in stored] == ["full_retrain", r.decision.action]
    assert stored[-1].outcome == "dry run: nothing changed"


def test_maintain_waits_for_or_refuses_a_held_lease(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    ws = _setup(make_workspace, weather_df, tmp_path)
    with held_lease(ws, "model:weather", owner="someone-else"), pytest.raises(LeaseHeld):
        maintain(ws, "weather", dry_run=True)
    assert len(ws.store.decisions("weather")) == 1  # the refused run decided nothing


def test_a_fine_tuned_champion_counts_the_rows_of_the_training_it_continues() -> None:
    import dataclasses
    from datetime import datetime as dt

    from retrainer.core.entities import ModelVersion
    from retrainer.lifecycle.rollout import rows_learnt as _rows_learnt

    base = ModelVersion(
        model="m", version="1.0.0", parent=None, family="lightgbm", params={},
        created_at=dt(2024, 1, 1), created_by="manual", reason="t", kind="initial",
        train_start=None, train_end=None, n_rows=3650, fingerprint="f" * 64,
        feature_schema={}, metrics={}, artifact_uri="mem://x", sha256="0" * 64, hmac=None,
        size_bytes=1,
    )  # fmt: skip
    tune = dataclasses.replace(base, version="1.0.1", parent="1.0.0", kind="fine_tune", n_rows=60)
    again = dataclasses.replace(tune, version="1.0.2", parent="1.0.1", n_rows=40)
    retrain = dataclasses.replace(base, version="1.1.0", parent="1.0.2", kind="full_retrain")
    versions = [base, tune, again, retrain]
    assert _rows_learnt(again, versions) == 3650 + 60 + 40
    assert _rows_learnt(retrain, versions) == 3650  # a full training starts over


def test_quality_is_checked_when_an_action_is_due_and_blocks_it(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    ws = make_workspace(params={"n_estimators": 20}, quality={"ranges": {"temperature": [-60, 60]}})
    ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1951-01-01"])
    assert maintain(ws, "weather").deployed
    quiet = maintain(ws, "weather", dry_run=True).decision
    assert quiet.action == "nothing" and quiet.numbers["quality_ok"] is None  # not checked
    bad = weather_df[(weather_df["date"] >= "1951-01-01") & (weather_df["date"] < "1952-01-01")]
    bad = bad.assign(temperature=bad["temperature"] + 500.0)  # every row out of its range
    ingest_frame(ws, "weather", bad)  # enough new rows for the new_data rule
    alerts: list[str] = []
    ws.alert = lambda model, event, *a, **k: alerts.append(event)  # type: ignore[method-assign]
    d = maintain(ws, "weather").decision
    assert d.action == "nothing" and d.numbers["quality_ok"] is False
    assert d.reasons[0].startswith("blocked by data quality:") and "temperature" in d.reasons[0]
    assert d.reasons[1].startswith("held back: full_retrain because")
    assert alerts == ["quality_failed"]
    assert [v.version for v in ws.store.list_versions("weather")] == ["1.0.0"]

"""Rollouts on a simulated clock: a canary steps up and is promoted while its live metric
holds; a worse challenger is withdrawn; a regressing promotion is rolled back by maintain."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd
import pytest

from retrainer.core.clock import SimClock, use_clock
from retrainer.core.routing import route
from retrainer.lifecycle import rollout
from retrainer.lifecycle.feedback import record_feedback
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import maintain
from retrainer.lifecycle.predict import predict_frame, prediction_records
from retrainer.lifecycle.predictor import load_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

ROLLOUT = {"mode": "canary", "steps": [0.25, 0.5, 1.0], "watch": "1d", "min_samples": 40}


def serve_day(ws: Workspace, rows: pd.DataFrame, tag: str, *, flip: str | None = None) -> None:
    """Score rows through routing, log them, and feed back the actuals (same day)."""
    roles = ws.store.roles("weather")
    rows = rows.assign(day_id=[f"{tag}-{i}" for i in rows["day_id"]])
    groups: dict[tuple[str, str], list[int]] = {}
    for i, eid in enumerate(rows["day_id"]):
        r = route(roles, eid)
        groups.setdefault((r.version, r.arm), []).append(i)
    records = []
    for (version, arm), idx in groups.items():
        part = rows.iloc[idx]
        p = load_predictor(ws, ws.store.get_version("weather", version))
        out = predict_frame(p, part)
        if flip == version:  # a broken challenger: every answer wrong
            out["prediction"] = 1 - out["prediction"].astype(int)
        records.append(prediction_records(ws, "weather", p, part, out, uuid.uuid4().hex, arm=arm))
    ws.store.log_predictions(records)
    record_feedback(ws, "weather", rows[["day_id", "date", "rain"]])


@pytest.fixture
def canary(make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame):
    clock = SimClock(datetime(1952, 1, 1))
    with use_clock(clock):
        ws = make_workspace(rollout=ROLLOUT, params={"n_estimators": 20})
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
        train(ws, "weather", deploy=True)
        challenger = train(ws, "weather", reason="challenger").version
        rollout.start(ws, "weather", challenger, by="test", reason="test canary")
        yield ws, clock, challenger.version


def _year(df: pd.DataFrame, year: int) -> pd.DataFrame:
    return df[df["date"].dt.year == year]


def test_canary_steps_up_and_promotes(canary, weather_df: pd.DataFrame) -> None:
    ws, clock, version = canary
    with use_clock(clock):
        assert ws.store.roles("weather").challenger.fraction == 0.25
        early = maintain(ws, "weather")
        assert early.decision.action == "nothing" and "watching" in early.decision.reasons[0]
        actions = []
        for year in (1952, 1953, 1954, 1955):
            serve_day(ws, _year(weather_df, year), str(year))
            clock.advance(days=1, hours=1)
            actions.append(maintain(ws, "weather").decision.action)
            if actions[-1] == "promote":
                break
    # 25% -> 50% -> (the last step is 100%, i.e. promotion)
    assert actions == ["canary_step", "promote"]
    assert ws.store.roles("weather").champion == version
    assert [e.action for e in ws.store.events("weather")][-3:] == [
        "start_challenger",
        "canary_step",
        "promote",
    ]


def test_worse_challenger_is_withdrawn(canary, weather_df: pd.DataFrame) -> None:
    ws, clock, version = canary
    with use_clock(clock):
        serve_day(ws, _year(weather_df, 1952), "a", flip=version)
        clock.advance(days=1, hours=1)
        step = maintain(ws, "weather")
    assert step.decision.action == "withdraw"
    assert "withdrawn" in step.decision.reasons[0]
    roles = ws.store.roles("weather")
    assert roles.challenger is None and roles.champion == "1.0.0"


def test_regressing_promotion_is_rolled_back(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    clock = SimClock(datetime(1952, 1, 1))
    with use_clock(clock):
        ws = make_workspace(rollout={**ROLLOUT, "mode": "direct"}, params={"n_estimators": 20})
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
        train(ws, "weather", deploy=True)
        serve_day(ws, _year(weather_df, 1952), "before")
        clock.advance(days=1, hours=1)
        bad = train(ws, "weather", deploy=True, force=True).version
        serve_day(ws, _year(weather_df, 1953), "after", flip=bad.version)
        clock.advance(days=1, hours=1)
        result = maintain(ws, "weather")
    assert result.decision.action == "rollback", result.decision.reasons
    assert ws.store.roles("weather").champion == "1.0.0"
    assert ws.store.events("weather")[-1].action == "rollback"
    assert timedelta(0) < clock.now - datetime(1952, 1, 1)

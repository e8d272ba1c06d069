"""The rules the churn-workload system needs: a holdout of the window's last N days, a
minimum span of days of labelled rows, quality that warns or blocks by who started the
training, and a full retrain when the spec names a feature the champion never saw."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import pytest

from retrainer.core.errors import ConfigError, InputError, QualityError
from retrainer.core.spec import parse_spec
from retrainer.datasets import WEATHER_FEATURES
from retrainer.evaluation.splits import holdout_by_days
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import maintain
from retrainer.lifecycle.train import plan, train
from retrainer.plumbing.workspace import Workspace


def _days(df: pd.DataFrame, start: str, days: int) -> pd.DataFrame:
    first = pd.Timestamp(start)
    return df[(df["date"] >= first) & (df["date"] < first + pd.Timedelta(days=days))]


def _model(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "task": "classification",
        "target": "y",
        "id_column": "id",
        "time_column": "t",
        "features": {"numeric": ["x"]},
    }
    body.update(overrides)
    return body


def test_holdout_days_must_be_shorter_than_the_window() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(
            {"models": {"m": _model(training={"window_days": 30, "holdout_days": 30})}},
            environ={},
        )
    said = str(info.value)
    assert "training.holdout_days (30) must be shorter than training.window_days (30)" in said
    ok = parse_spec(
        {"models": {"m": _model(training={"window_days": 365, "holdout_days": 30})}}, environ={}
    )
    assert ok.models["m"].training.holdout_days == 30


def test_holdout_by_days_takes_the_last_days_and_says_when_nothing_is_left_to_train() -> None:
    times = pd.date_range("2026-01-01", periods=100, freq="D")
    train_part, hold = holdout_by_days(times, 30)
    assert (train_part.stop, hold.start, hold.stop) == (70, 70, 100)
    assert times[hold.start] == times[-1] - pd.Timedelta(days=29)  # strictly after the cut
    with pytest.raises(InputError, match=r"holdout_days \(120\) leaves 0 row\(s\) to train on"):
        holdout_by_days(times, 120)


def test_a_training_holds_out_the_last_days_and_records_it(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(training={"window_days": 365, "holdout_days": 30})
    ingest_frame(ws, "weather", _days(weather_df, "1950-01-01", 400))
    v = train(ws, "weather", deploy=True).version
    assert v.details["holdout_days"] == 30
    assert v.details["holdout_rows"] == 30  # one row a day
    newest = pd.Timestamp(v.train_end)
    assert pd.Timestamp(v.details["holdout_start"]) == newest - pd.Timedelta(days=29)
    other = make_workspace(training={"window_days": 365})  # the fraction: 20% of the window
    assert "holdout_days" not in train(other, "weather").version.details


def test_min_days_needs_the_rows_to_span_that_many_days(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ws = make_workspace(quality={"min_rows": 30, "min_days": 90})
    ingest_frame(ws, "weather", _days(weather_df, "1950-01-01", 60))
    p = plan(ws, "weather")
    assert [v.check for v in p.quality.violations] == ["min_days"]
    assert p.quality.violations[0].message == (
        "the labelled rows span 59.0 days (1950-01-01 to 1950-03-01), below min_days 90"
    )
    assert "min_days  -       59     90" in p.quality.render()
    with pytest.raises(QualityError, match=r"min_days\s+-\s+59\s+90"):
        train(ws, "weather")
    ingest_frame(ws, "weather", _days(weather_df, "1950-03-02", 40))
    assert plan(ws, "weather").quality.ok


def test_quality_warns_on_a_scheduled_run_and_blocks_a_manual_one(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    quality = {"min_rows": 100, "min_days": 90, "severity": {"schedule": "warn"}}
    ws = make_workspace(quality=quality)
    ingest_frame(ws, "weather", _days(weather_df, "1950-01-01", 80))
    with pytest.raises(QualityError) as info:
        train(ws, "weather")  # created_by="manual": the CLI's trigger
    assert re.search(r"min_rows\s+-\s+80\s+100", info.value.message)
    assert "quality.severity.manual: warn" in info.value.message
    with pytest.raises(QualityError, match=r"quality\.severity\.api: warn"):
        train(ws, "weather", created_by="api")
    v = train(ws, "weather", created_by="schedule").version
    assert v.details["quality_warnings"] == [
        "80 rows, below min_rows 100",
        "the labelled rows span 79.0 days (1950-01-01 to 1950-03-21), below min_days 90",
    ]
    # a violation no model can be trained past blocks on every trigger
    one_class = _days(weather_df, "1951-01-01", 80).assign(rain=1)
    ingest_frame(ws, "weather", one_class)
    with pytest.raises(QualityError, match=r"min_classes\s+target\s+1\s+2") as info:
        train(ws, "weather", created_by="schedule", days_back=79)
    assert "quality.severity" not in info.value.message  # no setting trains past one class


def test_maintain_judges_quality_by_its_trigger(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    ingest_frame(make_workspace(), "weather", _days(weather_df, "1950-01-01", 120))
    first = train(make_workspace(), "weather", deploy=True).version
    ws = make_workspace(
        quality={"min_days": 150, "severity": {"schedule": "warn"}},
        policy={"max_days_since_full_retrain": 1},
    )
    now = (pd.Timestamp(first.created_at) + pd.Timedelta(days=3)).to_pydatetime()
    manual = maintain(ws, "weather", dry_run=True, now=now, triggered_by="manual").decision
    assert (manual.action, manual.numbers["rule"]) == ("nothing", "data_quality")
    assert "below min_days 150" in manual.reasons[0]
    assert "held back: full_retrain" in manual.reasons[1]
    scheduled = maintain(ws, "weather", now=now, triggered_by="schedule")
    assert scheduled.decision.action == "full_retrain"
    assert scheduled.version == "1.1.0"
    v = ws.store.get_version("weather", "1.1.0")
    assert v.created_by == "schedule" and "below min_days 150" in v.details["quality_warnings"][0]


def test_a_feature_added_to_the_spec_is_a_full_retrain_naming_it(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    every = {"numeric": WEATHER_FEATURES}
    rows = _days(weather_df, "1950-01-01", 400)
    ingest_frame(make_workspace(features=every), "weather", rows)
    fewer = {"numeric": [f for f in WEATHER_FEATURES if f != "dew_point"]}
    first = train(make_workspace(features=fewer), "weather", deploy=True).version
    now = (pd.Timestamp(first.created_at) + pd.Timedelta(days=1)).to_pydatetime()
    same = maintain(make_workspace(features=fewer), "weather", dry_run=True, now=now)
    assert same.decision.numbers["new_features"] == []
    ws = make_workspace(features=every)
    d = maintain(ws, "weather", dry_run=True, now=now).decision
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "new_features")
    assert d.numbers["new_features"] == ["dew_point"]
    assert d.reasons[0] == (
        "new feature(s) dew_point in the spec, not in champion 1.0.0's schema: a full "
        "retrain learns them"
    )
    done = maintain(ws, "weather", now=now)
    assert done.version is not None and done.version.startswith("2.")  # a new schema: major
    roles = ws.store.roles("weather")
    if roles.champion == "1.0.0":  # the gate had no rows newer than 1.0.0 to judge it on
        later = (pd.Timestamp(now) + pd.Timedelta(days=1)).to_pydatetime()
        again = maintain(ws, "weather", dry_run=True, now=later).decision
        # the candidate with the new feature exists: no new major version each check until
        # there are rows newer than it to judge the next one on
        assert again.numbers["rule"] != "new_features", again.reasons

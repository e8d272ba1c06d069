"""Concept drift on the champion's live error stream, debounced across monitor checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd
from test_rollout import serve_day  # same folder (pytest prepends it to sys.path)

from retrainer.core.clock import SimClock, use_clock
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.monitor import monitor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace


def test_errors_jump_is_confirmed_after_persistence(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    clock = SimClock(datetime(1952, 1, 1))
    with use_clock(clock):
        ws = make_workspace(params={"n_estimators": 20}, monitor={"persistence": 2})
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
        champion = train(ws, "weather", deploy=True).version.version
        for year in (1952, 1953):
            serve_day(ws, weather_df[weather_df["date"].dt.year == year], str(year))
            clock.advance(days=1)
            calm = monitor(ws, "weather").concept
        assert calm is not None and not calm["drift"]
        statuses = []
        for year in (1954, 1955, 1956):  # the champion now answers every row wrongly
            serve_day(ws, weather_df[weather_df["date"].dt.year == year], str(year), flip=champion)
            clock.advance(days=1)
            statuses.append(monitor(ws, "weather").concept)
    assert statuses[-1] is not None and statuses[-1]["drift"], statuses
    assert not statuses[0]["drift"]  # one check is never enough (persistence 2)
    saved = ws.store.get_state("weather", "concept")
    assert saved is not None and saved[0] == champion

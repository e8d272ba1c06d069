"""The policy judges the champion on at least monitor.min_samples labelled pairs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd
from test_rollout import serve_day  # same folder (pytest prepends it to sys.path)

from retrainer.core.clock import SimClock, use_clock
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import build_state
from retrainer.lifecycle.monitor import monitor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace


def test_a_daily_stream_widens_the_window_until_it_holds_min_samples(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    """One actual a day: the 7-day window holds 7 pairs, never the 100 the policy needs; the
    state widens it (14, 28, 56, 112 days) and judges the champion on 112."""
    clock = SimClock(datetime(1952, 1, 1))
    with use_clock(clock):
        ws = make_workspace(params={"n_estimators": 20}, monitor={"window": "7d"})
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
        champion = train(ws, "weather", deploy=True).version.version
        days = weather_df[weather_df["date"].dt.year == 1952].head(130)
        for i in range(len(days)):
            clock.advance(days=1)
            serve_day(ws, days.iloc[i : i + 1], f"d{i}")
        now = clock.now
        week = monitor(ws, "weather", now=now).version(champion, "champion")
        state = build_state(ws, "weather", now)
    assert week.labelled <= 8
    assert state.performance is not None and state.performance.n_samples >= 100
    assert state.performance.n_samples <= 113  # 112 days, not the champion's whole life

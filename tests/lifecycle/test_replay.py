"""The replay driver: initial training, routed and logged predictions, delayed actuals,
maintain on a cadence, all on the simulated clock."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from retrainer.apps.demo import demo_spec
from retrainer.apps.replay import ReplayConfig, _Server, replay
from retrainer.core.clock import SimClock, use_clock
from retrainer.core.errors import InputError
from retrainer.core.spec import parse_spec
from retrainer.datasets import weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace


def _ws(tmp_path: Path, **overrides: object) -> Workspace:
    raw = demo_spec(tmp_path)
    raw["models"]["weather"].update(overrides)
    raw["models"]["weather"]["params"] = {"n_estimators": 40, "num_threads": 1}
    return Workspace(parse_spec(raw, environ={}))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return weather()[lambda d: d["date"] < "1952-07-01"]


def test_a_replay_runs_the_loop_on_simulated_time(tmp_path: Path, data: pd.DataFrame) -> None:
    cfg = ReplayConfig(initial_days=730, maintain_every_days=28, delay_days=2)
    seen = []
    with _ws(tmp_path) as ws:
        r = replay(ws, "weather", data, cfg, on_turn=seen.append)
        replayed = data[data["date"] >= "1951-01-01"]
        s = r.summary
        assert s.served == len(replayed) == len(r.correct)
        assert ws.store.count_predictions("weather") == sum(s.by_arm.values())
        assert 0.6 < s.value < 0.95 and s.metric == "accuracy"
        # one decision per turn, in time order, all on the simulated clock
        decisions = ws.store.decisions("weather", limit=1000)
        assert len(decisions) == len(r.timeline) == len(seen)
        stamps = [d.taken_at for d in decisions]
        assert stamps == sorted(stamps) and stamps[-1] < datetime(1953, 1, 1)
        assert stamps[:2] == [datetime(1951, 1, 29), datetime(1951, 2, 26)]  # every 28 days
        versions = ws.store.list_versions("weather")
        assert all(datetime(1950, 12, 1) < v.created_at < datetime(1953, 1, 1) for v in versions)
        assert s.trainings == len(versions) >= 1 and s.training_cpu_seconds > 0
        assert sum(s.decisions.values()) == len(r.timeline)
        # actuals arrived (two days late) and became training rows
        n, _, newest = ws.store.training_stats("weather")
        assert n > 730 and newest is not None and newest >= datetime(1952, 6, 1)


def test_a_replay_needs_an_empty_model_and_a_long_enough_frame(
    tmp_path: Path, data: pd.DataFrame
) -> None:
    with _ws(tmp_path) as ws, pytest.raises(InputError, match="shorter than the initial window"):
        replay(ws, "weather", data, ReplayConfig(initial_days=5000))
    with pytest.raises(InputError, match="at least 1 day"):
        ReplayConfig(maintain_every_days=0)


@pytest.mark.parametrize("mode", ["ab", "shadow"])
def test_the_server_routes_and_logs_every_arm(
    tmp_path: Path, data: pd.DataFrame, mode: str
) -> None:
    with _ws(tmp_path) as ws, use_clock(SimClock(datetime(1951, 1, 1))):
        first = data[data["date"] < "1950-07-01"]
        ingest_frame(ws, "weather", first)
        train(ws, "weather", deploy=True)
        ingest_frame(ws, "weather", data[data["date"] < "1951-01-01"])
        second = train(ws, "weather").version
        ws.store.set_challenger("weather", second.version, mode, 0.5, "test", "test")
        server = _Server(ws, "weather")
        rows = data[data["date"] >= "1951-01-01"].iloc[:200]
        records, served = server.serve(ws.model_spec("weather"), rows)
        arms = Counter(r["arm"] for r in records)
        if mode == "ab":
            assert set(arms) == {"champion", "challenger"} and sum(arms.values()) == 200
            assert 60 < arms["challenger"] < 140
        else:
            assert arms == {"champion": 200, "shadow": 200}
        assert served.notna().all()
        times = {r["created_at"] for r in records}
        assert min(times) == datetime(1951, 1, 1)  # each row is logged at its own day
        ws.store.set_challenger("weather", None, None, None, "stop", "test")
        records, _ = server.serve(ws.model_spec("weather"), rows)
        assert {r["arm"] for r in records} == {"champion"}  # the roles revision moved

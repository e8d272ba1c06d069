"""SIGKILL `retrainer maintain` at random points: no half state, and the killed run's lease is
taken over once it expires."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from retrainer.core.spec import load_spec
from retrainer.families import load_model
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import maintain
from retrainer.plumbing.workspace import Workspace
from waits import SUBPROCESS

pytestmark = pytest.mark.slow
LEASE = "model:weather"


def _free_lease(ws: Workspace) -> None:
    """A killed run keeps its lease until it expires (by design); let it expire."""
    holder = ws.store.lease_holder(LEASE)
    if holder is not None:
        later = holder[1] + timedelta(seconds=1)
        assert ws.store.acquire_lease(LEASE, "next", 60, now=later)
        ws.store.release_lease(LEASE, "next")


@pytest.mark.parametrize(
    ("point", "then"),
    [
        ("train.after_register", "resumed after the run was killed"),
        ("maintain.after_intent", "abandoned"),
    ],
)
def test_a_maintain_killed_mid_action_is_finished_by_the_next(
    point: str,
    then: str,
    store_url: str,
    config_file: Callable[..., Path],
    tmp_path: Path,
    weather_df: pd.DataFrame,
) -> None:
    """SIGKILL right after the version is registered (or right after the decision is stored):
    the decision is stored first and pending, naming the version once it is registered; the
    next maintain completes it (what became of the version) or abandons it, saying why."""
    cfg = config_file(
        store_url, params={"n_estimators": 5}, policy={"max_days_since_full_retrain": 1e-9}
    )
    with Workspace(load_spec(cfg, environ={})) as ws:
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
        maintain(ws, "weather")  # 1.0.0 deployed
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1954-01-01"])
    env = {**os.environ, "RETRAINER_CONFIG": str(cfg), "RETRAINER_FAULT": point}
    proc = subprocess.run(
        [sys.executable, "-m", "retrainer.cli.main", "maintain", "weather"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    with Workspace(load_spec(cfg, environ={})) as ws:
        (killed,) = ws.store.pending_decisions("weather")
        assert killed.action == "full_retrain"
        registered = [v.version for v in ws.store.list_versions("weather")]
        if point == "train.after_register":
            assert registered == ["1.0.0", "1.1.0"]
            assert "registered 1.1.0" in (killed.outcome or "")
        else:
            assert registered == ["1.0.0"]
        _free_lease(ws)
        maintain(ws, "weather")
        assert ws.store.pending_decisions("weather") == []
        first = next(d for d in ws.store.decisions("weather") if d.id == killed.id)
        assert (first.outcome or "").startswith(then), first.outcome
        if point == "train.after_register":  # what became of 1.1.0, as its gate decided
            assert "1.1.0" in (first.outcome or "")


def test_sigkill_during_maintain(
    config_file: Callable[..., Path], tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    cfg = config_file(  # every maintain fully retrains: the kill always lands in real work
        family="randomforest",
        params={"n_estimators": 300, "n_jobs": 1},
        validation={"scheme": "walk_forward", "folds": 3},
        policy={"max_days_since_full_retrain": 1e-9},
    )
    with Workspace(load_spec(cfg, environ={})) as ws:
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1953-01-01"])
    env = {**os.environ, "RETRAINER_CONFIG": str(cfg)}
    env.pop("RETRAINER_REQUIRE_POSTGRES", None)
    rng = random.Random(11)
    killed = 0
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "retrainer.cli.main", "maintain", "weather"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 5.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
        with Workspace(load_spec(cfg, environ={})) as ws:
            versions = {v.version: v for v in ws.store.list_versions("weather")}
            champion = ws.store.roles("weather").champion
            assert champion is None or champion in versions
            for v in versions.values():
                load_model(ws.artifact_bytes(v))
            events = ws.store.events("weather")
            assert (events[-1].to_version if events else None) == champion
            holder = ws.store.lease_holder(LEASE)
            if holder is not None:  # the killed run's lease: refused now, free after expiry
                _owner, expires = holder
                assert not ws.store.acquire_lease(LEASE, "next", 60)
                later = expires + timedelta(seconds=1)
                assert ws.store.acquire_lease(LEASE, "next", 60, now=later)
                ws.store.release_lease(LEASE, "next")
    assert killed >= 1
    with Workspace(load_spec(cfg, environ={})) as ws:  # the next run finishes what they left
        _free_lease(ws)
        maintain(ws, "weather")
        assert ws.store.pending_decisions("weather") == []
        said = " ".join(d.outcome or "" for d in ws.store.decisions("weather", limit=10_000))
        for v in ws.store.list_versions("weather"):
            assert v.version in said, f"no decision names {v.version}: {said}"

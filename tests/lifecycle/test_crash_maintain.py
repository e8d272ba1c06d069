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
from retrainer.lifecycle.workspace import Workspace

pytestmark = pytest.mark.slow
LEASE = "model:weather"


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

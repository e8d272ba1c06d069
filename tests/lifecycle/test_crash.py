"""SIGKILL a `train --deploy` process at several points: the registry stays consistent and
the previous champion keeps loading."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from retrainer.core.spec import load_spec
from retrainer.families import load_model
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

pytestmark = pytest.mark.slow


def _check_consistent(ws: Workspace, previous: str) -> str:
    roles = ws.store.roles("weather")
    versions = {v.version: v for v in ws.store.list_versions("weather")}
    assert roles.champion in versions
    assert roles.champion in (previous, *[v for v in versions if v != previous])
    events = ws.store.events("weather")
    assert events[-1].to_version == roles.champion  # the log agrees with the roles
    for v in versions.values():  # every registered version has its verified bytes
        load_model(ws.artifact_bytes(v))
    return str(roles.champion)


def test_sigkill_during_train_deploy(
    config_file: Callable[..., Path], tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    cfg = config_file(
        params={"n_estimators": 300}, validation={"scheme": "walk_forward", "folds": 3}
    )
    spec = load_spec(cfg, environ={})
    with Workspace(spec) as ws:
        ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1953-01-01"])
        champion = train(ws, "weather", deploy=True).version.version
    env = {**os.environ, "RETRAINER_CONFIG": str(cfg)}
    env.pop("RETRAINER_REQUIRE_POSTGRES", None)
    rng = random.Random(7)
    outcomes = []
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "retrainer.cli.main", "train", "weather", "--deploy"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 6.0))
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        outcomes.append("finished" if finished else "killed")
        with Workspace(load_spec(cfg, environ={})) as ws:
            champion = _check_consistent(ws, champion)
            model = load_model(ws.artifact_bytes(ws.store.get_version("weather", champion)))
            assert len(model.predict(weather_df.head(3))) == 3
    assert "killed" in outcomes

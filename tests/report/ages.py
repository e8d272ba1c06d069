"""Seeded stores of three ages for the report tests: a model one day old (hourly data), one a
month old, and a 40-year history like the demo's (weekly data). Each is a real replay through the
loop (train, serve with the rollout routing, feedback, maintain) on a simulated clock, then a
dry run and a decision with a long reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retrainer.apps.replay import ReplayConfig, replay
from retrainer.core.clock import SimClock, use_clock
from retrainer.core.entities import Decision
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.maintain import maintain
from retrainer.plumbing.workspace import Workspace

LONG_REASON = (
    "live accuracy 0.7123 fell 17.4% below the baseline 0.8625 of version 1.0.0 over the "
    "last 120 days (412 labelled predictions), beyond the degradation threshold of 15%; "
    "data drift on humidity (PSI 0.31 > 0.2) and pressure (KS p < 0.001) confirms it: a "
    "full retrain on the latest window is due"
)


def _synthetic(
    start: datetime, n: int, every: timedelta, per: int = 1, seed: int = 0
) -> pd.DataFrame:
    """A drifting two-feature classification stream, ``per`` rows every ``every``."""
    rng = np.random.default_rng(seed)
    t = [start + (i // per) * every for i in range(n)]
    x1 = rng.normal(0, 1, n) + np.linspace(0, 0.8, n)
    x2 = rng.normal(0, 1, n)
    y = (x1 + 0.5 * x2 + rng.normal(0, 0.6, n) > 0.4).astype(int)
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "t": t, "x1": x1, "x2": x2, "y": y})


def _synthetic_spec(folder: Path) -> dict[str, Any]:
    return {
        "store": f"sqlite:///{folder / 'retrainer.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {
            "stream": {
                "task": "classification",
                "target": "y",
                "id_column": "id",
                "time_column": "t",
                "features": {"numeric": ["x1", "x2"]},
                "family": "randomforest",
                "params": {"n_estimators": 12, "n_jobs": 1},
                "training": {"choice": {"windows": ["all"], "half_lives": ["none"]}},
                "validation": {"scheme": "holdout"},
                "monitor": {"window": "30d", "min_samples": 20, "actuals_delay": "0d"},
                "gate": {"min_rows": 20},
                "fine_tune": {"min_rows": 20},
            }
        },
    }


def build(folder: Path, age: str) -> tuple[dict[str, Any], str]:
    """Seed ``folder`` with a model of ``age`` (day | month | decades); returns the raw spec
    and the model name. (Daily weather over 40 years would cost minutes: feedback joins each
    logged request, one a day; weekly requests of eight rows cost a seventh.)"""
    raw, model = _synthetic_spec(folder), "stream"
    if age == "decades":  # 50 years, 8 rows a week (a request each week); 40 replayed
        data = _synthetic(datetime(1959, 1, 5), 50 * 52 * 8, timedelta(days=7), per=8)
        config = ReplayConfig(initial_days=3650, maintain_every_days=730, delay_days=7)
    else:
        if age == "day":  # a month of rows every 10 minutes; the last day replayed
            data = _synthetic(datetime(2024, 5, 1), 31 * 144, timedelta(minutes=10))
            config = ReplayConfig(initial_days=30, maintain_every_days=1, delay_days=0, days=1)
        else:  # four months of hourly rows; the last month replayed, maintained weekly
            data = _synthetic(datetime(2024, 2, 1), 120 * 24, timedelta(hours=1))
            config = ReplayConfig(initial_days=90, maintain_every_days=7, delay_days=0, days=29)
    (folder / "retrainer.yaml").write_text(yaml.safe_dump(raw))
    with Workspace(parse_spec(raw, environ={})) as ws:
        replay(ws, model, data, config)
        at = max(d.taken_at for d in ws.store.decisions(model, limit=10)) + timedelta(hours=1)
        with use_clock(SimClock(at)):
            maintain(ws, model, dry_run=True, now=at)
        ws.store.add_decision(
            Decision(model, "full_retrain", (LONG_REASON,), {"live_metric": 0.7123},
                     at - timedelta(minutes=30), outcome="gate rejected the candidate")
        )  # fmt: skip
    return raw, model

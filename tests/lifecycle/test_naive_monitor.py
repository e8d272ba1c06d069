"""The naive baselines in the monitor, on SQLite and PostgreSQL: scored on the same labelled
actuals as the versions (once each, however many arms predicted it), incrementally across
checks, per entity where entities repeat, seasonal with ``monitor.season``; a season that does
not divide the data's step is a spec error naming it; the policy rule through ``maintain``'s
state."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import InputError
from retrainer.core.spec_sections import Policy, Rollout
from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle.feedback import record_feedback
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import _alert_state, naive_comparison
from retrainer.lifecycle.monitor import monitor
from retrainer.lifecycle.train import plan
from retrainer.monitoring.naive import fold, new_state
from retrainer.plumbing.workspace import Workspace
from retrainer.policy.decide import decide
from retrainer.policy.state import MaintenanceState, NaiveComparison

MODEL = "weather"
DAY0 = datetime(2030, 1, 1)
DAYS, STORES = 21, 3
NOW = DAY0 + timedelta(days=DAYS)


def value(store: int, day: int) -> float:
    """A weekly pattern per store: the seasonal naive is exact after a week."""
    return 10.0 * store + [0, 1, 3, 2, 5, 8, 4][day % 7]


def scored(ws: Workspace, days: range) -> pd.DataFrame:
    """Each store scored each day by the champion (error +1) and a shadow (error -2)."""
    records, actuals = [], []
    for day in days:
        at = DAY0 + timedelta(days=day)
        for store in range(STORES):
            y = value(store, day)
            inputs = {f: 0.0 for f in WEATHER_FEATURES} | {"date": at.isoformat()}
            for version, arm, err in (("1.0.0", "champion", 1.0), ("1.1.0", "shadow", -2.0)):
                records.append(
                    {"model": MODEL, "request_id": f"r{store}-{day}", "entity_id": f"s{store}",
                     "version": version, "arm": arm, "features": json.dumps(inputs),
                     "output": y + err, "proba": None,
                     "created_at": at - timedelta(hours=1)}
                )  # fmt: skip
            actuals.append({"day_id": f"s{store}", "date": at, "temperature": y})
    ws.store.log_predictions(records)
    return pd.DataFrame(actuals)


def expected_mae(actuals: pd.DataFrame, season: int | None) -> dict[str, float]:
    state = new_state("regression", season)
    y = actuals["temperature"].to_numpy(dtype=float)
    seconds = (actuals["date"] - datetime(1970, 1, 1)).dt.total_seconds().to_numpy()
    said = fold(state, actuals["day_id"].tolist(), seconds, y)
    out = {}
    for name, guesses in said.items():
        known = ~np.isnan(guesses)
        out[name] = float(np.abs(guesses[known] - y[known]).mean())
    return out


def workspace(make: Callable[..., Workspace], store: str, season: str | None) -> Workspace:
    return make(
        store=store,
        task="regression",
        target="temperature",
        features={"numeric": [f for f in WEATHER_FEATURES if f != "temperature"]},
        monitor={"season": season, "window": "30d", "min_samples": 10},
    )


def test_baselines_are_scored_once_per_actual_incrementally(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    ws = workspace(make_workspace, store_url, "7d")
    first = scored(ws, range(0, 10))
    record_feedback(ws, MODEL, first)
    early = monitor(ws, MODEL, now=NOW)
    rest = scored(ws, range(10, DAYS))
    record_feedback(ws, MODEL, rest)
    report = monitor(ws, MODEL, now=NOW)
    assert report.folded == {"predictions": 66, "actuals": 33}  # only what is new
    naive = {b.version: b for b in report.baselines}
    assert set(naive) == {"naive:last", "naive:seasonal", "naive:mean"}
    assert {v.version for v in report.versions} == {"1.0.0", "1.1.0"}  # baselines apart
    everything = pd.concat([first, rest], ignore_index=True)
    want = expected_mae(everything, 7 * 86400)
    for name, b in naive.items():
        # every actual once (not once per arm); the very first has nothing before it
        assert b.labelled == STORES * DAYS - 1
        assert b.arm == "baseline" and b.metrics["mae"] == pytest.approx(want[name], rel=1e-9)
    assert naive["naive:seasonal"].metrics["mae"] < naive["naive:last"].metrics["mae"]
    assert report.version("1.0.0").metrics["mae"] == pytest.approx(1.0)
    assert report.best_baseline() is naive["naive:seasonal"]
    assert len(early.baselines) == 3
    body = report.to_dict()["baselines"]
    assert {b["description"] for b in body} >= {"the previous actual", "the mean so far"}
    # what maintain hands the policy: the champion next to each baseline, by description
    c = naive_comparison(report, "1.0.0", 3.0, ws.model_spec(MODEL))
    assert c is not None and c.window == "30d" and c.n_samples == STORES * DAYS
    assert c.best is not None and c.best[0] == "the actual one season (7d) earlier"
    # each gap tested (Welch's t on the absolute errors) at the gate's live significance
    assert set(c.p_values) == set(c.baselines) and c.significance == 0.05
    assert all(p is not None and 0 <= p <= 1 for p in c.p_values.values())
    again = monitor(ws, MODEL, now=NOW)
    assert again.folded == {"predictions": 0, "actuals": 0}
    assert {b.version: b.metrics for b in again.baselines} == {
        b.version: b.metrics for b in report.baselines
    }


def test_a_season_that_does_not_divide_the_step_is_a_spec_error(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    ws = workspace(make_workspace, store_url, "36h")
    record_feedback(ws, MODEL, scored(ws, range(0, 5)))
    with pytest.raises(InputError) as exc:
        monitor(ws, MODEL, now=NOW)
    message = exc.value.message
    assert "monitor.season is '36h'" in message and "time step (1d" in message
    assert "e.g. 2d" in message
    assert ws.store.monitor_watermark(MODEL) == (0, 0)  # nothing folded, nothing half-counted


def test_a_season_not_dividing_the_training_window_step_stops_training(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    ws = make_workspace(monitor={"season": "36h"})
    ingest_frame(ws, MODEL, weather_df[weather_df["date"] < "1950-06-01"])
    with pytest.raises(InputError, match=r"monitor.season is '36h'.*training window"):
        plan(ws, MODEL)
    ok = make_workspace(store=f"sqlite:///{tmp_path / 'ok.db'}", monitor={"season": "7d"})
    ingest_frame(ok, MODEL, weather_df[weather_df["date"] < "1950-06-01"])
    assert plan(ok, MODEL).window.rows > 0


def test_the_naive_rule_sends_a_naive_better_alert() -> None:
    sent: list[tuple[str, str, str, dict[str, object]]] = []

    class Alerts:
        def alert(self, model: str, event: str, title: str, text: str = "", **f: object) -> None:
            sent.append((event, title, text, f))

    losing = NaiveComparison("mae", "30d", 2.1, {"the previous actual": 1.4}, 500, 40.0, 30.0)
    state = MaintenanceState(model=MODEL, now=NOW, champion="1.0.0", naive=losing)
    d = decide(state, Policy(), Rollout())
    assert d.numbers["rule"] == "naive_baseline"
    _alert_state(Alerts(), MODEL, state, d)  # type: ignore[arg-type]
    assert [(e, t) for e, t, _x, _f in sent] == [
        ("naive_better", "champion 1.0.0 is not better than a naive baseline")
    ]
    assert sent[0][2].startswith(
        "over the last 30d the model's MAE is 2.1, the previous actual's 1.4"
    )
    assert sent[0][3]["baseline_value"] == 1.4
    young = replace(state, naive=replace(losing, champion_age_days=3.0))
    sent.clear()
    _alert_state(Alerts(), MODEL, young, decide(young, Policy(), Rollout()))  # type: ignore[arg-type]
    assert sent == []  # debounced: noted in the decision, no alert at every check

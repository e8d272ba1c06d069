"""A retrain that replaces a critically degraded champion without recovering keeps the
champion's baseline, so the monitor and the policy still see the degradation; one that
recovers (or learnt the rows since the change alone) measures its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from backup_craft import one_line, run_cli
from daily_rows import choice_spec, choice_workspace, two_a_day

from retrainer.core.clock import SimClock, use_clock
from retrainer.core.entities import ModelVersion
from retrainer.core.routing import route
from retrainer.lifecycle.feedback import record_feedback
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import maintain
from retrainer.lifecycle.monitor import monitor
from retrainer.lifecycle.predict import predict_frame, prediction_records
from retrainer.lifecycle.predictor import load_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

START = datetime(2020, 1, 1)


def _days(first: int, days: int, changed: bool, seed: int) -> pd.DataFrame:
    """Two rows a day from day ``first``; y = 10 x0 + 5 x1, or after the change 20 - 10 x0
    (x1 no longer matters)."""
    rng = np.random.default_rng(seed)
    x = rng.random((2 * days, 3))
    y = 20 - 10 * x[:, 0] if changed else 10 * x[:, 0] + 5 * x[:, 1]
    df = two_a_day(x, y + rng.normal(0, 0.1, len(x)))
    df["t"] += pd.Timedelta(days=first)
    df["id"] = [f"d{first}-{i}" for i in range(len(df))]
    return df


def _serve(ws: Workspace, rows: pd.DataFrame) -> None:
    """Score ``rows`` with the version routing gives each, log them, feed back the actuals."""
    roles = ws.store.roles("m")
    version = route(roles, str(rows["id"].iloc[0])).version
    p = load_predictor(ws, ws.store.get_version("m", version))
    out = predict_frame(p, rows)
    ws.store.log_predictions(
        [prediction_records(ws, "m", p, rows, out, uuid.uuid4().hex, arm="champion")]
    )
    record_feedback(ws, "m", rows[["id", "t", "y"]])


MODEL: dict[str, Any] = {"task": "regression", "params": {"num_threads": 1, "n_estimators": 40}}
Changed = tuple[Workspace, SimClock, ModelVersion, ModelVersion]


def _workspace(tmp_path: Path, **model: Any) -> Workspace:
    return choice_workspace(tmp_path, **MODEL, **model)


def _champion_and_retrain(
    ws: Workspace, clock: SimClock, changed: bool
) -> tuple[ModelVersion, ModelVersion]:
    """A champion trained on two years of the first concept, then 120 days (of the second
    when ``changed``) and a full retrain on them, deployed."""
    ingest_frame(ws, "m", _days(0, 730, False, 0))
    champion = train(ws, "m", deploy=True).version
    ingest_frame(ws, "m", _days(730, 120, changed, 1))
    clock.set(START + timedelta(days=850))
    return champion, train(ws, "m", deploy=True, force=True).version


@pytest.fixture
def changed(tmp_path: Path) -> Iterator[Changed]:
    """:func:`_champion_and_retrain` over a change: ``(ws, clock, champion, retrain)``."""
    clock = SimClock(START + timedelta(days=730))
    with use_clock(clock), _workspace(tmp_path) as ws:
        yield ws, clock, *_champion_and_retrain(ws, clock, changed=True)


def test_a_retrain_that_does_not_recover_keeps_the_champions_baseline(
    changed: Changed, tmp_path: Path
) -> None:
    ws, clock, champion, retrain = changed
    kept = retrain.details["kept_baseline"]
    bar = champion.metrics["mae"]
    assert kept["metric"] == "mae" and kept["value"] == pytest.approx(bar)
    assert kept["from"] == champion.version
    assert "critically degraded" in kept["reason"] and "keeps that baseline" in kept["reason"]
    assert retrain.metrics["mae"] > 1.25 * bar  # its own holdout: the changed rows
    assert retrain.baseline["mae"] == pytest.approx(bar)
    assert ws.store.roles("m").champion == retrain.version
    # the monitor judges the new champion against the kept baseline and says why
    for day in range(850, 910, 10):
        clock.set(START + timedelta(days=day + 10))
        _serve(ws, _days(day, 10, True, day))
    clock.set(START + timedelta(days=911))
    report = monitor(ws, "m", window="70d", now=START + timedelta(days=911))
    live = report.version(retrain.version, "champion")
    assert live.baseline["mae"] == pytest.approx(bar)
    assert live.degradation is not None and live.degradation > 0.25
    assert any(f"kept from {champion.version}" in n for n in report.notes), report.notes
    # as `retrainer monitor` shows it
    cfg = tmp_path / "kept.yaml"
    spec = choice_spec(tmp_path, **MODEL)
    cfg.write_text(yaml.safe_dump(spec))
    at = (START + timedelta(days=911)).isoformat()
    out = run_cli(cfg, "monitor", "m", "--window", "70d", "--as-of", at, "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    entry = next(v for v in shown["versions"] if v["version"] == retrain.version)
    assert entry["baseline"]["mae"] == pytest.approx(bar)
    assert any("kept from" in n for n in shown["notes"]), shown["notes"]
    text = run_cli(cfg, "monitor", "m", "--window", "70d", "--as-of", at)
    said = one_line(text.stdout + text.stderr)  # the notes go to stderr
    assert text.returncode == 0 and f"kept from {champion.version}" in said, said
    # and the policy still sees a critical degradation: it retrains again
    result = maintain(ws, "m", now=START + timedelta(days=911))
    assert result.decision.action == "full_retrain", repr(result.decision.numbers)
    first = result.decision.reasons[0]
    assert first.startswith("critical degradation") and f"kept from {champion.version}" in first
    assert result.decision.numbers["baseline_from"] == champion.version


def test_a_version_keeps_a_kept_baseline_of_the_version_that_measured_it(
    changed: Changed,
) -> None:
    """The baseline passes on while no retrain recovers, naming where it was measured."""
    ws, clock, champion, _ = changed
    with use_clock(clock):
        ingest_frame(ws, "m", _days(850, 30, True, 2))
        clock.set(START + timedelta(days=880))
        again = train(ws, "m", deploy=True, force=True).version
    kept = again.details["kept_baseline"]  # 150 days of the new rows among two years
    assert kept["from"] == champion.version  # where it was measured, not the version before
    assert kept["value"] == pytest.approx(champion.metrics["mae"])
    assert again.baseline["mae"] == pytest.approx(champion.metrics["mae"])
    assert again.metrics["mae"] > 1.25 * champion.metrics["mae"]


def test_a_first_version_and_a_calm_retrain_measure_their_own(tmp_path: Path) -> None:
    clock = SimClock(START + timedelta(days=730))
    with use_clock(clock), _workspace(tmp_path) as ws:
        first, calm = _champion_and_retrain(ws, clock, changed=False)
    assert "kept_baseline" not in first.details and first.baseline == first.metrics
    assert "kept_baseline" not in calm.details and calm.baseline == calm.metrics


def test_policy_keep_baseline_false_measures_every_version_on_its_own(tmp_path: Path) -> None:
    clock = SimClock(START + timedelta(days=730))
    with use_clock(clock), _workspace(tmp_path, policy={"keep_baseline": False}) as ws:
        _, retrain = _champion_and_retrain(ws, clock, changed=True)
    assert "kept_baseline" not in retrain.details
    assert retrain.baseline == retrain.metrics

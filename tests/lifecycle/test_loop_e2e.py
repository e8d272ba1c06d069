"""The closed loop end to end on a simulated clock: real weather data and river's synthetic
drift streams (SEA with an abrupt change, Agrawal with a gradual one). Each asserts what the
policy did: fine-tunes, full retrains, a rejected challenger, retraining triggered by the
drift itself. (Automatic rollback of a regressing promotion: tests/lifecycle/test_rollout.py.)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
from river.datasets import synth

from retrainer.apps.replay import ReplayConfig, replay
from retrainer.core.spec import parse_spec
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.plumbing.workspace import Workspace

pytestmark = pytest.mark.slow
FAST = {"n_estimators": 40, "num_threads": 1}


def _workspace(tmp_path: Path, model: dict[str, object]) -> Workspace:
    spec = {
        "store": f"sqlite:///{tmp_path / 'loop.db'}",
        "artifacts": str(tmp_path / "art"),
        "models": {"m": model},
    }
    return Workspace(parse_spec(spec, environ={}))


def test_weather_loop_fine_tunes_retrains_and_rejects(tmp_path: Path) -> None:
    data = weather()[lambda d: d["date"] < "1952-01-01"]
    model = {
        "task": "classification",
        "target": "rain",
        "id_column": "day_id",
        "time_column": "date",
        "features": {"numeric": WEATHER_FEATURES},
        "family": "lightgbm",
        "params": FAST,
        # a calendar fine-tune (off by default) so that one year shows both kinds of training
        "policy": {
            "max_days_since_full_retrain": 200,
            "max_days_since_update": 7,
            "new_data_fraction": None,
        },
        # one row a day: a smaller gate sample lets a fine-tune be judged within the year
        # (a fine-tune is chosen only once its validation slice can reach gate.min_rows)
        # refreshes judged like new recipes (significant gain), so an unhelpful one stays out
        "gate": {"min_rows": 10, "refresh_tolerance": None},
    }
    with _workspace(tmp_path, model) as ws:
        r = replay(ws, "m", data, ReplayConfig(initial_days=730, maintain_every_days=7))
        taken = [d for d in ws.store.decisions("m", limit=1000) if not d.dry_run]
        verdicts = [v.details.get("gate", {}).get("verdict") for v in ws.store.list_versions("m")]
    actions = {
        d.action for d in taken if d.outcome and not d.outcome.startswith(("not done", "failed"))
    }
    assert {"fine_tune", "full_retrain"} <= actions, r.summary.decisions
    assert "reject" in verdicts  # a challenger that was worse stayed out
    fine_tunes = [d for d in taken if d.action == "fine_tune"]
    assert any("days since" in reason for d in fine_tunes for reason in d.reasons)


def _stream_frame(stream: object, n: int, per_day: int) -> pd.DataFrame:
    rows = []
    for i, (x, y) in enumerate(itertools.islice(stream, n)):  # type: ignore[call-overload]
        rows.append(
            {
                "id": f"r{i}",
                "t": pd.Timestamp("2020-01-01")
                + pd.Timedelta(days=i // per_day, seconds=(i % per_day) * 60),
                **{f"x{k}": v for k, v in x.items()},
                "y": int(y),
            }
        )
    return pd.DataFrame(rows)


def _drift_spec(features: list[str]) -> dict[str, object]:
    return {
        "task": "classification",
        "target": "y",
        "id_column": "id",
        "time_column": "t",
        "features": {"numeric": features},
        "family": "lightgbm",
        "params": FAST,
        # time- and volume-based triggers off: whatever trains here was triggered by what
        # the data did
        "policy": {
            "max_days_since_full_retrain": None,
            "max_days_since_update": None,
            "max_fine_tunes": None,
            "new_data_fraction": None,
        },
        "monitor": {"window": "2d"},
        "training": {"window_days": 8},
    }


@pytest.mark.parametrize("kind", ["abrupt", "gradual"])
def test_drift_streams_trigger_retraining(tmp_path: Path, kind: str) -> None:
    per_day, days = 300, 24
    n = per_day * days
    if kind == "abrupt":  # SEA concept 0 -> 3 on day 14 (river needs width >= position/170)
        stream = synth.ConceptDriftStream(
            stream=synth.SEA(variant=0, noise=0.05, seed=1),
            drift_stream=synth.SEA(variant=3, noise=0.05, seed=2),
            position=14 * per_day,
            width=max(60, 14 * per_day // 170),
            seed=3,
        )
    else:  # Agrawal function 1 -> 3, a sigmoid transition over about four days
        stream = synth.ConceptDriftStream(
            stream=synth.Agrawal(classification_function=1, seed=1),
            drift_stream=synth.Agrawal(classification_function=3, seed=2),
            position=14 * per_day,
            width=4 * per_day,
            seed=3,
        )
    frame = _stream_frame(stream, n, per_day)
    features = [c for c in frame.columns if c.startswith("x")]
    with _workspace(tmp_path, _drift_spec(features)) as ws:
        replay(ws, "m", frame, ReplayConfig(initial_days=8, maintain_every_days=1, delay_days=0))
        taken = [d for d in ws.store.decisions("m", limit=1000) if not d.dry_run]
        versions = ws.store.list_versions("m")
    triggered = [
        d
        for d in taken
        if d.action in ("fine_tune", "full_retrain")
        and any(w in " ".join(d.reasons) for w in ("degradation", "drift"))
    ]
    assert triggered, [(d.taken_at, d.action, d.reasons) for d in taken]
    start = "2020-01-15" if kind == "abrupt" else "2020-01-13"  # nothing fires before the change
    assert all(d.taken_at >= pd.Timestamp(start) for d in triggered)
    assert len(versions) > 1
    assert any(v.created_by == "policy" for v in versions)

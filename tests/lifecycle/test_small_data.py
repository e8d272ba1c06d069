"""Small data: a regression model that only ever has 300 rows (a sliding 300-day window, one
row a day) maintained every 100 new rows. Its full retrains hold out 60 rows, so a fixed gate
floor of 100 rows rejected every challenger as "insufficient" and the first model served the
whole stream; with ``gate.min_rows`` unset the floor scales to the window (60) and the gate
judges, with its paired bootstrap, on what the window holds.

The stream is FiveThirtyEight's daily approval average that river's wheel ships (read from the
installed package, nothing downloads), its first 700 days: 300 to start, four turns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer.apps.replay import ReplayConfig, ReplayResult, replay
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.gating import window_min_rows
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.plumbing.workspace import Workspace

pytestmark = pytest.mark.slow
FEATURES = ["gallup", "ipsos", "morning_consult", "rasmussen", "you_gov"]


@pytest.fixture(scope="module")
def approval() -> pd.DataFrame:
    import river.datasets

    raw = pd.read_csv(Path(river.datasets.__file__).parent / "trump_approval.csv.gz").head(700)
    df = raw.drop(columns=["ordinal_date"])
    df.insert(0, "date", pd.to_datetime(raw["ordinal_date"].map(dt.date.fromordinal)))
    df.insert(0, "day_id", [f"a{i:04d}" for i in range(len(df))])
    return df


def _replay(tmp: Path, df: pd.DataFrame, **model: Any) -> tuple[ReplayResult, list[Any]]:
    spec = {
        "task": "regression",
        "family": "lightgbm",
        "params": {"num_threads": 1, "n_estimators": 60},
        "target": "five_thirty_eight",
        "id_column": "day_id",
        "time_column": "date",
        "features": {"numeric": FEATURES},
        "training": {"window_days": 300},
        **model,
    }
    raw = {"store": f"sqlite:///{tmp / 'r.db'}", "artifacts": str(tmp / "a"), "models": {"m": spec}}
    with Workspace(parse_spec(raw, environ={})) as ws:
        result = replay(ws, "m", df, ReplayConfig(initial_days=300, maintain_every_days=100))
        versions = sorted(ws.store.list_versions("m"), key=lambda v: v.created_at)
        decisions = ws.store.decisions("m", limit=100)
    gates = [(v, v.details["gate"]) for v in versions[1:]]
    assert len(gates) >= 3  # a training at every turn
    return result, [(v, g, decisions) for v, g in gates]


def test_a_300_row_model_is_retrained_when_its_gate_scales(
    tmp_path: Path, approval: pd.DataFrame
) -> None:
    result, gates = _replay(tmp_path, approval)
    deployed = [v for v, g, _ in gates if g["verdict"] == "pass" and v.details["deployed"]]
    assert deployed, [g["reasons"][:1] for _, g, _ in gates]
    for _, g, _ in gates:
        assert g["min_rows"] == 60 and g["min_rows_scaled"] is not None
        assert "min_rows 60 (scaled: the holdout of a window of" in " ".join(g["reasons"])
        # never "insufficient" for want of rows the window cannot hold
        assert g["verdict"] != "insufficient" or g["n_rows"] < 60
    assert result.summary.deployments >= 2  # the initial version and at least one retrain


def test_an_explicit_min_rows_still_wins(tmp_path: Path, approval: pd.DataFrame) -> None:
    """The old behaviour, asked for: 100 rows that a 60-row holdout never has."""
    result, gates = _replay(tmp_path, approval, gate={"min_rows": 100})
    assert {g["verdict"] for _, g, _ in gates} == {"insufficient"}
    assert all(g["min_rows"] == 100 and g["min_rows_scaled"] is None for _, g, _ in gates)
    assert gates[0][1]["reasons"][0] == "only 60 labelled rows to compare on; the gate needs 100"
    assert result.summary.deployments == 1


def test_fine_tunes_of_100_new_rows_are_judged(tmp_path: Path, approval: pd.DataFrame) -> None:
    """A fine-tune every 100 rows: its validation slice is raised from 10 rows to the scaled
    60 (40 left to learn from), so the gate judges it instead of "insufficient"."""
    policy = {  # the rows rule alone: no retrain for degradation or a naive baseline
        "new_data_fraction": None,
        "fine_tune_every_rows": 100,
        "critical_degradation": 5,
        "naive_margin": None,
    }
    _, gates = _replay(tmp_path, approval, policy=policy, fine_tune={"rounds": 20})
    tunes = [(v, g) for v, g, _ in gates if v.kind == "fine_tune"]
    assert tunes
    for _, g in tunes:  # its 60 validation rows are all newer than the champion
        assert g["n_rows"] == 60 and g["min_rows"] == 60 and g["verdict"] != "insufficient"
    decisions = gates[0][2]
    assert all(d.numbers.get("gate_min_rows") == 60 for d in decisions)
    assert all(d.numbers.get("fine_tune_rows_needed") == 90 for d in decisions)


@pytest.mark.parametrize(
    ("training", "gate", "rows", "note"),
    [
        ({}, {}, 40, "the holdout of a window of 200 rows holds 40"),
        ({"window_days": 100}, {}, 30, "of a window of 100 rows holds 20; 30 at the least"),
        ({"holdout_days": 45}, {}, 45, "the holdout of a window of 200 rows holds 45"),
        ({}, {"min_rows": 100}, 100, None),
    ],
)
def test_the_policy_and_fine_tunes_count_the_window_as_it_is(
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    training: dict[str, Any],
    gate: dict[str, Any],
    rows: int,
    note: str | None,
) -> None:
    ws = make_workspace(training=training, gate=gate)
    ingest_frame(ws, "weather", weather_df.head(200), where="test")
    need = window_min_rows(ws, ws.model_spec("weather"))
    assert need.rows == rows
    assert need.note is None if note is None else note in (need.note or "")

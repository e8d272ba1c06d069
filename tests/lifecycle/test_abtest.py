"""`retrainer abtest` on a regression model whose primary metric (r2) has no significance
test from live aggregates: every optional number in its output is said in words, never
formatted as None (it crashed with a TypeError)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.clock import SimClock, use_clock
from retrainer.core.routing import route
from retrainer.datasets import weather
from retrainer.lifecycle import rollout
from retrainer.lifecycle.feedback import record_feedback
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import maintain
from retrainer.lifecycle.predict import predict_frame, prediction_records
from retrainer.lifecycle.predictor import load_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

MODEL = "temp"
FEATURES = ["temperature", "dew_point", "sea_level_pressure", "visibility", "average_wind_speed"]


def regression_spec(tmp_path: Path, rollout_section: dict[str, object]) -> Path:
    path = tmp_path / "retrainer.yaml"
    spec = {
        "store": f"sqlite:///{tmp_path / 'r.db'}",
        "artifacts": str(tmp_path / "artifacts"),
        "models": {
            MODEL: {
                "task": "regression",
                "target": "maximum_temperature",
                "id_column": "day_id",
                "time_column": "date",
                "features": {"numeric": FEATURES},
                "family": "lightgbm",
                "params": {"n_estimators": 20, "num_threads": 1},
                "gate": {"primary_metric": "r2"},
                "rollout": rollout_section,
            }
        },
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def serve(ws: Workspace, rows: pd.DataFrame, target: str) -> None:
    """Score rows through the routing the server uses, log them, feed back the actuals."""
    roles = ws.store.roles(MODEL)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, eid in enumerate(rows["day_id"]):
        r = route(roles, eid)
        groups.setdefault((r.version, r.arm), []).append(i)
    records = []
    for (version, arm), idx in groups.items():
        part = rows.iloc[idx]
        p = load_predictor(ws, ws.store.get_version(MODEL, version))
        records.append(
            prediction_records(
                ws, MODEL, p, part, predict_frame(p, part), uuid.uuid4().hex, arm=arm
            )
        )
    ws.store.log_predictions(records)
    record_feedback(ws, MODEL, rows[["day_id", "date", target]])


def test_abtest_of_an_r2_model_reports_without_a_p_value(tmp_path: Path) -> None:
    df = weather()
    config = regression_spec(tmp_path, {"mode": "ab", "fraction": 0.5, "watch": "1d"})
    clock = SimClock(pd.Timestamp("1953-01-01").to_pydatetime())
    with use_clock(clock), Workspace.open(config) as ws:
        ingest_frame(ws, MODEL, df[df["date"] < "1953-01-01"])
        train(ws, MODEL, deploy=True)
        challenger = train(ws, MODEL, reason="challenger").version
        rollout.start(ws, MODEL, challenger, by="test", reason="r2 A/B")
        serve(
            ws,
            df[(df["date"] >= "1953-01-01") & (df["date"] < "1954-01-01")],
            "maximum_temperature",
        )
        clock.advance(days=1, hours=1)
        with use_clock(clock):
            res = CliRunner().invoke(app, ["-c", str(config), "abtest", MODEL])
            as_json = CliRunner().invoke(app, ["-c", str(config), "abtest", MODEL, "--json"])
        step = maintain(ws, MODEL)  # the A/B's watch window is judged with the same words
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"{challenger.version} (challenger)" in text
    assert "verdict: no significant difference yet: no significance test for r2" in text
    assert "None" not in text
    body = json.loads(as_json.stdout)
    assert body["comparison"]["metric"] == "r2" and body["comparison"]["p_value"] is None
    assert body["comparison"]["test"] == "none"
    assert step.decision.action == "nothing"
    assert "no significance test for r2" in step.decision.reasons[0]
    assert "None" not in step.decision.reasons[0]

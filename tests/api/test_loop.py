"""The notebook loop through ``retrainer.open``: ingest, train, predict, feedback, monitor,
and the rest of the facade on one trained model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import retrainer
from retrainer.api.results import PredictResult, TrainResult

from .apihelp import MODEL


def test_the_notebook_loop_joins_its_actuals(rt: retrainer.Retrainer, days: pd.DataFrame) -> None:
    """predict logs by default, so the actuals sent to feedback match and monitor sees them
    (the issue: a notebook loop silently got 0 matched actuals)."""
    ingested = rt.ingest(MODEL, days.iloc[:1200])
    assert (ingested.inserted, ingested.rejected) == (1200, 0)
    trained = rt.train(MODEL, deploy=True)
    assert isinstance(trained, TrainResult)
    assert (trained.version, trained.role, trained.deployed) == ("1.0.0", "champion", True)

    new = days.iloc[1200:1300]
    scored = rt.predict(MODEL, new.drop(columns=["rain"]))
    assert isinstance(scored, PredictResult) and scored.logged
    assert scored.frame is not None and len(scored.frame) == scored.rows == 100
    assert {"prediction", "proba_0", "proba_1"} <= set(scored.frame.columns)
    assert scored.frame.index.equals(new.index)  # rows come back where they were

    fed = rt.feedback(MODEL, new[["day_id", "date", "rain"]])
    assert (fed.received, fed.matched, fed.unmatched) == (100, 100, 0)

    live = rt.monitor(MODEL).version("1.0.0")
    assert live.predictions == 100 and live.labelled == 100
    assert live.metrics["accuracy"] is not None

    unlogged = rt.predict(MODEL, days.iloc[1300:1310], log=False)
    assert unlogged.request_id is None and not unlogged.logged
    assert rt.feedback(MODEL, days.iloc[1300:1310][["day_id", "rain"]]).matched == 0
    assert rt.monitor(MODEL).version("1.0.0").predictions == 100


def test_the_rest_of_the_facade(
    rt: retrainer.Retrainer, days: pd.DataFrame, tmp_path: Path
) -> None:
    """Files in and out, fine-tune, versions, deploy, rollback, drift, maintain, report; each
    result's to_dict() survives a JSON round trip unchanged."""
    src = tmp_path / "rows.csv"
    days.iloc[:1200].to_csv(src, index=False)
    results: list[object] = [rt.ingest(MODEL, src), rt.plan(MODEL)]
    first = rt.train(MODEL, deploy=True)
    results.append(first)

    features = tmp_path / "new.parquet"
    days.iloc[1200:1300].drop(columns=["rain"]).to_parquet(features)
    streamed = rt.predict(MODEL, features, out=tmp_path / "scored.csv")
    assert streamed.frame is None and streamed.rows == 100
    assert len(pd.read_csv(tmp_path / "scored.csv")) == 100
    actuals = tmp_path / "actuals.jsonl"
    days.iloc[1200:1300][["day_id", "rain"]].to_json(actuals, orient="records", lines=True)
    fed = rt.feedback(MODEL, actuals)
    assert fed.matched == 100
    results += [streamed, fed]

    rt.ingest(MODEL, days.iloc[1300:1400])
    tuned = rt.fine_tune(MODEL)
    assert (tuned.version, tuned.record.parent) == ("1.0.1", "1.0.0")
    assert set(tuned.champion_metrics) >= {"accuracy"}
    second = rt.train(MODEL)
    listed = rt.versions(MODEL)
    assert [v.version for v in listed] == ["1.0.0", "1.0.1", "1.1.0"]
    assert listed.champion is not None and listed.champion.version == "1.0.0"

    moved = rt.deploy(MODEL, second.version, force=True)
    assert (moved.action, moved.from_version, moved.to_version) == ("deploy", "1.0.0", "1.1.0")
    back = rt.rollback(MODEL)
    assert (back.action, back.to_version) == ("rollback", "1.0.0")
    drift = rt.drift(MODEL)
    assert drift.version == "1.0.0" and len(drift.features) == 8
    kept = rt.maintain(MODEL, dry_run=True)
    assert kept.decision.dry_run and kept.action
    report = rt.report(MODEL, tmp_path / "report.html")
    assert report.bytes == (tmp_path / "report.html").stat().st_size > 0
    results += [tuned, second, listed, moved, back, drift, kept, report, rt.monitor(MODEL)]

    for r in results:
        as_dict = r.to_dict()  # type: ignore[attr-defined]
        assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict, type(r).__name__

"""Feedback: joining actuals to logged predictions, idempotence, rejects, training rows, and
the resumable JSONL follower; store parts on SQLite and PostgreSQL, the CLI on SQLite."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle.feedback import feedback_file, follow_feedback, record_feedback
from retrainer.plumbing.workspace import Workspace
from retrainer.store import schema as t
from retrainer.store.segments import encode

MODEL = "weather"
T0 = datetime(2030, 1, 1, 12, 0)


def log(
    ws: Workspace,
    entities: list[str],
    *,
    at: datetime = T0,
    version: str = "1.0.0",
    arm: str = "champion",
    proba: float = 0.8,
    request_id: str = "r1",
) -> None:
    ws.store.log_predictions(
        [
            {
                "model": MODEL,
                "request_id": request_id,
                "entity_id": e,
                "version": version,
                "arm": arm,
                "features": json.dumps({f: float(i) for f in WEATHER_FEATURES}),
                "output": int(proba > 0.5),
                "proba": proba,
                "created_at": at,
            }
            for i, e in enumerate(entities)
        ]
    )


def actual_links(ws: Workspace) -> dict[tuple[str, datetime | None], int | None]:
    frame = ws.store.actuals_frame(MODEL)
    return {
        (e, None if pd.isna(at) else at.to_pydatetime()): None if pd.isna(p) else int(p)
        for e, at, p in zip(
            frame["entity_id"], frame["event_time"], frame["prediction_id"], strict=True
        )
    }


def test_join_reject_dedupe_and_idempotent(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    ws = make_workspace(store=store_url)
    log(ws, ["d1", "d2", "d3", "d4", "d5"])
    frame = pd.DataFrame(
        {
            "day_id": ["d1", "d2", "d3", "d4", "zz", "d1", None, "d2"],
            "rain": [1, 0, 1, 0, 1, 1, 1, None],
        }
    )
    r = record_feedback(ws, MODEL, frame)
    assert (r.received, r.matched, r.unmatched, r.duplicates, r.rejected) == (8, 4, 1, 1, 2)
    assert [(x.line, x.reason) for x in r.first_rejects] == [
        (7, "missing id (day_id)"),
        (8, "missing target (rain)"),
    ]
    assert r.training_rows_added == 4
    assert ws.store.count_actuals(MODEL) == 5 and ws.store.training_stats(MODEL)[0] == 4
    links = actual_links(ws)
    assert links[("zz", None)] is None and all(v for k, v in links.items() if k[0] != "zz")
    rows = ws.store.training_frame(MODEL).set_index("entity_id")
    assert rows.loc["d3", "target"] == 1 and rows.loc["d3", "temperature"] == 2.0
    assert rows.loc["d3", "event_time"] == pd.Timestamp(T0)  # no feedback time: prediction time

    again = record_feedback(ws, MODEL, frame)  # the same feedback twice changes nothing
    assert (again.received, again.matched, again.unmatched, again.duplicates) == (8, 0, 0, 6)
    assert again.training_rows_added == 0
    assert ws.store.count_actuals(MODEL) == 5 and ws.store.training_stats(MODEL)[0] == 4


def test_repeated_ids_join_the_prediction_nearest_before_the_event(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    ws = make_workspace(store=store_url)
    for hours in (0, 10, 20):
        log(ws, ["e1"], at=T0 + timedelta(hours=hours), request_id=f"r{hours}")
    log(ws, ["e1"], at=T0 + timedelta(hours=15), arm="shadow", request_id="r10")
    p = t.predictions.c
    with ws.store.read() as conn:
        ids = {(r.created_at, r.arm): r.id for r in conn.execute(select(p.id, p.created_at, p.arm))}
    champion = {h: ids[(T0 + timedelta(hours=h), "champion")] for h in (0, 10, 20)}
    frame = pd.DataFrame(
        {
            "day_id": ["e1", "e1", "e1"],
            "date": [
                str(T0 + timedelta(hours=16)),
                str(T0 - timedelta(days=1)),
                str(T0 + timedelta(hours=25)),
            ],
            "rain": [1, 0, 1],
        }
    )
    r = record_feedback(ws, MODEL, frame)
    assert (r.matched, r.unmatched, r.rejected) == (3, 0, 0)
    links = actual_links(ws)
    assert links[("e1", T0 + timedelta(hours=16))] == champion[10]  # not the shadow at 15h
    assert links[("e1", T0 - timedelta(days=1))] == champion[0]  # all after: the earliest
    assert links[("e1", T0 + timedelta(hours=25))] == champion[20]
    # a training row is an id at a time: three observations of e1, three rows
    assert r.training_rows_added == 3
    assert ws.store.training_frame(MODEL)["event_time"].tolist() == [
        pd.Timestamp(T0 - timedelta(days=1)),
        pd.Timestamp(T0 + timedelta(hours=16)),
        pd.Timestamp(T0 + timedelta(hours=25)),
    ]


def test_a_forecast_of_many_times_joins_each_actual_to_its_own_row(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    """A row's identity is its id and time: one request that forecast several hours of one
    entity (the rows carry the time column) joins each actual to the prediction of its own
    hour, not to one of them chosen by the request's time."""
    ws = make_workspace(store=store_url)
    hours = [T0 + timedelta(hours=h) for h in (1, 2, 3)]
    ws.store.log_predictions(
        [
            {
                "model": MODEL,
                "request_id": "forecast",
                "entity_id": "e1",
                "version": "1.0.0",
                "arm": "champion",
                "features": json.dumps(
                    {**{f: float(i) for f in WEATHER_FEATURES}, "date": at.isoformat()}
                ),
                "output": i % 2,
                "proba": 0.2 + 0.3 * i,
                "created_at": T0,
            }
            for i, at in enumerate(hours)
        ]
    )
    p = t.predictions.c
    with ws.store.read() as conn:
        ids = [r.id for r in conn.execute(select(p.id).order_by(p.proba))]
    frame = pd.DataFrame({"day_id": "e1", "date": [str(at) for at in hours], "rain": [0, 1, 0]})
    r = record_feedback(ws, MODEL, frame)
    assert (r.matched, r.unmatched, r.training_rows_added) == (3, 0, 3)
    links = actual_links(ws)
    assert [links[("e1", at)] for at in hours] == ids
    rows = ws.store.training_frame(MODEL).sort_values("event_time")
    assert rows["temperature"].tolist() == [0.0, 1.0, 2.0]  # each hour's own inputs


def test_regression_needs_numeric_targets_and_times_must_parse(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    ws = make_workspace(
        store=store_url,
        task="regression",
        target="temperature",
        features={"numeric": [f for f in WEATHER_FEATURES if f != "temperature"]},
    )
    log(ws, ["a", "b", "c"])
    frame = pd.DataFrame(
        {
            "day_id": ["a", "b", "c"],
            "date": ["2030-01-02", "not a date", "2030-01-02"],
            "temperature": ["1.5", "2.0", "warm"],
        }
    )
    r = record_feedback(ws, MODEL, frame)
    assert (r.received, r.matched, r.rejected) == (3, 1, 2)
    assert [x.line for x in r.first_rejects] == [2, 3]
    assert "unparseable time in 'date'" in r.first_rejects[0].reason
    assert r.first_rejects[1].reason == "non-numeric target 'temperature': warm"
    assert ws.store.training_frame(MODEL)["target"].tolist() == [1.5]


def test_follow_resumes_without_rereading_or_skipping(
    store_url: str, make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = make_workspace(store=store_url)
    log(ws, [f"d{i}" for i in range(8)])
    path = tmp_path / "actuals.jsonl"
    line = lambda i: json.dumps({"day_id": f"d{i}", "rain": i % 2}) + "\n"  # noqa: E731
    path.write_text(line(0) + line(1) + "{broken\n" + line(2) + '{"day_id": "d3", "ra')
    first = follow_feedback(ws, MODEL, path, max_seconds=0)
    assert (first.received, first.matched, first.rejected) == (4, 3, 1)
    assert first.first_rejects[0].line == 3 and "not valid JSON" in first.first_rejects[0].reason
    with path.open("a") as fh:  # the partial line completes; two more arrive
        fh.write('in": 1}\n' + line(4) + line(5))
    second = follow_feedback(ws, MODEL, path, max_seconds=0, batch_lines=2)
    assert (second.received, second.matched, second.duplicates) == (3, 3, 0)
    third = follow_feedback(ws, MODEL, path, max_seconds=0)
    assert third.received == 0  # nothing is read twice
    saved = ws.store.feedback_offset(MODEL, str(path.resolve()))
    assert saved is not None and saved.offset == path.stat().st_size and saved.line == 7

    rotated = tmp_path / "new.jsonl"  # a rotated file (new inode) is read from its start
    rotated.write_text(line(6) + line(7))
    os.replace(rotated, path)
    fourth = follow_feedback(ws, MODEL, path, max_seconds=0)
    assert (fourth.received, fourth.matched) == (2, 2)
    assert ws.store.count_actuals(MODEL) == 8


def test_feedback_file_formats_and_missing_columns(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    log(ws, ["d1", "d2"])
    csv = tmp_path / "fb.csv"
    pd.DataFrame({"day_id": ["d1"], "rain": [1]}).to_csv(csv, index=False)
    pq = tmp_path / "fb.parquet"
    pd.DataFrame({"day_id": ["d2"], "rain": [0]}).to_parquet(pq)
    assert feedback_file(ws, MODEL, csv).matched == 1
    assert feedback_file(ws, MODEL, pq).matched == 1
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["d1"], "rain": [1]}).to_csv(bad, index=False)
    from retrainer.core.errors import InputError

    with pytest.raises(InputError, match=r"needs column\(s\) \['day_id'\]"):
        feedback_file(ws, MODEL, bad)


# -- CLI -------------------------------------------------------------------------------------

runner = CliRunner()


def cli(config: Path, *args: Any, code: int) -> str:
    res = runner.invoke(app, ["-c", str(config), *[str(a) for a in args]])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, res.output
    return res.stdout if "--json" in args else res.output  # progress lines go to stderr


def test_cli_feedback_exit_codes_and_json(
    config_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    config = config_file()
    with Workspace.open(config) as ws:
        log(ws, ["d1", "d2"])
    good = tmp_path / "good.jsonl"
    good.write_text('{"day_id": "d1", "rain": 1}\n{"day_id": "nope", "rain": 0}\n')
    body = json.loads(cli(config, "feedback", MODEL, good, "--json", code=0))
    assert body == {
        "received": 2,
        "matched": 1,
        "unmatched": 1,
        "duplicates": 0,
        "rejected": 0,
        "first_rejects": [],
        "training_rows_added": 1,
    }
    text = cli(config, "feedback", MODEL, good, code=0)
    assert "0 matched, 0 unmatched, 2 duplicates" in text
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"day_id": null, "rain": 1}\nnot json\n')
    text = cli(config, "feedback", MODEL, bad, code=2)
    assert "line 1: missing id (day_id)" in text and "line 2: not valid JSON" in text
    missing = tmp_path / "missing.csv"
    missing.write_text("day_id,other\nd1,1\n")
    assert "needs column(s) ['rain']" in cli(config, "feedback", MODEL, missing, code=2)
    assert "does not exist" in cli(config, "feedback", MODEL, tmp_path / "none.csv", code=2)
    assert "not in the spec" in cli(config, "feedback", "nomodel", good, code=2)
    followed = json.loads(
        cli(config, "feedback", MODEL, good, "--follow", "--max-seconds", "0", "--json", code=0)
    )
    assert (followed["received"], followed["duplicates"]) == (2, 2)
    text = cli(config, "feedback", MODEL, missing, "--follow", "--max-seconds", "0", code=2)
    assert "--follow tails plain JSONL files" in text


def _champion_with_classes(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, classes: list[Any]
) -> None:
    from dataclasses import replace

    from retrainer.core.entities import ModelVersion

    version = ModelVersion(
        model=MODEL, version="0.0.0", parent=None, family="lightgbm", params={},
        created_at=T0, created_by="manual", reason="test", kind="initial", train_start=None,
        train_end=None, n_rows=1, fingerprint="f" * 64, feature_schema={}, metrics={},
        artifact_uri="mem://none", sha256="0" * 64, hmac=None, size_bytes=1,
    )  # fmt: skip
    ws.store.register(replace(version), "major", deploy=True)
    monkeypatch.setattr(ws, "classes", lambda *_a: classes)


def test_labels_that_are_not_classes_of_the_model_are_rejected(
    make_workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace()
    _champion_with_classes(ws, monkeypatch, [0, 1])
    log(ws, ["d1", "d2", "d3", "d4", "d5"])
    frame = pd.DataFrame(
        {"day_id": ["d1", "d2", "d3", "d4", "d5"], "rain": [1, "maybe", 2.0, "1", 0.0]}
    )
    r = record_feedback(ws, MODEL, frame)
    assert (r.matched, r.rejected, r.training_rows_added) == (3, 2, 3)
    assert [(x.line, x.reason) for x in r.first_rejects] == [
        (2, "label 'rain' = maybe is not a class of the model (known: 0, 1)"),
        (3, "label 'rain' = 2.0 is not a class of the model (known: 0, 1)"),
    ]
    rows = ws.store.training_frame(MODEL).set_index("entity_id")
    assert sorted(rows.index) == ["d1", "d4", "d5"]
    assert rows["target"].tolist() == [1, 1, 0]  # "1" and 0.0 stored as the model's classes
    assert {type(v) for v in rows["target"].tolist()} == {int}


def test_text_labels_of_a_regression_are_rejected(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(
        task="regression",
        target="temperature",
        features={"numeric": [f for f in WEATHER_FEATURES if f != "temperature"]},
    )
    log(ws, ["a", "b", "c"])
    frame = pd.DataFrame({"day_id": ["a", "b", "c"], "temperature": ["yes", "12.5", "inf"]})
    r = record_feedback(ws, MODEL, frame)
    assert (r.matched, r.rejected) == (1, 2)
    assert [x.reason for x in r.first_rejects] == [
        "non-numeric target 'temperature': yes",
        "non-numeric target 'temperature': inf",
    ]
    assert ws.store.training_frame(MODEL)["target"].tolist() == [12.5]


def test_feedback_of_one_batch_reads_each_stored_input_once(
    store_url: str, make_workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The join is linear: a batch of N logged rows is fetched and parsed once, not per row."""
    from retrainer.store import feedback as store_feedback
    from retrainer.store import predlog

    ws = make_workspace(store=store_url)
    n = 2_000
    ids = [f"e{i}" for i in range(n)]
    body = json.dumps({"rows": [{f: float(i) for f in WEATHER_FEATURES} for i in range(n)]})
    rec = predlog.request_record(MODEL, "r1", "1.0.0", "champion", T0, body, ids, [1] * n)
    parquet = pd.DataFrame({f: [float(i) for i in range(n)] for f in WEATHER_FEATURES})
    ids2 = [f"p{i}" for i in range(n)]
    rec2 = predlog.request_record(
        MODEL, "r2", "1.0.0", "champion", T0, encode(pa.Table.from_pandas(parquet)), ids2, [0] * n
    )
    ws.store.log_predictions([rec, rec2])
    parsed: list[int] = []
    real_rows, real_decode = store_feedback.many_input_rows, store_feedback.decode
    monkeypatch.setattr(
        store_feedback, "many_input_rows", lambda b: parsed.extend([1] * len(b)) or real_rows(b)
    )
    monkeypatch.setattr(
        store_feedback, "decode", lambda *a, **k: parsed.append(2) or real_decode(*a, **k)
    )
    fetched: list[int] = []
    real_inputs = ws.store._inputs
    monkeypatch.setattr(
        ws.store, "_inputs", lambda conn, keys: fetched.extend(keys) or real_inputs(conn, keys)
    )
    frame = pd.DataFrame({"day_id": ids + ids2, "rain": [1] * n + [0] * n})
    r = record_feedback(ws, MODEL, frame)
    assert (r.matched, r.training_rows_added) == (2 * n, 2 * n)
    assert sorted(parsed) == [1, 2] and len(fetched) == 2  # each body fetched and parsed once
    rows = ws.store.training_frame(MODEL).set_index("entity_id")
    assert rows.loc["e1999", "temperature"] == 1999.0 and rows.loc["p7", "target"] == 0


def test_entities_scored_twice_in_one_batch_still_read_it_once(
    make_workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entities with several predictions are matched by their rows' times, read from the
    logged input; the training rows then read the same input: one fetch serves both."""
    from retrainer.store import predlog

    ws = make_workspace()
    n = 50
    days = ["1950-01-01", "1950-01-02"]
    rows = [{"date": d, **{f: float(i) for f in WEATHER_FEATURES}} for d in days for i in range(n)]
    ids = [f"e{i}" for _ in days for i in range(n)]
    body = json.dumps({"rows": rows})
    rec = predlog.request_record(MODEL, "r1", "1.0.0", "champion", T0, body, ids, [1] * 2 * n)
    ws.store.log_predictions([rec])
    fetched: list[str] = []
    real_inputs = ws.store._inputs
    monkeypatch.setattr(
        ws.store, "_inputs", lambda conn, keys: fetched.extend(keys) or real_inputs(conn, keys)
    )
    frame = pd.DataFrame({"day_id": ids, "date": [r["date"] for r in rows], "rain": [1] * 2 * n})
    r = record_feedback(ws, MODEL, frame)
    assert (r.matched, r.training_rows_added) == (2 * n, 2 * n)
    assert len(fetched) == 1  # the time lookup and the training rows share one parse


def test_an_actual_that_arrives_before_its_prediction_is_logged_is_joined_late(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    """The log is written behind the response (and spooled while the store is down): an
    actual can be stored before the prediction it labels. The monitor joins it, once."""
    from retrainer.core.clock import SimClock, use_clock
    from retrainer.lifecycle.monitor import monitor

    ws = make_workspace(store=store_url)
    clock = SimClock(T0 + timedelta(minutes=5))
    with use_clock(clock):
        log(ws, ["seen"])
        monitor(ws, MODEL, window="30d")  # the watermark passes "seen"'s prediction
        early = pd.DataFrame({"day_id": ["passed", "ahead", "later", "seen"], "rain": 1})
        r = record_feedback(ws, MODEL, early)  # received at T0 + 5 min
        assert (r.matched, r.unmatched) == (1, 3)
        monitor(ws, MODEL, window="30d")  # the watermark passes the unmatched actuals too
        log(ws, ["passed"], request_id="r2")  # served at T0, logged only now
        log(ws, ["later"], at=T0 + timedelta(minutes=9), request_id="r3")  # after the actual
        fresh = record_feedback(ws, MODEL, pd.DataFrame({"day_id": ["fresh"], "rain": 0}))
        assert fresh.unmatched == 1  # an actual the watermark has not passed yet
        log(ws, ["fresh"], request_id="r5")
        report = monitor(ws, MODEL, window="30d")
        assert report.version("1.0.0").labelled == 3  # "seen", "passed", "fresh"; not "later"
        log(ws, ["ahead"], request_id="r4")
        clock.advance(days=2)  # beyond monitor.late_join (1d) of the actual's arrival
        assert monitor(ws, MODEL, window="30d").version("1.0.0").labelled == 3
    links = actual_links(ws)
    assert links[("passed", None)] and links[("ahead", None)] is None
    assert links[("later", None)] is None  # served after the actual arrived: not its label
    rows = ws.store.training_frame(MODEL).set_index("entity_id")
    assert set(rows.index) == {"seen", "passed", "fresh"} and rows.loc["passed", "target"] == 1
    with use_clock(clock):
        again = monitor(ws, MODEL, window="30d")  # nothing left to join: counted once
    assert again.version("1.0.0").labelled == 3


def test_ids_the_store_cannot_hold_are_rejected_lines_not_a_crash(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    ws = make_workspace(store=store_url)
    log(ws, ["d1", "d2"])
    frame = pd.DataFrame({"day_id": ["d1", "a\x00b", "x" * 300, "d2"], "rain": [1, 0, 0, 1]})
    r = record_feedback(ws, MODEL, frame)
    assert (r.received, r.matched, r.rejected) == (4, 2, 2)
    assert [(x.line, x.reason) for x in r.first_rejects] == [
        (2, "id in 'day_id' holds a NUL character (U+0000)"),
        (3, "id in 'day_id' longer than 128 characters"),
    ]
    assert ws.store.count_actuals(MODEL) == 2

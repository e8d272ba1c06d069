"""``rows delete``: a dry run counts and changes nothing; applied, the rows and their keys go
(so the ids can be ingested again) and history records it; on SQLite and PostgreSQL, and
through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.errors import InputError
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.rows_ops import delete_rows, read_ids
from retrainer.plumbing.workspace import Workspace

MODEL = "weather"


def _year(df: pd.DataFrame, year: int) -> pd.DataFrame:
    return df[df["date"].dt.year == year]


def test_dry_run_then_apply_by_source_ids_and_time(
    store_url: str,
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import retrainer.store.rows as rows_module

    monkeypatch.setattr(rows_module, "SEGMENT_ROWS", 100)  # deletes cut through segments
    ws = make_workspace(store=store_url)
    ingest_frame(ws, MODEL, _year(weather_df, 1950), source="file")
    ingest_frame(ws, MODEL, _year(weather_df, 1951), source="api")
    assert ws.store.row_sources(MODEL) == {"api": 365, "file": 365}

    dry = delete_rows(ws, MODEL, source="api", since=datetime(1951, 7, 1))
    assert (dry.dry_run, dry.rows, dry.by_source) == (True, 184, {"api": 184})
    assert ws.store.training_stats(MODEL)[0] == 730 and ws.store.events(MODEL) == []

    done = delete_rows(ws, MODEL, source="api", since=datetime(1951, 7, 1), dry_run=False)
    assert (done.rows, done.segments) == (184, 3)
    frame = ws.store.training_frame(MODEL)
    assert len(frame) == 546 and frame["event_time"].max() == pd.Timestamp("1951-06-30")
    (event,) = ws.store.events(MODEL)
    assert event.action == "rows_delete" and "source=api" in event.reason

    ids = [*_year(weather_df, 1950)["day_id"].tolist()[10:20], "no-such-id"]
    assert delete_rows(ws, MODEL, ids=ids, until=datetime(1950, 1, 15), dry_run=False).rows == 4
    assert ws.store.known_entity_ids(MODEL, ids) == set(ids[4:10])
    again = ingest_frame(ws, MODEL, _year(weather_df, 1950))  # the deleted ids come back
    assert (again.inserted, again.duplicates) == (4, 361)
    assert ws.store.training_stats(MODEL)[0] == 546


def test_refusals_change_nothing(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    ws = make_workspace()
    ingest_frame(ws, MODEL, _year(weather_df, 1950), source="file")
    with pytest.raises(InputError, match="Say which rows"):
        delete_rows(ws, MODEL, dry_run=False)
    with pytest.raises(InputError, match=r"no training rows from source 'feedbak'.*file \(365"):
        delete_rows(ws, MODEL, source="feedbak", dry_run=False)
    with pytest.raises(InputError, match="is not before --until"):
        delete_rows(ws, MODEL, since=datetime(1951, 1, 1), until=datetime(1950, 1, 1))
    bad = tmp_path / "ids.csv"
    bad.write_text("id\nd1\n")
    with pytest.raises(InputError, match="has no column 'day_id'"):
        read_ids(ws, MODEL, bad)
    assert ws.store.training_stats(MODEL)[0] == 365 and ws.store.events(MODEL) == []


def test_cli_rows_delete_dry_run_and_yes(
    config_file: Callable[..., Path],
    tmp_path: Path,
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping of the messages checked
    config = config_file()
    with Workspace.open(config) as ws:
        ingest_frame(ws, MODEL, _year(weather_df, 1950), source="file")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(_year(weather_df, 1950)["day_id"].head(5)) + "\n")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["-c", str(config), "rows", "delete", MODEL, *args])
        return res.exit_code, res.output

    code, text = run("--ids", str(ids))
    assert code == 0 and "5 training rows would be deleted (5 file); nothing changed" in text
    code, text = run("--ids", str(ids), "--yes", "--json")
    assert code == 0 and json.loads(text)["rows"] == 5 and not json.loads(text)["dry_run"]
    code, text = run("--source", "nope")
    assert code == 2 and "Sources: file (360 rows)" in text
    code, text = run("--since", "yesterday")
    assert code == 2
    history = runner.invoke(app, ["-c", str(config), "history", MODEL, "--json"])
    assert [e["action"] for e in json.loads(history.output)] == ["rows_delete"]

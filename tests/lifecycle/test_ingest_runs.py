"""An ingest stages its chunks in short transactions and publishes them in one: between two
chunks other writers get the store's write lock and the run's rows are invisible; rows
another writer stored meanwhile are not stored twice; a dead run's staged rows are dropped
by the next ingest. On SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import make_url

from retrainer.core.spec import load_spec
from retrainer.lifecycle import ingest
from retrainer.lifecycle.ingest import ingest_file, ingest_frame, prepare_frame
from retrainer.plumbing.workspace import Workspace
from retrainer.store.rows import ROWS

MODEL = "weather"
CHUNK = 200


@contextmanager
def lock_probe(url: str) -> Iterator[Callable[[], None]]:
    """A function that takes and releases, without waiting, what a deploy of MODEL needs
    (it raises if another transaction holds it)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(u.database), isolation_level=None, timeout=0)

        def take() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")

        yield take
        conn.close()
        return
    import psycopg

    with psycopg.connect(u.set(drivername="postgresql").render_as_string(False)) as pg:

        def take_row() -> None:
            pg.execute("SELECT model FROM roles WHERE model = %s FOR UPDATE NOWAIT", (MODEL,))
            pg.rollback()

        yield take_row


def hook_chunks(monkeypatch: pytest.MonkeyPatch, after: Callable[[int], None]) -> None:
    """Call ``after(n)`` once the run's n-th chunk is staged (its transaction committed)."""
    real = ingest._Run.alive
    seen = [0]

    def alive(self: Any) -> None:
        real(self)
        seen[0] += 1
        after(seen[0])

    monkeypatch.setattr(ingest._Run, "alive", alive)


def test_other_writers_get_the_lock_between_chunks_and_see_none_of_the_run(
    store_url: str,
    config_file: Callable[..., Path],
    tmp_path: Path,
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = config_file(store=store_url)
    base = weather_df[weather_df["date"] < "1950-01-01"]
    rows = weather_df[(weather_df["date"] >= "1950-01-01") & (weather_df["date"] < "1953-01-01")]
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    with Workspace(load_spec(cfg, environ={})) as ws, lock_probe(store_url) as take:
        ingest_frame(ws, MODEL, base)
        before = ws.store.training_stats(MODEL)[0]
        probed: list[int] = []

        def between(n: int) -> None:
            take()  # raises if the ingest still held the write lock
            assert ws.store.training_stats(MODEL)[0] == before  # the run is not visible yet
            probed.append(n)

        hook_chunks(monkeypatch, between)
        result = ingest_file(ws, MODEL, path, chunk_rows=CHUNK)
        monkeypatch.undo()
        assert probed == list(range(1, -(-len(rows) // CHUNK) + 1))
        assert result.inserted == len(rows)
        assert ws.store.training_stats(MODEL)[0] == before + len(rows)
        assert ws.store.staged_runs(MODEL) == []


def test_rows_stored_by_another_writer_during_the_run_are_not_stored_twice(
    store_url: str,
    config_file: Callable[..., Path],
    tmp_path: Path,
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = config_file(store=store_url)
    rows = weather_df[weather_df["date"] < "1951-01-01"]
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    late = rows.iloc[-300:]  # rows of the run's later chunks, stored by another writer first
    with Workspace(load_spec(cfg, environ={})) as ws:

        def other_writer(n: int) -> None:
            if n == 1:
                with Workspace(load_spec(cfg, environ={})) as other:
                    assert ingest_frame(other, MODEL, late).inserted == len(late)

        hook_chunks(monkeypatch, other_writer)
        result = ingest_file(ws, MODEL, path, chunk_rows=CHUNK)
        monkeypatch.undo()
        assert (result.inserted, result.duplicates) == (len(rows) - len(late), len(late))
        stored = ws.store.training_frame(MODEL)
        assert len(stored) == len(rows) and stored["entity_id"].is_unique


def test_a_dead_runs_staged_rows_are_dropped_by_the_next_ingest(
    store_url: str, config_file: Callable[..., Path], tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    cfg = config_file(store=store_url)
    rows = weather_df[weather_df["date"] < "1950-01-01"]
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    with Workspace(load_spec(cfg, environ={})) as ws:
        # a dead run staged a chunk; its lease expired long ago
        staged, _ = prepare_frame(ws.model_spec(MODEL), rows.head(50), "dead run")
        ws.store.acquire_lease(f"ingest-run:{MODEL}:deadbeef0000", "gone:1", 1,
                               now=datetime(2000, 1, 1))  # fmt: skip
        with ws.store.write() as conn:
            ws.store.append_rows(conn, MODEL, staged, "file", stage="deadbeef0000")
        live = ws.store.acquire_lease(f"ingest-run:{MODEL}:a11ve0000000", "here:1", 3600)
        assert live
        with ws.store.write() as conn:
            ws.store.append_rows(conn, MODEL, staged, "file", stage="a11ve0000000")
        assert ws.store.staged_runs(MODEL) == ["a11ve0000000", "deadbeef0000"]
        assert ws.store.training_stats(MODEL)[0] == 0  # staged rows are never read
        assert ingest_file(ws, MODEL, path).inserted == len(rows)
        assert ws.store.staged_runs(MODEL) == ["a11ve0000000"]  # a live run's are kept
        assert ws.store.segments(MODEL, ROWS)

"""Labelled rows read in place: a Parquet glob and a SQL query on the local PostgreSQL each
train, fine-tune and feed drift; an unreachable or empty source fails naming itself and the
champion keeps serving."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from retrainer.core.errors import InputError, SourceUnavailable
from retrainer.lifecycle.drift_check import check_drift
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.predict import predict_file
from retrainer.lifecycle.sources import count_rows, row_stats, training_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

MODEL = "weather"


def _years(df: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    return df[(df["date"].dt.year >= first) & (df["date"].dt.year <= last)]


def test_a_parquet_glob_trains_fine_tunes_and_feeds_drift(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    for year in range(1950, 1954):  # one file a year, as a team's export would be
        _years(weather_df, year, year).to_parquet(lake / f"events-{year}.parquet")
    (lake / "README.txt").write_text("not data")  # the glob picks the Parquet files only
    ws = make_workspace(data={"source": "parquet", "path": str(lake / "*.parquet")})
    spec = ws.model_spec(MODEL)
    assert row_stats(ws, spec)[0] == len(_years(weather_df, 1950, 1953))
    first = train(ws, MODEL, deploy=True)
    assert first.version.n_rows == len(_years(weather_df, 1950, 1953))
    assert first.version.train_end == datetime(1953, 12, 31)

    _years(weather_df, 1954, 1954).to_parquet(lake / "events-1954.parquet")  # a new day's file
    assert count_rows(ws, spec, after=first.version.train_end) == 365
    newer = training_frame(ws, spec, after=datetime(1954, 6, 30))
    assert len(newer) == 184 and newer["event_time"].is_monotonic_increasing
    tuned = fine_tune(ws, MODEL)
    assert tuned.version.kind == "fine_tune" and tuned.version.n_rows == 365

    scored = tmp_path / "score.csv"
    _years(weather_df, 1955, 1955).drop(columns=["rain"]).to_csv(scored, index=False)
    predict_file(ws, MODEL, scored, tmp_path / "out.csv")
    drift = check_drift(ws, MODEL, window="3650d")
    assert drift.rows == 365 and len(drift.features) == len(spec.feature_names)


def test_source_rows_and_stored_rows_are_read_together(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "rows.parquet"
    _years(weather_df, 1950, 1951).to_parquet(path)
    ws = make_workspace(data={"source": "parquet", "path": str(path)})
    stored = _years(weather_df, 1951, 1952).assign(rain=1)  # 1951 again, and 1952
    from retrainer.lifecycle.ingest import ingest_frame

    ingest_frame(ws, MODEL, stored)
    frame = training_frame(ws, ws.model_spec(MODEL))
    assert len(frame) == len(_years(weather_df, 1950, 1952))  # one row per id
    both = frame.set_index("entity_id").loc[_years(weather_df, 1951, 1951)["day_id"]]
    assert both["target"].tolist() == _years(weather_df, 1951, 1951)["rain"].tolist()


@pytest.fixture
def pg_table(pg_url: str, weather_df: pd.DataFrame) -> Iterator[tuple[str, str]]:
    """A table of weather rows 1950-1953 in a PostgreSQL database of the team's."""
    from sqlalchemy import create_engine

    engine = create_engine(pg_url)
    name = f"events_{uuid.uuid4().hex[:8]}"
    _years(weather_df, 1950, 1953).to_sql(name, engine, index=False)
    engine.dispose()
    yield pg_url, name


def test_a_sql_query_trains_fine_tunes_and_feeds_drift(
    make_workspace: Callable[..., Workspace],
    pg_table: tuple[str, str],
    weather_df: pd.DataFrame,
    tmp_path: Path,
) -> None:
    from sqlalchemy import create_engine

    url, table = pg_table
    query = f'SELECT * FROM "{table}" WHERE date >= :since'
    ws = make_workspace(data={"source": "sql", "url": url, "query": query})
    spec = ws.model_spec(MODEL)
    first = train(ws, MODEL, deploy=True)
    assert first.version.n_rows == len(_years(weather_df, 1950, 1953))

    engine = create_engine(url)
    _years(weather_df, 1954, 1954).to_sql(table, engine, index=False, if_exists="append")
    engine.dispose()
    assert count_rows(ws, spec, after=first.version.train_end) == 365
    tuned = fine_tune(ws, MODEL)
    assert tuned.version.n_rows == 365

    scored = tmp_path / "score.csv"
    _years(weather_df, 1955, 1955).drop(columns=["rain"]).to_csv(scored, index=False)
    predict_file(ws, MODEL, scored, tmp_path / "out.csv")
    assert check_drift(ws, MODEL, window="3650d").rows == 365


def test_a_query_without_since_is_filtered_by_time_around_it(
    make_workspace: Callable[..., Workspace], pg_table: tuple[str, str]
) -> None:
    url, table = pg_table
    ws = make_workspace(data={"source": "sql", "url": url, "query": f'SELECT * FROM "{table}"'})
    frame = training_frame(ws, ws.model_spec(MODEL), after=datetime(1953, 12, 1))
    assert len(frame) == 30 and frame["event_time"].min() == pd.Timestamp("1953-12-02")


def test_an_unreachable_or_empty_source_names_itself_and_the_champion_keeps_serving(
    make_workspace: Callable[..., Workspace],
    pg_table: tuple[str, str],
    weather_df: pd.DataFrame,
    tmp_path: Path,
) -> None:
    url, table = pg_table
    path = tmp_path / "rows.parquet"
    _years(weather_df, 1950, 1952).to_parquet(path)
    ws = make_workspace(data={"source": "parquet", "path": str(path)})
    served = train(ws, MODEL, deploy=True).version.version

    cases: list[tuple[dict[str, str], type[Exception], str]] = [
        (
            {"source": "parquet", "path": str(tmp_path / "gone" / "*.parquet")},
            SourceUnavailable,
            "matches no file",
        ),
        (
            {
                "source": "sql",
                "url": "postgresql+psycopg://postgres@127.0.0.1:1/none",
                "query": "SELECT 1",
            },
            SourceUnavailable,
            "cannot be read",
        ),
        (
            {"source": "sql", "url": url, "query": f'SELECT * FROM "{table}" WHERE false'},
            InputError,
            "has no training rows",
        ),
    ]
    for data, error, words in cases:
        other = make_workspace(store=ws.spec.store, data=data)
        with pytest.raises(error, match=words) as info:
            train(other, MODEL, deploy=True)
        where = data.get("path") or "127.0.0.1"
        assert where in info.value.message or "sql source" in info.value.message
        assert "hunter2" not in info.value.message
        assert other.store.roles(MODEL).champion == served

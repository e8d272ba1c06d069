"""A prediction-log batch of many records (one-row requests, a batch request, a record large
enough to be sorted by entity) stores each row with its own values, on SQLite and PostgreSQL;
a batch replayed from the spool keeps the inputs stored before and adds the new ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import func, select

from retrainer.store import SqlStore
from retrainer.store import schema as t
from retrainer.store.predlog import PredictionRecord, request_record


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = SqlStore(store_url)
    yield s
    s.close()


def _records(first: int, count: int) -> list[PredictionRecord]:
    at = datetime(2024, 1, 1)
    recs = [
        request_record("m", f"r{i}", "1.0.0", "champion", at, f'{{"row": {{"x": {i}}}}}',
                       [f"e{i}"], [i % 2], [i / 100], input_key=f"k{i:04d}")
        for i in range(first, first + count)
    ]  # fmt: skip
    return recs


def _stored(store: SqlStore) -> list[tuple[object, ...]]:
    c = t.predictions.c
    q = select(c.input_key, c.input_row, c.entity_id, c.output, c.proba).order_by(
        c.input_key, c.input_row
    )
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(q).all()]


def _inputs(store: SqlStore) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.prediction_inputs)).scalar())


def test_each_row_keeps_its_values(store: SqlStore) -> None:
    big = 1_200  # above the size sorted by entity id before it is inserted
    ids = [f"b{(i * 7919) % big:05d}" for i in range(big)]
    batch = request_record("m", "rb", "1.0.0", "champion", datetime(2024, 1, 2),
                           b"parquet bytes", ids, [float(i) for i in range(big)], None,
                           input_key="kbig")  # fmt: skip
    assert store.log_predictions([*_records(0, 3), batch, *_records(3, 2)]) == 5 + big
    rows = _stored(store)
    assert rows[:5] == [(f"k{i:04d}", 0, f"e{i}", i % 2, i / 100) for i in range(5)]
    assert rows[5:] == [("kbig", i, ids[i], float(i), None) for i in range(big)]
    assert _inputs(store) == 6


def test_a_replayed_batch_keeps_the_inputs_stored_before(store: SqlStore) -> None:
    assert store.log_predictions(_records(0, 4)) == 4
    assert store.log_predictions(_records(2, 4)) == 4  # k0002, k0003 stored already
    assert _inputs(store) == 6
    assert store.count_predictions("m") == 8

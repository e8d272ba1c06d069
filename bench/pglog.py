"""Prediction-log throughput on PostgreSQL: the store's ``log_predictions`` vs raw COPY.

Realistic request records (a churn-like model: 12 numeric features per row sent as the JSON
body the server stores, a 0/1 label and its probability per row, an entity id, a request id,
a time-ordered input key) are logged in batches of 5,000 prediction rows, the server's log
queue default (``batch_rows``), one transaction per batch, into a fresh database at
``RETRAINER_BENCH_POSTGRES`` (default the test server, ``postgres@127.0.0.1:5432``):

- retrainer: ``SqlStore.log_predictions(batch)`` (advisory lock, the inputs, COPY of the rows);
- floor: the same rows (their own input keys), already as tuples, written with psycopg's
  ``COPY ... FROM STDIN`` into the same two tables (``prediction_inputs``, ``predictions``),
  one transaction per batch: what storing them costs at least.

The two take turns batch by batch (which goes first alternates), so both meet the same table
size and the same load on a shared machine.

Requests of 1 row and of 100 rows; 100k and 1M rows (quick mode: 20k). Records are built
batch by batch (untimed), so memory stays bounded by one batch. The tables are emptied
before each size; the row count is checked after it.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from .common import megabytes, peak_rss_mb, table

ADMIN = os.environ.get(
    "RETRAINER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BATCH_ROWS = 5_000  # the server's LogQueue.batch_rows
FEATURES = [f"f{i:02d}" for i in range(12)]
FULL, QUICK = (100_000, 1_000_000), (20_000,)
WIDTHS = (1, 100)
MODEL = "churn"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def batches(n_rows: int, per_request: int, seed: int = 3) -> Iterator[list[dict[str, Any]]]:
    """Prediction records of ``per_request`` rows each, ``BATCH_ROWS`` rows a batch."""
    from retrainer.store.predlog import request_record

    rng = random.Random(seed)
    start = datetime(2030, 1, 1)
    done = 0
    while done < n_rows:
        batch = []
        rows_in = 0
        while rows_in < BATCH_ROWS and done < n_rows:
            k = min(per_request, n_rows - done)
            rows = [{f: round(rng.gauss(0, 1), 4) for f in FEATURES} for _ in range(k)]
            body = json.dumps({"row": rows[0]} if per_request == 1 else {"rows": rows})
            probas = [round(rng.random(), 6) for _ in range(k)]
            ids = [f"c{rng.randrange(10_000_000):08d}" for _ in range(k)]
            at = start + timedelta(milliseconds=done)
            key = f"{done:031d}s"
            batch.append(
                request_record(
                    MODEL, uuid.UUID(int=rng.getrandbits(128)).hex, "1.4.0", "champion", at,
                    body, ids, [int(p > 0.5) for p in probas], probas, input_key=key,
                )
            )  # fmt: skip
            rows_in += k
            done += k
        yield batch


def floor_rows(batch: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The batch's rows of the two tables as tuples (untimed: the floor's input)."""
    inputs, preds = [], []
    for r in batch:
        inputs.append((r["input_key"], r["model"], r["created_at"], r["inputs"], None))
        for i, (e, o, p) in enumerate(zip(r["entity_ids"], r["outputs"], r["probas"], strict=True)):
            preds.append(
                (r["model"], r["request_id"], e, r["version"], r["arm"], r["input_key"], i,
                 json.dumps(o), p, r["created_at"])
            )  # fmt: skip
    return inputs, preds


PRED_COLS = ", ".join(
    ("model", "request_id", "entity_id", "version", "arm", "input_key", "input_row", "output",
     "proba", "created_at")
)  # fmt: skip


def _copy_batch(conn: Any, inputs: list[tuple[Any, ...]], preds: list[tuple[Any, ...]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cols = "key, model, created_at, body, data"
        with cur.copy(f"COPY prediction_inputs ({cols}) FROM STDIN") as cp:
            for row in inputs:
                cp.write_row(row)
        with cur.copy(f"COPY predictions ({PRED_COLS}) FROM STDIN") as cp:
            for row in preds:
                cp.write_row(row)


def run_both(url: str, n_rows: int, per_request: int) -> tuple[float, float]:
    """Seconds spent writing ``n_rows`` through the store and through raw COPY, batch by
    batch in turn (which goes first alternates), into the same tables: both meet the same
    table size and the same machine load. The COPY copy of a batch has its own input keys."""
    import psycopg

    from retrainer.store import SqlStore

    store = SqlStore(url)
    ours = floor = 0.0
    with psycopg.connect(_libpq(url)) as conn:
        for i, batch in enumerate(batches(n_rows, per_request)):
            twin = [{**r, "input_key": r["input_key"][:-1] + "f"} for r in batch]
            inputs, preds = floor_rows(twin)
            for first in (i % 2 == 0, i % 2 == 1):
                started = time.perf_counter()
                if first:
                    store.log_predictions(batch)  # type: ignore[arg-type]
                    ours += time.perf_counter() - started
                else:
                    _copy_batch(conn, inputs, preds)
                    floor += time.perf_counter() - started
    assert store.count_predictions(MODEL) == 2 * n_rows
    store.engine.dispose()
    return ours, floor


def _empty(url: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("TRUNCATE predictions, prediction_inputs")
        conn.execute("VACUUM ANALYZE predictions")


def fresh_database() -> str:
    import psycopg

    name = f"rt_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(ADMIN), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{ADMIN.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_libpq(ADMIN), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    from retrainer.store import SqlStore, migrate

    url = fresh_database()
    results = []
    try:
        migrate(SqlStore(url).engine)
        for n in sizes:
            for width in WIDTHS:
                _empty(url)
                ours, floor = run_both(url, n, width)
                results.append(
                    {"rows": n, "per_request": width, "store": ours, "copy": floor,
                     "rss": peak_rss_mb()}
                )  # fmt: skip
    finally:
        drop_database(url)
    return results


def run(quick: bool) -> str:
    results = measure(QUICK if quick else FULL)
    rows = [
        [
            f"{r['rows']:,}",
            r["per_request"],
            f"{r['rows'] / r['store']:,.0f}",
            f"{r['rows'] / r['copy']:,.0f}",
            f"{r['copy'] / r['store']:.2f}×",
            megabytes(r["rss"]),
        ]
        for r in results
    ]
    heads = ["rows", "rows/request", "log_predictions rows/s", "raw COPY rows/s", "ratio",
             "peak RSS (so far)"]  # fmt: skip
    return (
        "## Prediction log on PostgreSQL: `log_predictions` vs raw COPY\n\n"
        "Realistic request records (12 numeric features as the stored JSON input, a label and "
        "its probability, entity and request ids) logged in batches of 5,000 prediction rows "
        "(the server's `batch_rows`), one transaction each, into a fresh PostgreSQL database; "
        "beside them the same rows as prepared tuples written with psycopg's "
        "`COPY ... FROM STDIN` into the same tables and indexes, one transaction a batch; the two "
        "take turns batch by batch (which goes first alternates), so both meet the same table "
        "size and machine load. "
        "Time spent in the write only (building the records is untimed); ratio = "
        "store throughput / COPY throughput (target ≥ 0.7×). "
        "`python -m bench --only pglog`.\n\n" + table(heads, rows) + "\n"
    )


if __name__ == "__main__":
    print(run(quick=True))

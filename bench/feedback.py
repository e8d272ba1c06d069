"""Feedback on many small requests: the join's cost per logged request, batched vs the former
per-request path, beside an in-memory pandas merge of the same rows (the floor).

A churn-like model (12 numeric features and one text level per row). 10,000 and 100,000
requests (quick mode: 2,000) of 1 to 10 rows each (5.5 on average), each request's rows sent
as the JSON body the server stores, logged with ``log_predictions`` in batches of 5,000 rows
(untimed); then one actual per logged row. Per store (SQLite file, and PostgreSQL at
``RETRAINER_BENCH_POSTGRES`` when one answers), timed:

- ``record_feedback``: the whole call, in chunks of ``CHUNK_ROWS`` actuals as a file's are
  (find the predictions, choose among them, gather the inputs they scored, validate, store the
  actuals and their training rows, one transaction); up to ``PER_REQUEST_UP_TO`` requests also
  on a second fresh store of the same requests through the former per-request input path;
- the input gathering alone (``FeedbackStore.input_table`` over every matched prediction's
  input key and row): batched (now) and the former per-request path (``per_request``, kept
  here as it was: a pandas frame and an Arrow table per request, concatenated);
- the floor: the same actuals merged with the same logged rows already in memory (a pandas
  frame of id and features), turned into an Arrow table: no storage, no parsing.

Every path's training rows are checked to hold the logged values.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from .common import WORK, megabytes, peak_rss_mb, table

PG = os.environ.get("RETRAINER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FULL, QUICK = (10_000, 100_000), (2_000,)
PER_REQUEST_UP_TO = 10_000  # the former path is timed at this many requests and below
NUMERIC = [f"f{i:02d}" for i in range(12)]
MODEL = "churn"
BATCH_ROWS = 5_000


def spec_body(store: str, artifacts: str) -> dict[str, Any]:
    return {
        "store": store,
        "artifacts": artifacts,
        "models": {
            MODEL: {
                "task": "classification",
                "target": "churned",
                "id_column": "customer_id",
                "time_column": "at",
                "features": {"numeric": NUMERIC, "categorical": ["plan"]},
                "family": "lightgbm",
            }
        },
    }


def requests(n_requests: int, seed: int = 5) -> Iterator[tuple[list[Any], list[dict[str, Any]]]]:
    """Batches of about ``BATCH_ROWS`` rows: the prediction records, and the rows logged
    (``customer_id`` and features) for the floor and the checks."""
    from retrainer.store.predlog import request_record

    rng = random.Random(seed)
    start = datetime(2030, 1, 1)
    records: list[Any] = []
    logged: list[dict[str, Any]] = []
    rows_in = 0
    for i in range(n_requests):
        k = rng.randint(1, 10)
        rows = [
            {**{f: round(rng.gauss(0, 1), 4) for f in NUMERIC},
             "plan": rng.choice(["free", "basic", "pro"])}
            for _ in range(k)
        ]  # fmt: skip
        ids = [f"c{i:07d}-{j}" for j in range(k)]
        probas = [round(rng.random(), 6) for _ in range(k)]
        body = json.dumps({"row": rows[0]} if k == 1 else {"rows": rows})
        records.append(
            request_record(
                MODEL, uuid.UUID(int=rng.getrandbits(128)).hex, "1.0.0", "champion",
                start + timedelta(milliseconds=i), body, ids, [int(p > 0.5) for p in probas],
                probas, input_key=f"{i:031d}k",
            )
        )  # fmt: skip
        logged += [{"customer_id": e, **r} for e, r in zip(ids, rows, strict=True)]
        rows_in += k
        if rows_in >= BATCH_ROWS:
            yield records, logged
            records, logged, rows_in = [], [], 0
    if records:
        yield records, logged


def per_request_input_table(
    store: Any,
    keys: Sequence[str],
    rows: Sequence[int],
    columns: Sequence[str],
    decoded: dict[str, Any] | None = None,
) -> Any:
    """``FeedbackStore.input_table`` as it was before the batched gathering (one pandas frame
    and one Arrow table per stored input, then concatenated): the path compared against."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy import select

    from retrainer.store import schema as t
    from retrainer.store.predlog import input_rows
    from retrainer.store.segments import decode

    def take(stored: Any, picks: Any) -> Any:
        if isinstance(stored, pa.Table):
            part = stored.take(pa.array(picks))
            return pa.table(
                {c: part[c] if c in part.column_names else pa.nulls(part.num_rows) for c in columns}
            )
        picked = [stored[r] if 0 <= r < len(stored) and isinstance(stored[r], dict) else {}
                  for r in picks.tolist()]  # fmt: skip
        frame = pd.DataFrame.from_records(picked, columns=list(columns))
        return pa.Table.from_pandas(frame, preserve_index=False)

    codes, unique = pd.factorize(np.asarray(keys, dtype=object))
    rows_arr = np.asarray(rows, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(unique)))
    bounds = [*starts.tolist(), len(order)]
    parts, positions = [], []
    c = t.prediction_inputs.c
    with store.read() as conn:
        for lo in range(0, len(unique), 1_000):
            chunk = [str(u) for u in unique[lo : lo + 1_000]]
            known = decoded if decoded is not None else {}
            wanted = [k for k in chunk if k not in known]
            found = {
                key: decode(bytes(data)) if data is not None else input_rows(body)
                for key, body, data in conn.execute(
                    select(c.key, c.body, c.data).where(c.key.in_(wanted))
                )
            }
            found.update((k, known[k]) for k in chunk if k in known)
            known.update(found)
            for j, key in enumerate(chunk, start=lo):
                where = order[bounds[j] : bounds[j + 1]]
                if key in found:
                    parts.append(take(found[key], rows_arr[where]))
                    positions.append(where)
    out = pa.concat_tables(parts, promote_options="permissive")
    where = np.concatenate(positions)
    back = np.argsort(where, kind="stable")
    return out.take(pa.array(back)), where[back]


def floor(actuals: Any, logged: Any) -> Any:
    """The same join with the logged rows in memory: a pandas merge on the id, as Arrow."""
    import pyarrow as pa

    joined = actuals.merge(logged, on="customer_id", how="inner", validate="one_to_one")
    return pa.Table.from_pandas(joined, preserve_index=False)


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def run_one(url: str, where: Path, n_requests: int, former: bool = False) -> dict[str, Any]:
    """Log ``n_requests`` into a fresh store and time the feedback on it; ``former``: through
    the per-request input path (``record_feedback`` alone is timed then)."""
    import pandas as pd

    from retrainer.core.spec import parse_spec
    from retrainer.lifecycle.feedback import record_feedback
    from retrainer.plumbing.tables import CHUNK_ROWS
    from retrainer.plumbing.workspace import Workspace

    ws = Workspace(parse_spec(spec_body(url, str(where / "artifacts")), environ={}))
    try:
        parts = []
        for records, logged in requests(n_requests):
            ws.store.log_predictions(records)
            parts.append(pd.DataFrame(logged))
        logged_rows = pd.concat(parts, ignore_index=True)
        n = len(logged_rows)
        rng = random.Random(9)
        labels = [rng.randrange(2) for _ in range(n)]
        actuals = pd.DataFrame({"customer_id": logged_rows["customer_id"], "churned": labels})
        columns = [*NUMERIC, "plan", "at"]
        batched = old = merge = None
        if former:
            ws.store.input_table = partial(per_request_input_table, ws.store)  # type: ignore[method-assign]
        else:
            cands = ws.store.prediction_candidates(MODEL, actuals["customer_id"].tolist())
            keys, rows = cands["input_key"].tolist(), cands["input_row"].to_numpy()
            batched, (got, _) = _timed(ws.store.input_table, keys, rows, columns)
            if n_requests <= PER_REQUEST_UP_TO:
                old, (was, _) = _timed(per_request_input_table, ws.store, keys, rows, columns)
                assert got.equals(was), "the batched and per-request inputs differ"
            merge, joined = _timed(floor, actuals, logged_rows)
            assert joined.num_rows == n
        started = time.perf_counter()
        matched = added = 0
        for lo in range(0, n, CHUNK_ROWS):
            r = record_feedback(ws, MODEL, actuals.iloc[lo : lo + CHUNK_ROWS])
            matched, added = matched + r.matched, added + r.training_rows_added
        recorded = time.perf_counter() - started
        assert matched == added == n, (matched, added, n)
        stored = ws.store.training_frame(MODEL).set_index("entity_id")
        probe = logged_rows.iloc[n // 2]
        assert stored.loc[probe["customer_id"], "f03"] == probe["f03"]
        assert stored.loc[probe["customer_id"], "plan"] == probe["plan"]
    finally:
        ws.close()
    return {
        "requests": n_requests, "rows": n, "record": recorded, "batched": batched,
        "per_request": old, "floor": merge, "rss": peak_rss_mb(),
    }  # fmt: skip


def _postgres() -> str | None:
    """A fresh PostgreSQL database for the run, or None when no server answers."""
    import psycopg

    libpq = PG.replace("postgresql+psycopg://", "postgresql://")
    name = f"rt_bench_fb_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(libpq, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    return f"{PG.rsplit('/', 1)[0]}/{name}"


def _drop(url: str) -> None:
    import psycopg

    libpq = PG.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def measure(sizes: Sequence[int]) -> list[dict[str, Any]]:
    import shutil
    import tempfile

    from retrainer.store import SqlStore, migrate

    WORK.mkdir(parents=True, exist_ok=True)
    results = []
    for n in sizes:
        for store in ("sqlite", "postgresql"):
            where = Path(tempfile.mkdtemp(dir=WORK, prefix="feedback-"))
            url = f"sqlite:///{where / 'store.db'}" if store == "sqlite" else _postgres()
            if url is None:
                continue
            try:
                migrate(SqlStore(url).engine)
                results.append({"store": store, **run_one(url, where, n)})
            finally:
                shutil.rmtree(where, ignore_errors=True)
                if store == "postgresql":
                    _drop(url)
            if n > PER_REQUEST_UP_TO:
                continue
            where = Path(tempfile.mkdtemp(dir=WORK, prefix="feedback-"))  # the former path
            url = f"sqlite:///{where / 'store.db'}" if store == "sqlite" else _postgres()
            assert url is not None
            try:
                migrate(SqlStore(url).engine)
                results[-1]["record_former"] = run_one(url, where, n, former=True)["record"]
            finally:
                shutil.rmtree(where, ignore_errors=True)
                if store == "postgresql":
                    _drop(url)
    return results


def _us(seconds: float | None, n: int) -> str:
    return "—" if seconds is None else f"{seconds / n * 1e6:,.0f} µs"


def run(quick: bool) -> str:
    results = measure(QUICK if quick else FULL)
    heads = ["store", "requests", "rows", "record_feedback", "per request",
             "record_feedback, per-request path", "per request", "gather inputs: batched",
             "gather inputs: per-request path", "pandas merge floor", "gather / floor",
             "peak RSS (so far)"]  # fmt: skip
    rows = []
    for r in results:
        n = r["requests"]
        former = r.get("record_former")
        rows.append(
            [
                r["store"], f"{n:,}", f"{r['rows']:,}", f"{r['record']:.2f} s",
                _us(r["record"], n), "—" if former is None else f"{former:.2f} s",
                _us(former, n), _us(r["batched"], n), _us(r["per_request"], n),
                _us(r["floor"], n), f"{r['batched'] / r['floor']:.1f}×", megabytes(r["rss"]),
            ]
        )  # fmt: skip
    return (
        "## Feedback: the join per logged request, batched vs per request\n\n"
        "A churn-like model (12 numeric features and a text level); many small requests of "
        "1–10 rows each (5.5 on average), each logged as the JSON body the server stores "
        "(`log_predictions`, batches of 5,000 rows, untimed), then one actual per logged row. "
        "Timed per store: `record_feedback` in file-sized chunks (the whole join: find the "
        "predictions, choose, gather the inputs, validate, store actuals and training rows in "
        "one transaction), batched as now and, on a second fresh store holding the same "
        "requests, through the former per-request input path (a pandas frame and an Arrow "
        "table per request, concatenated; timed up to "
        f"{PER_REQUEST_UP_TO:,} requests: it is linear at about the per-request cost shown); "
        "the input gathering alone (`FeedbackStore.input_table` over every matched "
        "prediction's input) both ways; and the floor, a pandas merge of the same actuals "
        "with the same logged rows already in memory (no storage, no JSON). Costs are per "
        "request; every path's rows are checked. The machine was shared with other jobs "
        "(load average well above its 2 cores): read the ratios, not the absolute times. "
        "`python -m bench --only feedback`.\n\n" + table(heads, rows) + "\n"
    )


if __name__ == "__main__":
    print(run(quick=True))

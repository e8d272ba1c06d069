"""The batched gathering of logged inputs gives the feedback join exactly what the former
per-request path gave: the same candidates (row times) and the same training rows, bit for
bit, on SQLite and PostgreSQL, over many small requests of mixed shapes (ints and floats in one
column, missing keys, nulls, NaN, numeric or text levels, shadow arms, a Parquet batch, inputs
that are gone); and it reads the inputs in a bounded number of queries."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from retrainer.lifecycle.feedback import candidates, match, record_feedback, training_rows
from retrainer.plumbing.workspace import Workspace
from retrainer.store import schema as t
from retrainer.store.feedback import FeedbackStore
from retrainer.store.predlog import input_rows, request_record
from retrainer.store.segments import decode, encode

MODEL = "weather"
NUMERIC = ["temperature", "dew_point", "sea_level_pressure"]
T0 = datetime(2030, 1, 1, 12, 0)


def _old_take(stored: Any, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """The former per-request conversion (a frame and an Arrow table per stored input)."""
    if isinstance(stored, pa.Table):
        part = stored.take(pa.array(rows))
        return pa.table(
            {c: part[c] if c in part.column_names else pa.nulls(part.num_rows) for c in columns}
        )
    picked = [stored[r] if 0 <= r < len(stored) and isinstance(stored[r], dict) else {}
              for r in rows.tolist()]  # fmt: skip
    frame = pd.DataFrame.from_records(picked, columns=list(columns))
    return pa.Table.from_pandas(frame, preserve_index=False)


def old_input_table(
    store: FeedbackStore,
    keys: Sequence[str],
    rows: Sequence[int],
    columns: Sequence[str],
    decoded: dict[str, Any] | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """``FeedbackStore.input_table`` as it was before the batched gathering: the reference."""
    from sqlalchemy import select

    codes, unique = pd.factorize(np.asarray(keys, dtype=object))
    rows_arr = np.asarray(rows, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(unique)))
    bounds = [*starts.tolist(), len(order)]
    parts: list[pa.Table] = []
    positions: list[np.ndarray] = []
    c = t.prediction_inputs.c
    with store.read() as conn:
        for lo in range(0, len(unique), 1_000):
            chunk = [str(u) for u in unique[lo : lo + 1_000]]
            known = decoded if decoded is not None else {}
            stored: dict[str, Any] = {}
            wanted = [k for k in chunk if k not in known]
            for key, body, data in conn.execute(
                select(c.key, c.body, c.data).where(c.key.in_(wanted))
            ):
                stored[key] = decode(bytes(data)) if data is not None else input_rows(body)
            stored.update((k, known[k]) for k in chunk if k in known)
            known.update(stored)
            for j, key in enumerate(chunk, start=lo):
                where = order[bounds[j] : bounds[j + 1]]
                if key in stored:
                    parts.append(_old_take(stored[key], rows_arr[where], columns))
                    positions.append(where)
    if not parts:
        return pa.table({c: pa.nulls(0) for c in columns}), np.empty(0, dtype=np.int64)
    table = pa.concat_tables(parts, promote_options="permissive")
    where = np.concatenate(positions)
    if len(where) < 2 or bool((where[1:] > where[:-1]).all()):
        return table, where
    back = np.argsort(where, kind="stable")
    return table.take(pa.array(back)), where[back]


def _value(rng: random.Random, kind: str) -> Any:
    roll = rng.random()
    if roll < 0.08:
        return None
    if kind == "text":
        return rng.choice(["north", "south", "east", "west"])
    if kind == "level":  # numeric levels: whole numbers, sometimes written as floats
        v = rng.randrange(5)
        return float(v) if roll < 0.3 else v
    if kind == "nan" and roll < 0.15:
        return float("nan")
    return rng.randrange(-40, 40) if roll < 0.4 else round(rng.gauss(10, 5), 3)


def log_mixed(ws: Workspace, seed: int, level_kind: str, numeric_kind: str) -> list[str]:
    """Many small requests (1-10 rows) of mixed shapes, a shadow arm on some, entities
    scored twice (on two days), a Parquet batch; returns the entity ids scored."""
    rng = random.Random(seed)
    records = []
    ids: list[str] = []
    for i in range(400):
        k = rng.randint(1, 10)
        rows = []
        for j in range(k):
            row = {f: _value(rng, numeric_kind) for f in NUMERIC if rng.random() > 0.05}
            row["station"] = _value(rng, level_kind)  # see test_a_request_without_a_level
            row["date"] = (datetime(1950, 1, 1) + timedelta(days=(i + j) % 3)).date().isoformat()
            rows.append(row)
        entity = [f"e{rng.randrange(900)}" for _ in range(k)]  # some scored more than once
        ids += entity
        key = f"{i:031d}k"
        text = json.dumps({"rows": rows} if k > 1 or rng.random() < 0.5 else {"row": rows[0]})
        at = T0 + timedelta(minutes=i)
        records.append(
            request_record(MODEL, f"r{i}", "1.0.0", "champion", at, text, entity, [1] * k,
                           [0.7] * k, input_key=key)
        )  # fmt: skip
        if rng.random() < 0.2:  # a shadow challenger scored the same input
            records.append(
                request_record(MODEL, f"r{i}", "1.1.0", "shadow", at, None, entity, [0] * k,
                               [0.4] * k, input_key=key)
            )  # fmt: skip
    n = 50
    batch = pa.table(
        {
            "temperature": [float(i) for i in range(n)],
            "station": [
                ["north", "south"][i % 2] if level_kind == "text" else i % 3 for i in range(n)
            ],
        }
    )  # no dew_point, sea_level_pressure or date: nulls; levels of the requests' kind
    batch_ids = [f"b{i}" for i in range(n)]
    records.append(
        request_record(MODEL, "rb", "1.0.0", "champion", T0, encode(batch), batch_ids, [0] * n,
                       input_rows=list(range(n))[::-1])
    )  # fmt: skip
    ws.store.log_predictions(records)  # type: ignore[arg-type]
    return ids + batch_ids


def join_with(ws: Workspace, actuals: pd.DataFrame) -> tuple[pd.DataFrame, pa.Table | None]:
    codes, entities = pd.factorize(actuals["entity_id"])
    decoded: dict[str, Any] = {}
    cands = candidates(ws, MODEL, entities.tolist(), decoded)
    chosen = match(cands, actuals, codes)
    spec = ws.model_spec(MODEL)
    return cands, training_rows(ws, spec, actuals, chosen, decoded)


@pytest.mark.parametrize(
    ("seed", "level_kind", "numeric_kind"),
    [(1, "text", "number"), (2, "level", "number"), (3, "text", "nan")],
)
def test_batched_inputs_give_the_former_results_bit_for_bit(
    store_url: str,
    make_workspace: Callable[..., Workspace],
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    level_kind: str,
    numeric_kind: str,
) -> None:
    ws = make_workspace(store=store_url, features={"numeric": NUMERIC, "categorical": ["station"]})
    ids = log_mixed(ws, seed, level_kind, numeric_kind)
    rng = random.Random(seed + 100)
    picked = [*sorted(set(ids)), "never-scored"]
    actuals = pd.DataFrame(
        {
            "entity_id": picked,
            "event_time": pd.to_datetime(
                [
                    None if rng.random() < 0.3 else datetime(1950, 1, 1 + rng.randrange(3))
                    for _ in picked
                ]
            ).astype("datetime64[us]"),
            "value": [rng.randrange(2) for _ in picked],
        }
    )
    new_cands, new_rows = join_with(ws, actuals)
    monkeypatch.setattr(ws.store, "input_table", partial(old_input_table, ws.store))
    old_cands, old_rows = join_with(ws, actuals)
    pd.testing.assert_frame_equal(new_cands, old_cands, check_exact=True)
    assert new_cands["row_time"].notna().sum() > 100  # the time lookup was exercised
    assert new_rows is not None and old_rows is not None
    assert new_rows.num_rows > 800
    assert new_rows.schema.equals(old_rows.schema)
    assert new_rows.equals(old_rows), "training rows differ from the per-request path"


def test_many_requests_are_read_in_bounded_queries(
    make_workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,500 one-row requests: their inputs come in 3 queries of at most 1,000 keys and are
    parsed in 3 calls, not one per request; the training rows hold each request's values."""
    from retrainer.store import feedback as store_feedback

    ws = make_workspace()
    n = 2_500
    ids = [f"e{i}" for i in range(n)]
    ws.store.log_predictions(
        [
            request_record(
                MODEL,
                f"r{i}",
                "1.0.0",
                "champion",
                T0,
                json.dumps({"row": {"temperature": i}}),
                [ids[i]],
                [1],
                input_key=f"{i:031d}k",
            )
            for i in range(n)
        ]
    )
    queries: list[int] = []
    parses: list[int] = []
    real_inputs, real_parse = ws.store._inputs, store_feedback.many_input_rows

    def fetch(conn: Any, keys: list[str]) -> dict[str, Any]:
        queries.append(len(keys))
        return real_inputs(conn, keys)

    def parse(bodies: list[str]) -> list[list[dict[str, Any]]]:
        parses.append(len(bodies))
        return real_parse(bodies)

    monkeypatch.setattr(ws.store, "_inputs", fetch)
    monkeypatch.setattr(store_feedback, "many_input_rows", parse)
    r = record_feedback(ws, MODEL, pd.DataFrame({"day_id": ids, "rain": [1] * n}))
    assert (r.matched, r.training_rows_added) == (n, n)
    assert queries == [1_000, 1_000, 500] and parses == [1_000, 1_000, 500]
    rows = ws.store.training_frame(MODEL).set_index("entity_id")
    assert rows.loc["e2499", "temperature"] == 2499.0 and pd.isna(rows.loc["e7", "dew_point"])


def test_a_request_without_a_level_feature_gives_a_null_level(
    make_workspace: Callable[..., Workspace],
) -> None:
    """One request omits the text feature (its key absent from every row): its training row has
    no level. The per-request path raised there (that request's column came out as float NaN,
    which Arrow cannot merge with the others' text)."""
    ws = make_workspace(features={"numeric": NUMERIC, "categorical": ["station"]})
    bodies = [{"row": {"temperature": 1.5, "station": "north"}}, {"row": {"temperature": 2.5}}]
    ws.store.log_predictions(
        [
            request_record(MODEL, f"r{i}", "1.0.0", "champion", T0, json.dumps(b), [f"e{i}"], [1])
            for i, b in enumerate(bodies)
        ]
    )
    r = record_feedback(ws, MODEL, pd.DataFrame({"day_id": ["e0", "e1"], "rain": [1, 0]}))
    assert (r.matched, r.training_rows_added) == (2, 2)
    rows = ws.store.training_frame(MODEL).set_index("entity_id")
    assert rows.loc["e0", "station"] == "north" and pd.isna(rows.loc["e1", "station"])
    assert rows.loc["e1", "temperature"] == 2.5

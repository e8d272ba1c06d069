"""Set-based statements for bulk keys: one statement per chunk of keys, never one per row.

A column of values travels to the database as one parameter (a JSON array read by
``json_each`` on SQLite) or one ``COPY`` into a temporary table (PostgreSQL). The database
then probes or inserts the whole set in C, in key order (so B-tree pages are visited once, in
sequence), and results come back as a few narrow columns of plain tuples. This is what keeps
key checks and the feedback join linear in the batch and cheap per row.

>>> from sqlalchemy import create_engine
>>> engine = create_engine("sqlite://")
>>> with engine.begin() as conn:
...     _ = conn.exec_driver_sql("CREATE TABLE row_keys (model TEXT, kind TEXT, key TEXT, "
...         "segment INT, PRIMARY KEY (model, kind, key))")
...     fresh = insert_keys(conn, "m", "rows", ["b", "a"], 7)
...     again = insert_keys(conn, "m", "rows", ["c", "b", "a"], 8)
>>> fresh.tolist(), again.tolist()
([True, True], [True, False, False])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

if TYPE_CHECKING:
    import numpy as np

CHUNK = 500_000  # values per statement: bounds the parameter's size, not the work per key


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def sort_order(values: Sequence[str]) -> np.ndarray:
    """Positions that put ``values`` in ascending (binary) order, computed in C."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    order = pc.sort_indices(pa.array(values, type=pa.string())).to_numpy()
    return order.astype(np.int64)  # type: ignore[no-any-return]


def _copy_temp(conn: Connection, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    """Fill a temporary table (made if missing, emptied at commit) with rows, by COPY."""
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql(f"TRUNCATE {table}")
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def insert_keys(
    conn: Connection, model: str, kind: str, keys: Sequence[str], segment: int
) -> np.ndarray:
    """Insert the keys not stored yet for ``model`` and ``kind``, pointing at ``segment``;
    returns a mask (in the order given) of the keys inserted. Keys must be unique within the
    call. Callers hold the model's write lock, so no other writer inserts the same keys
    between the insert and the check that may follow it."""
    import numpy as np

    n = len(keys)
    fresh = np.ones(n, dtype=bool)
    if not n:
        return fresh
    order = sort_order(keys)
    ordered = [keys[i] for i in order.tolist()]
    for lo in range(0, n, CHUNK):
        part = ordered[lo : lo + CHUNK]
        if _is_sqlite(conn):
            res = conn.exec_driver_sql(
                "INSERT INTO row_keys (model, kind, key, segment) SELECT ?, ?, value, ? "
                "FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
                (model, kind, segment, orjson.dumps(part)),
            )
        else:
            _copy_temp(conn, "bulk_keys", "key text", [(k,) for k in part])
            res = conn.exec_driver_sql(
                "INSERT INTO row_keys (model, kind, key, segment) SELECT %(model)s, %(kind)s, "
                "key, %(segment)s FROM bulk_keys ORDER BY key ON CONFLICT DO NOTHING",
                {"model": model, "kind": kind, "segment": segment},
            )
        if res.rowcount == len(part):
            continue  # the usual case: none was stored before
        found = lookup_keys(conn, model, kind, part)
        old = found[found[:, 1] != segment, 0]
        fresh[order[lo + old]] = False
    return fresh


def lookup_keys(conn: Connection, model: str, kind: str, keys: Sequence[str]) -> np.ndarray:
    """(position, segment) of every given key that is stored, as an (n, 2) int64 array."""
    import numpy as np

    out: list[Any] = []
    for lo in range(0, len(keys), CHUNK):
        part = list(keys[lo : lo + CHUNK])
        if _is_sqlite(conn):
            res = conn.exec_driver_sql(
                "SELECT j.key + ?, k.segment FROM json_each(?) AS j CROSS JOIN row_keys AS k "
                "ON k.model = ? AND k.kind = ? AND k.key = j.value",
                (lo, orjson.dumps(part), model, kind),
            )
        else:
            _copy_temp(conn, "bulk_pos", "pos bigint, key text", list(enumerate(part, lo)))
            res = conn.exec_driver_sql(
                "SELECT q.pos, k.segment FROM bulk_pos AS q JOIN row_keys AS k "
                "ON k.model = %(model)s AND k.kind = %(kind)s AND k.key = q.key",
                {"model": model, "kind": kind},
            )
        out += res.cursor.fetchall()
    return np.array(out, dtype=np.int64).reshape(-1, 2)


CANDIDATE_COLUMNS = ("pos", "id", "created_at", "served", "input_key", "input_row")


def predictions_of(conn: Connection, model: str, entity_ids: Sequence[str]) -> dict[str, Any]:
    """Every logged prediction of the given entity ids (unique), as arrays named by
    ``CANDIDATE_COLUMNS``: ``pos`` indexes ``entity_ids``; ``created_at`` (datetime64[us]);
    ``served`` (1 unless a shadow arm scored it); ``input_key`` and ``input_row``, where its
    input is stored.

    On SQLite in two passes, each in key order so that B-tree pages are visited in sequence:
    the entity index alone gives (position, prediction id), then the rows are read by id.
    Each column comes back as one JSON array (built in C), not as a Python tuple per row."""
    import numpy as np

    parts: list[dict[str, Any]] = []
    order = sort_order(entity_ids)
    ordered = np.asarray(entity_ids, dtype=object)[order].tolist()
    for lo in range(0, len(ordered), CHUNK):
        part = ordered[lo : lo + CHUNK]
        if _is_sqlite(conn):
            pos_text, id_text = conn.exec_driver_sql(
                "SELECT json_group_array(j.key), json_group_array(p.id) FROM json_each(?) AS j "
                "CROSS JOIN predictions AS p INDEXED BY ix_predictions_entity "
                "ON p.model = ? AND p.entity_id = j.value AND p.entity_id IS NOT NULL",
                (orjson.dumps(part), model),
            ).one()
            pids = np.array(orjson.loads(id_text), dtype=np.int64)
            if not len(pids):
                continue
            by_id = np.argsort(pids, kind="stable")
            pids = pids[by_id]
            pos = order[lo + np.array(orjson.loads(pos_text), dtype=np.int64)[by_id]]
            created, served, keys, rows = conn.exec_driver_sql(
                "SELECT json_group_array(p.created_at), json_group_array(p.arm != 'shadow'), "
                "json_group_array(p.input_key), json_group_array(p.input_row) "
                "FROM json_each(?) AS j CROSS JOIN predictions AS p ON p.id = j.value",
                (orjson.dumps(pids.tolist()),),
            ).one()
            parts.append(
                {
                    "pos": pos,
                    "id": pids,
                    "created_at": np.array(orjson.loads(created), dtype="datetime64[us]"),
                    "served": np.array(orjson.loads(served), dtype=np.int8),
                    "input_key": np.array(orjson.loads(keys), dtype=object),
                    "input_row": np.array(orjson.loads(rows), dtype=np.int64),
                }
            )
        else:
            pos_list = order[lo : lo + len(part)].tolist()
            rows_in = list(zip(pos_list, part, strict=True))
            _copy_temp(conn, "bulk_pos", "pos bigint, key text", rows_in)
            found = conn.exec_driver_sql(
                "SELECT q.pos, p.id, p.created_at, CASE WHEN p.arm = 'shadow' THEN 0 ELSE 1 END, "
                "p.input_key, p.input_row FROM bulk_pos AS q JOIN predictions AS p "
                "ON p.model = %(model)s AND p.entity_id = q.key",
                {"model": model},
            ).cursor.fetchall()
            if found:
                cols = list(zip(*found, strict=True))
                parts.append(
                    {
                        "pos": np.array(cols[0], dtype=np.int64),
                        "id": np.array(cols[1], dtype=np.int64),
                        "created_at": np.array(cols[2], dtype="datetime64[us]"),
                        "served": np.array(cols[3], dtype=np.int8),
                        "input_key": np.array(cols[4], dtype=object),
                        "input_row": np.array(cols[5], dtype=np.int64),
                    }
                )
    empty = {
        "pos": np.empty(0, np.int64),
        "id": np.empty(0, np.int64),
        "created_at": np.empty(0, "datetime64[us]"),
        "served": np.empty(0, np.int8),
        "input_key": np.empty(0, object),
        "input_row": np.empty(0, np.int64),
    }
    if not parts:
        return empty
    return {c: np.concatenate([p[c] for p in parts]) for c in CANDIDATE_COLUMNS}


PAIR_COLUMNS = ("pos", "version", "arm", "created_at", "output", "proba")


def pairs_of(conn: Connection, prediction_ids: Any) -> dict[str, Any]:
    """For each prediction id (by position), that prediction and its siblings from other arms
    (a shadow challenger scored on the same request), as arrays named by ``PAIR_COLUMNS``;
    ``output`` is JSON text, ``created_at`` the driver's value.

    On SQLite in two statements: the predictions themselves, read by id in id order, each
    column one JSON array; then their siblings (rare: only where a shadow arm also scored),
    through the entity index."""
    import numpy as np

    parts: list[dict[str, Any]] = []
    ids = np.asarray(prediction_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    for lo in range(0, len(ids), CHUNK):
        where = order[lo : lo + CHUNK]
        part = ids[where].tolist()
        if _is_sqlite(conn):
            found = conn.exec_driver_sql(
                "SELECT json_group_array(j.key), json_group_array(p.version), "
                "json_group_array(p.arm), json_group_array(p.created_at), "
                "json_group_array(CAST(p.output AS TEXT)), json_group_array(p.proba) "
                "FROM json_each(?) AS j CROSS JOIN predictions AS p ON p.id = j.value",
                (orjson.dumps(part),),
            ).one()
            cols = [orjson.loads(text) for text in found]
            siblings = conn.exec_driver_sql(
                "SELECT j.key, p.version, p.arm, p.created_at, CAST(p.output AS TEXT), "
                "p.proba FROM json_each(?) AS j CROSS JOIN predictions AS m ON m.id = j.value "
                "JOIN predictions AS p INDEXED BY ix_predictions_entity "
                "ON p.model = m.model AND p.entity_id = m.entity_id "
                "AND p.request_id = m.request_id AND p.arm != m.arm "
                "AND p.entity_id IS NOT NULL",
                (orjson.dumps(part),),
            ).cursor.fetchall()
            for k, values in enumerate(zip(*siblings, strict=True)) if siblings else ():
                cols[k] += list(values)
        else:
            _copy_temp(conn, "bulk_ids", "pos bigint, pid bigint", list(enumerate(part)))
            rows = conn.exec_driver_sql(
                "SELECT q.pos, p.version, p.arm, p.created_at, CAST(p.output AS TEXT), p.proba "
                "FROM bulk_ids AS q JOIN predictions AS m ON m.id = q.pid JOIN predictions AS p "
                "ON p.model = m.model AND p.entity_id = m.entity_id "
                "AND p.request_id = m.request_id AND (p.id = m.id OR p.arm <> m.arm)",
            ).cursor.fetchall()
            cols = (
                [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in PAIR_COLUMNS]
            )
        positions = np.asarray(cols[0], dtype=np.int64)
        block = {"pos": where[positions] if len(positions) else positions}
        for name, values in zip(PAIR_COLUMNS[1:], cols[1:], strict=True):
            block[name] = np.asarray(values, dtype=object)
        parts.append(block)
    if not parts:
        return {c: np.empty(0, dtype=np.int64 if c == "pos" else object) for c in PAIR_COLUMNS}
    return {c: np.concatenate([p[c] for p in parts]) for c in PAIR_COLUMNS}

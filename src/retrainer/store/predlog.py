"""The prediction log: written in batches (one transaction per batch, never per row).

A *prediction record* is one request's predictions by one arm::

    {"model", "request_id", "version", "arm", "created_at",
     "input_key",            # names the request's input (``time_ordered_id()``)
     "inputs",               # its JSON text {"rows": [...]} or {"row": {...}}, or Parquet
                             # bytes of its feature columns (a batch); None when another
                             # record with the same key carries it (a shadow arm)
     "entity_ids", "outputs", "probas",   # per row; probas may be None
     "input_rows"}           # each row's position in the input; None: 0, 1, 2, ...

The input is stored once per request, as the text it arrived in, and each prediction row names
it by key and row index: the serving path encodes nothing per row but the output. Records in the
older one-row-per-record shape (``features`` as JSON text, ``entity_id``, ``output``, ``proba``)
are still accepted, e.g. from a spool written before the upgrade.

The monitor folds predictions above an id watermark, so ids must become visible in order. On
SQLite one writer at a time makes it so; on PostgreSQL a batch takes each of its models'
prediction-log advisory locks (``LOG_LOCK``) before it inserts, so of two writers (replicas,
or a replay beside a server) the second draws its ids only after the first has committed.

>>> rec = request_record("m", "r1", "1.0.0", "champion", datetime(2024, 1, 1),
...                      '{"rows": [{"x": 1}, {"x": 2}]}', ["a", None], [0.5, 1.5])
>>> record_rows(rec), input_rows(rec["inputs"])
(2, [{'x': 1}, {'x': 2}])
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.exc import OperationalError

from ..core.ids import time_ordered_id
from . import schema as t
from .base import StoreBase
from .segments import decode

if TYPE_CHECKING:
    import pandas as pd

LOG_LOCK = 7305413  # advisory lock space of the prediction log (PostgreSQL)

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite
_COLUMNS = (
    "model",
    "request_id",
    "entity_id",
    "version",
    "arm",
    "input_key",
    "input_row",
    "output",
    "proba",
    "created_at",
)
_INF = (math.inf, -math.inf)
_NUMBERS = frozenset((float, int))


class PredictionRecord(TypedDict):
    """One request's predictions by one arm, columnar (one entry per row in each list); the
    one shape the CLI's batch predict, the server's log queue, its spool and the store share
    (see the module docstring). A plain dict at run time: nothing is built per row."""

    model: str
    request_id: str
    version: str
    arm: str
    created_at: datetime
    input_key: str
    inputs: str | bytes | None
    entity_ids: list[str | None]
    outputs: list[Any]
    probas: list[float | None] | None
    input_rows: list[int] | None


def request_record(
    model: str,
    request_id: str,
    version: str,
    arm: str,
    created_at: datetime,
    inputs: str | bytes | None,
    entity_ids: Sequence[str | None],
    outputs: Sequence[Any],
    probas: Sequence[float | None] | None = None,
    input_key: str | None = None,
    input_rows: Sequence[int] | None = None,
) -> PredictionRecord:
    """A prediction record (see the module docstring)."""
    n = len(outputs)
    if (
        len(entity_ids) != n
        or (probas is not None and len(probas) != n)
        or (input_rows is not None and len(input_rows) != n)
    ):
        raise ValueError("entity_ids, outputs, probas and input_rows need one entry per row")
    return {
        "model": model,
        "request_id": request_id,
        "version": version,
        "arm": arm,
        "created_at": created_at,
        "input_key": input_key or time_ordered_id(),
        "inputs": inputs,
        "entity_ids": list(entity_ids),
        "outputs": list(outputs),
        "probas": None if probas is None else list(probas),
        "input_rows": None if input_rows is None else list(input_rows),
    }


def record_rows(record: Mapping[str, Any]) -> int:
    """How many prediction rows a record holds."""
    return len(record["outputs"]) if "outputs" in record else 1


def input_rows(body: str) -> list[dict[str, Any]]:
    """The rows of a stored input text."""
    obj = json.loads(body)
    if "rows" in obj:
        return list(obj["rows"])
    return [obj["row"]]


def many_input_rows(bodies: Sequence[str]) -> list[list[dict[str, Any]]]:
    """The rows of many stored input texts, parsed as one JSON array (one call into orjson,
    not one per input); the same as :func:`input_rows` on each. Texts orjson refuses but
    Python's ``json`` takes (NaN, integers beyond 64 bits) are parsed one by one with it.

    >>> many_input_rows(['{"row": {"x": 1}}', '{"rows": [{"x": 2}, {"x": NaN}]}'])
    [[{'x': 1}], [{'x': 2}, {'x': nan}]]
    """
    import orjson

    try:
        objs = orjson.loads("[" + ",".join(bodies) + "]")
    except orjson.JSONDecodeError:
        return [input_rows(b) for b in bodies]
    if len(objs) != len(bodies) or not all(type(o) is dict for o in objs):
        return [input_rows(b) for b in bodies]  # not one object per text: as each parses
    return [list(o["rows"]) if "rows" in o else [o["row"]] for o in objs]


def from_legacy(r: Mapping[str, Any]) -> PredictionRecord:
    """A record in the older one-row shape (``features``, ``entity_id``, ``output``,
    ``proba``; a spool written before the upgrade) in the current one."""
    return request_record(
        r["model"],
        r["request_id"],
        r["version"],
        r["arm"],
        r["created_at"],
        '{"row": ' + r["features"] + "}",
        [r.get("entity_id")],
        [r["output"]],
        [r.get("proba")],
    )


def _json(v: Any) -> str:
    """A JSON scalar; floats (the common output) without going through ``json.dumps``."""
    if type(v) is float:
        return "null" if v != v or v in _INF else repr(v)
    if type(v) is int:
        return str(v)
    return json.dumps(v)


_CHUNK_VALUES = 4_000  # bound values per statement (SQLite allows 32,766; PostgreSQL 65,535)


def _insert(conn: Connection, head: str, width: int, flat: list[Any], tail: str = "") -> None:
    """Insert rows given as one flat list of ``width`` values each, in multi-row statements."""
    if not flat:
        return
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    one = f"({', '.join([mark] * width)})"
    step = max(1, _CHUNK_VALUES // width) * width
    for i in range(0, len(flat), step):
        part = flat[i : i + step]
        sql = f"{head} VALUES {', '.join([one] * (len(part) // width))}{tail}"
        conn.exec_driver_sql(sql, tuple(part))


def _copy(conn: Connection, table: str, columns: Sequence[str], flat: list[Any]) -> None:
    """Insert rows given as one flat list with PostgreSQL's COPY: one stream, no statement per
    chunk (psycopg parses a statement's placeholders in Python: a multi-row INSERT of 100,000
    rows spent 7 s there)."""
    width = len(columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for i in range(0, len(flat), width):
            cp.write_row(flat[i : i + width])


_INPUT_COLUMNS = ("key", "model", "created_at", "body", "data")
_UNIQUE_VIOLATION = "23505"


def _copy_new(conn: Connection, inputs: list[Any]) -> bool:
    """COPY request inputs (PostgreSQL), in a savepoint; False, with nothing written, when one
    is stored already (a replayed spool chunk: the caller inserts them skipping those). A
    5,000-input batch sent as one ``INSERT ... ON CONFLICT`` per input (a pipelined
    executemany) took most of the time of logging one-row requests."""
    try:
        with conn.begin_nested():
            _copy(conn, "prediction_inputs", _INPUT_COLUMNS, inputs)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        return False
    return True


def _json_all(values: list[Any]) -> list[str]:
    """Each value as JSON; numbers (the common output) in one C-level ``json.dumps``."""
    if _NUMBERS.issuperset(map(type, values)):
        try:
            text = json.dumps(values, allow_nan=False)
        except ValueError:  # a non-finite number: stored as null, one by one
            return [_json(v) for v in values]
        return text[1:-1].split(", ") if values else []
    return [_json(v) for v in values]


_SORT_ROWS = 1_000  # a record this large is inserted in entity order (see ``_by_entity``)


def _by_entity(
    ids: Sequence[Any], outputs: list[Any], probas: Any, where: Any
) -> tuple[list[Any], list[Any], Any, list[int]]:
    """A large record's rows in entity-id order. The entity index then takes the batch as one
    ordered run of keys instead of a key on a random page per row (a 262,144-row batch: 0.85 s
    instead of 4 s on SQLite); each row keeps its position in the input (``input_rows``).

    >>> _by_entity(["b", None, "a"], [1, 2, 3], None, None)
    (['a', 'b', None], [3, 1, 2], None, [2, 0, 1])
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    order = pc.sort_indices(pa.array(ids, type=pa.string())).to_numpy()

    def take(values: Sequence[Any]) -> list[Any]:
        return np.asarray(values, dtype=object)[order].tolist()  # type: ignore[no-any-return]

    rows = np.asarray(where, dtype=np.int64) if where else np.arange(len(ids))
    return take(ids), take(outputs), None if not probas else take(probas), rows[order].tolist()


def _columns(n: int, width: int, columns: Sequence[Any]) -> list[Any]:
    """n rows of ``width`` values, flat; each column a list of n values or one shared value."""
    flat: list[Any] = [None] * (n * width)
    for k, col in enumerate(columns):
        flat[k::width] = col if isinstance(col, list) else [col] * n
    return flat


class PredictionLogStore(StoreBase):
    def log_predictions(self, records: Sequence[PredictionRecord]) -> int:
        """Insert prediction records (see the module docstring) as one group commit; returns
        how many prediction rows went in. An input already stored (a replayed spool chunk) is
        kept as it is."""
        if not records:
            return 0
        lite = self.dialect == "sqlite"
        inputs: list[Any] = []
        width = len(_COLUMNS)
        # The batch column by column (list repeats and extends, C-level): no Python work per
        # row, and per record only a few list operations (a batch of one-row requests is
        # thousands of records).
        cols: list[list[Any]] = [[] for _ in _COLUMNS]
        c_model, c_req, c_ids, c_ver, c_arm, c_key, c_row, c_out, c_proba, c_at = cols
        for r in records:
            if "features" in r:  # the older one-row shape, passed by an older caller
                r = from_legacy(r)
            at = r["created_at"].strftime(_SQLITE_TIME) if lite else r["created_at"]
            key, model = r["input_key"], r["model"]
            body = r.get("inputs")
            if isinstance(body, bytes):
                inputs += (key, model, at, None, body)
            elif body is not None:
                inputs += (key, model, at, body, None)
            outputs = r["outputs"]
            n = len(outputs)
            ids, probas, where = r["entity_ids"], r.get("probas"), r.get("input_rows")
            if len(ids) != n or (probas and len(probas) != n) or (where and len(where) != n):
                raise ValueError(f"prediction record {r['request_id']}: per-row lists differ")
            if n >= _SORT_ROWS:
                ids, outputs, probas, where = _by_entity(ids, outputs, probas, where)
            c_model += [model] * n
            c_req += [r["request_id"]] * n
            c_ids += ids
            c_ver += [r["version"]] * n
            c_arm += [r["arm"]] * n
            c_key += [key] * n
            c_row += where if where else range(n)
            c_out += outputs
            c_proba += probas if probas else [None] * n
            c_at += [at] * n
        total = len(c_out)
        cols[_COLUMNS.index("output")] = _json_all(c_out)
        rows = _columns(total, width, cols)
        # SQLite: one multi-row INSERT per chunk, not the driver's executemany: executemany
        # steps (and releases the GIL) once per row, and a writer thread beside a busy event
        # loop then waits a switch interval for each row. Values are bound by the driver, in C.
        # PostgreSQL: COPY for the rows (psycopg parses a long statement's placeholders in
        # Python, never caching it) and for the inputs (``_copy_new``).
        verb, tail = ("INSERT OR IGNORE", "") if lite else ("INSERT", " ON CONFLICT DO NOTHING")
        try:
            self._insert_records(records, inputs, rows, lite, verb, tail)
        except OperationalError:
            # The pool's connections may be stuck as the fault left them: SQLite opens a file
            # it cannot write read-only and stays so after it can ("attempt to write a readonly
            # database" for good). The next batch connects afresh.
            self.engine.dispose()
            raise
        return len(rows) // width

    def _insert_records(
        self,
        records: Sequence[PredictionRecord],
        inputs: list[Any],
        rows: list[Any],
        lite: bool,
        verb: str,
        tail: str,
    ) -> None:
        width = len(_COLUMNS)
        with self.write() as conn:
            if not lite:  # ids in commit order per model (the module docstring)
                for model in sorted({r["model"] for r in records}):
                    conn.exec_driver_sql(
                        "SELECT pg_advisory_xact_lock(%(space)s, hashtext(%(model)s))",
                        {"space": LOG_LOCK, "model": model},
                    )
            head = f"{verb} INTO prediction_inputs (key, model, created_at, body, data)"
            if lite:
                _insert(conn, head, 5, inputs, tail)
                _insert(conn, f"INSERT INTO predictions ({', '.join(_COLUMNS)})", width, rows)
            else:  # PostgreSQL: a short statement many times (parsed once), and COPY
                if inputs and not _copy_new(conn, inputs):  # some stored before: a replay
                    conn.exec_driver_sql(
                        f"{head} VALUES (%s, %s, %s, %s, %s){tail}",
                        [tuple(inputs[i : i + 5]) for i in range(0, len(inputs), 5)],
                    )
                _copy(conn, "predictions", _COLUMNS, rows)

    def count_predictions(self, model: str) -> int:
        q = select(func.count()).select_from(t.predictions).where(t.predictions.c.model == model)
        with self.read() as conn:
            return int(conn.execute(q).scalar() or 0)


class PredictionFeatures(StoreBase):
    def iter_prediction_features(
        self,
        model: str,
        since: datetime | None = None,
        chunk: int = 1_000,
        until: datetime | None = None,
    ) -> Iterator[pd.DataFrame]:
        """The rows ``model`` was asked to score since a time (and up to ``until``, inclusive)
        (each request's input once,
        whichever arms scored it), as sent, as frames of at most ``chunk`` requests' JSON
        inputs or one batch input each (keyset pagination on time and key, so memory stays
        bounded)."""
        c = t.prediction_inputs.c
        after: tuple[datetime, str] | None = None
        while True:
            q = select(c.created_at, c.key, c.body, c.data).where(c.model == model)
            if since is not None:
                q = q.where(c.created_at >= since)
            if until is not None:
                q = q.where(c.created_at <= until)
            if after is not None:
                q = q.where(
                    or_(c.created_at > after[0], and_(c.created_at == after[0], c.key > after[1]))
                )
            with self.read() as conn:
                found = conn.execute(q.order_by(c.created_at, c.key).limit(chunk)).all()
            if not found:
                return
            after = (found[-1][0], found[-1][1])
            yield from page_frames([(r[2], r[3]) for r in found])


def page_frames(page: Sequence[tuple[str | None, bytes | None]]) -> Iterator[pd.DataFrame]:
    """The frames of one page of stored inputs ``(body, data)`` in order: each run of JSON
    inputs as one frame, each Parquet batch as its own. A drift check's frames are these, so
    a window read in partitions cut where a frame ends (:mod:`.predlog_reads`) decodes to
    the same frames as one read in pages here.

    >>> [len(f) for f in page_frames([('{"row": {"x": 1}}', None), ('{"rows": [{"x": 2}]}', None)])]
    [2]
    """
    import pandas as pd

    parsed = iter(many_input_rows([body or "" for body, data in page if data is None]))
    records: list[dict[str, Any]] = []
    for _, data in page:
        if data is not None:
            if records:
                yield pd.DataFrame.from_records(records)
                records = []
            yield decode(bytes(data)).to_pandas()
        else:
            records += next(parsed)
    if records:
        yield pd.DataFrame.from_records(records)

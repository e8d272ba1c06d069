"""Columnar segments: rows of one model stored as Parquet inside the SQL store.

A segment holds up to :data:`SEGMENT_ROWS` rows of one model and kind. It is written once, in
the same transaction as everything else its run writes (the keys that de-duplicate it, a feed's
offset, ...), so a crash leaves all of a run's rows visible or none; it is never changed after
(``rows delete`` writes a smaller one in its place). Kinds:

- ``rows``: labelled training rows: ``entity_id``, ``event_time``, ``target`` and one column
  per feature (numeric as float64, categorical as text);
- ``actuals``: feedback outcomes: ``entity_id``, ``event_time`` (null when the feedback had
  none), ``value`` and ``prediction_id`` (null when no logged prediction matched).

The SQL row keeps what reads prune on: the kind, the source, the row count and the event-time
range. A read fetches one segment at a time (memory bounded by a segment), skips segments whose
time range misses the filter, decodes only the columns asked for and filters rows with pyarrow.

Why Parquet in SQL rather than files beside it: one transaction covers rows and metadata on
SQLite and PostgreSQL alike, several servers sharing one PostgreSQL need no shared disk, a
backup reads one place, and a crash leaves no orphan file to collect.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, select

from ..core.clock import utcnow
from ..core.levels import level
from . import schema as t
from .base import StoreBase

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SEGMENT_ROWS = 262_144  # rows per segment: a chunk's memory, and what a read holds at once


@dataclass(frozen=True)
class Segment:
    """A segment's metadata (its SQL row without the data)."""

    id: int
    model: str
    kind: str
    source: str
    n_rows: int
    min_time: datetime | None
    max_time: datetime | None
    created_at: datetime
    size_bytes: int


ROW_GROUP = 65_536  # rows per Parquet row group: the unit a time filter skips by its statistics


def encode(table: pa.Table) -> bytes:
    """A table as Parquet bytes. Text columns other than the id are dictionary-encoded
    (categories repeat); numbers and ids are not (a dictionary of distinct values costs time
    and saves nothing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [
        f.name
        for f in table.schema
        if f.name != "entity_id"
        and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy", row_group_size=ROW_GROUP, use_dictionary=texts)
    return buf.getvalue()


def row_keys(table: pa.Table) -> pa.Array:
    """The identity of each row of a segment table: its entity id and event time (microseconds
    since the epoch), joined by a unit separator. A row's time is part of who it is: the same
    id at another time is another observation (a customer scored every day).

    >>> import pyarrow as pa
    >>> from datetime import datetime
    >>> t = pa.table({"entity_id": ["a", "b"],
    ...               "event_time": pa.array([datetime(1970, 1, 1, 0, 0, 1), None])})
    >>> row_keys(t).to_pylist()
    ['a\\x1f1000000', 'b\\x1f']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    micros = table["event_time"].cast(pa.timestamp("us")).cast(pa.int64())
    text = pc.fill_null(micros.cast(pa.string()), "")
    return pc.binary_join_element_wise(table["entity_id"].cast(pa.string()), text, "\x1f")


_OPS = {
    ">=": lambda lo, hi, v: hi >= v,
    ">": lambda lo, hi, v: hi > v,
    "<=": lambda lo, hi, v: lo <= v,
    "<": lambda lo, hi, v: lo < v,
}


def decode(data: bytes, columns: Sequence[str] | None = None, filters: Any = None) -> pa.Table:
    """Parquet bytes as a table: only ``columns`` (those present), rows passing ``filters``
    (``(column, op, value)`` terms, all true; op one of >=, >, <=, <). Row groups whose
    statistics rule a filter out are not read; the rest are filtered row by row.

    >>> import pyarrow as pa
    >>> data = encode(pa.table({"event_time": [1, 2, 3], "x": [0.5, 1.5, 2.5]}))
    >>> decode(data, ["x", "nope"], [("event_time", ">", 1)]).to_pydict()
    {'x': [1.5, 2.5]}
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = pq.ParquetFile(pa.BufferReader(data))
    names = source.schema_arrow.names
    cols = names if columns is None else [c for c in columns if c in names]
    terms = [f for f in filters or () if f[0] in names]
    wanted = cols + [c for c, _op, _v in terms if c not in cols]
    groups = [g for g in range(source.num_row_groups) if _may_match(source, g, terms)]
    table = source.read_row_groups(groups, columns=wanted)
    if terms:
        ops = {">=": pc.greater_equal, ">": pc.greater, "<=": pc.less_equal, "<": pc.less}
        mask = None
        for c, op, v in terms:
            term = ops[op](table[c], pa.scalar(v, type=table.schema.field(c).type))
            mask = term if mask is None else pc.and_(mask, term)
        table = table.filter(pc.fill_null(mask, False))
    return table.select(cols)


def _may_match(source: Any, group: int, terms: Sequence[tuple[str, str, Any]]) -> bool:
    """Whether a row group's statistics leave room for rows meeting every term."""
    meta = source.metadata.row_group(group)
    names = source.schema_arrow.names
    for c, op, v in terms:
        stats = meta.column(names.index(c)).statistics
        if stats is None or not stats.has_min_max:
            continue
        try:
            if not _OPS[op](stats.min, stats.max, v):
                return False
        except TypeError:  # statistics of another type than the value: read the group
            continue
    return True


def by_time(table: pa.Table) -> pa.Table:
    """The rows sorted by event time (stable; nulls last), unless they already are."""
    import pyarrow.compute as pc

    times = table["event_time"]
    if times.null_count == 0 and table.num_rows > 1:
        t = times.cast("int64").to_numpy()
        if bool((t[1:] >= t[:-1]).all()):
            return table
    if pc.all(pc.is_null(times)).as_py():
        return table
    return table.sort_by("event_time")


def time_range(table: pa.Table, column: str = "event_time") -> tuple[Any, Any]:
    """(min, max) of a timestamp column as datetimes (None for an empty or all-null column)."""
    import pyarrow.compute as pc

    if column not in table.column_names or table.num_rows == 0:
        return None, None
    mm = pc.min_max(table[column])
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    return lo, hi


class SegmentStore(StoreBase):
    def put_segment(
        self, conn: Connection, model: str, kind: str, source: str, table: pa.Table
    ) -> int:
        """Write a segment in the caller's transaction; returns its id."""
        lo, hi = time_range(table)
        data = encode(table)
        res = conn.execute(
            t.segments.insert().values(
                model=model,
                kind=kind,
                source=source,
                n_rows=table.num_rows,
                min_time=lo,
                max_time=hi,
                created_at=utcnow(),
                size_bytes=len(data),
                data=data,
            )
        )
        key = res.inserted_primary_key
        assert key is not None
        return int(key[0])

    def reserve_segment(self, conn: Connection, model: str, kind: str, source: str) -> int:
        """An empty segment row to fill with :meth:`fill_segment` in the same transaction (its
        id is known before its rows are: keys that point at it are inserted first)."""
        res = conn.execute(
            t.segments.insert().values(
                model=model,
                kind=kind,
                source=source,
                n_rows=0,
                created_at=utcnow(),
                size_bytes=0,
                data=b"",
            )
        )
        key = res.inserted_primary_key
        assert key is not None
        return int(key[0])

    def fill_segment(self, conn: Connection, segment: int, table: pa.Table) -> None:
        """Store the rows of a reserved segment; a segment left empty is dropped."""
        if table.num_rows == 0:
            conn.execute(delete(t.segments).where(t.segments.c.id == segment))
            return
        lo, hi = time_range(table)
        data = encode(table)
        conn.execute(
            t.segments.update()
            .where(t.segments.c.id == segment)
            .values(
                n_rows=table.num_rows, min_time=lo, max_time=hi, size_bytes=len(data), data=data
            )
        )

    def segments(
        self,
        model: str,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        after: datetime | None = None,
        source: str | None = None,
        created_since: datetime | None = None,
        ids: Sequence[int] | None = None,
        above: int | None = None,
        conn: Connection | None = None,
    ) -> list[Segment]:
        """Metadata of the segments whose rows may meet the filters, oldest first."""
        c = t.segments.c
        q = select(
            c.id,
            c.model,
            c.kind,
            c.source,
            c.n_rows,
            c.min_time,
            c.max_time,
            c.created_at,
            c.size_bytes,
        ).where(c.model == model, c.kind == kind, c.n_rows > 0)
        if start is not None:
            q = q.where(c.max_time >= start)
        if end is not None:
            q = q.where(c.min_time <= end)
        if after is not None:
            q = q.where(c.max_time > after)
        if source is not None:
            q = q.where(c.source == source)
        if created_since is not None:
            q = q.where(c.created_at >= created_since)
        if ids is not None:
            q = q.where(c.id.in_(list(ids)))
        if above is not None:
            q = q.where(c.id > above)
        q = q.order_by(c.id)
        if conn is not None:
            return [Segment(*r) for r in conn.execute(q)]
        with self.read() as own:
            return [Segment(*r) for r in own.execute(q)]

    def stored_keys(
        self, conn: Connection, model: str, kind: str, lo: datetime, hi: datetime
    ) -> pa.Array:
        """The row keys (see :func:`row_keys`) stored for ``model`` and ``kind`` with an
        event time in [lo, hi]: only segments whose time range meets it are read, only their
        id and time columns, only the row groups whose statistics meet it."""
        import pyarrow as pa

        found = self.segments(model, kind, start=lo, end=hi, conn=conn)
        filters = [("event_time", ">=", lo), ("event_time", "<=", hi)]
        parts = [
            row_keys(tb)
            for _seg, tb in self._tables(conn, found, ["entity_id", "event_time"], filters)
            if tb.num_rows
        ]
        if not parts:
            return pa.array([], type=pa.string())
        return pa.concat_arrays([p.combine_chunks() if hasattr(p, "combine_chunks") else p
                                 for p in parts])  # fmt: skip

    def segment_data(self, conn: Connection, segment: int) -> bytes | None:
        r = conn.execute(select(t.segments.c.data).where(t.segments.c.id == segment)).first()
        return None if r is None else bytes(r[0])

    def iter_segment_tables(
        self,
        found: Sequence[Segment],
        *,
        columns: Sequence[str] | None = None,
        filters: Any = None,
        conn: Connection | None = None,
    ) -> Iterator[tuple[Segment, pa.Table]]:
        """Each segment's rows (decoded one at a time, in one read transaction)."""
        if conn is not None:
            yield from self._tables(conn, found, columns, filters)
            return
        with self.read() as own:
            yield from self._tables(own, found, columns, filters)

    def _tables(
        self,
        conn: Connection,
        found: Sequence[Segment],
        columns: Sequence[str] | None,
        filters: Any,
    ) -> Iterator[tuple[Segment, pa.Table]]:
        for seg in found:
            data = self.segment_data(conn, seg.id)
            if data is None:  # replaced since the listing (a rows delete)
                continue
            yield seg, decode(data, columns, filters)

    def segment_totals(
        self, model: str, kind: str, conn: Connection | None = None
    ) -> tuple[int, datetime | None, datetime | None]:
        """(rows, oldest event time, newest event time) over a model's segments of a kind."""
        c = t.segments.c
        q = select(func.sum(c.n_rows), func.min(c.min_time), func.max(c.max_time)).where(
            and_(c.model == model, c.kind == kind)
        )
        if conn is not None:
            n, lo, hi = conn.execute(q).one()
        else:
            with self.read() as own:
                n, lo, hi = own.execute(q).one()
        return int(n or 0), lo, hi


def to_frame(tables: Sequence[pa.Table]) -> pd.DataFrame:
    """Tables (possibly of different column sets or types) as one frame, in order."""
    import pandas as pd

    frames = [tb.to_pandas() for tb in tables if tb.num_rows]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def json_column(values: pd.Series) -> pd.Series:
    """Values decoded from JSON (numbers, text, None) as one typed column: float64 when every
    present value is a number, else text (a category level).

    >>> import pandas as pd
    >>> json_column(pd.Series([1, None, 2.5])).tolist(), json_column(pd.Series([7, "a"])).tolist()
    ([1.0, nan, 2.5], ['7', 'a'])
    """
    import pandas as pd

    present = values.notna()
    num = pd.to_numeric(values, errors="coerce")
    if (num.notna() == present).all():
        return num.astype("float64")
    return values.map(lambda v: None if v is None or v != v else level(v))

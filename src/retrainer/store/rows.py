"""Training rows: columnar segments, unique per model, entity id and event time (the first
row stored with a key wins; later ones are duplicates).

A rows frame has ``entity_id`` (text), ``event_time`` (naive UTC datetimes), ``target`` and
one column per feature. Appending one is part of the caller's transaction, which holds the
model's write lock: the new rows' keys are checked against the keys stored in the same time
range (only the segments and row groups of that range are read, and only their id and time
columns), and the segments written hold only the rows whose key was new, sorted by time.

A long run (an ingest of a big file) stages its chunks instead: each chunk is a segment of a
kind only that run reads (:func:`staged_kind`), written in its own short transaction, so other
writers (a deploy, a small ingest) wait for a chunk, never for the whole file. The run
becomes visible in one short transaction (:meth:`RowsStore.publish_rows`); a run that dies
before leaves only invisible segments, which :meth:`RowsStore.drop_staged` removes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, update

from ..core.errors import ConflictError
from . import schema as t
from .segments import (
    SEGMENT_ROWS,
    Segment,
    SegmentStore,
    by_time,
    row_keys,
    time_range,
    to_frame,
)
from .versions import add_event

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

ROWS = "rows"
STAGED = "~"  # the kind of a run's staged rows is "~" + its run id: read by no one else
COMPACT_AT = 16  # small segments of a model and source that get merged
META = ["entity_id", "event_time", "target"]


@dataclass(frozen=True)
class RowsAdded:
    inserted: int
    duplicates: int


@dataclass(frozen=True)
class RowsDeleted:
    """What a delete removed (or would remove, in a dry run): rows per source."""

    rows: int
    by_source: dict[str, int]
    segments: int


def rows_table(frame: pd.DataFrame) -> pa.Table:
    """A rows frame as the Arrow table a segment stores."""
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


class RowsStore(SegmentStore):
    def add_training_frame(self, model: str, frame: pd.DataFrame, source: str) -> RowsAdded:
        """Append rows in their own transaction (see :meth:`append_rows`)."""
        with self.write(model) as conn:
            return self.append_rows(conn, model, frame, source)

    def append_rows(
        self,
        conn: Connection,
        model: str,
        frame: pd.DataFrame | pa.Table,
        source: str,
        *,
        unique: bool = False,
        stage: str | None = None,
    ) -> RowsAdded:
        """Store the rows (a frame or an Arrow table) whose (entity id, event time) is new
        (the last row of a key given twice; ``unique``: the caller guarantees there is none),
        in the caller's transaction, which must hold the model's write lock. With ``stage``
        (a run id), the rows are staged for that run instead (new also to the rows it staged
        before; the transaction needs no model lock) until :meth:`publish_rows`."""
        given = len(frame)
        if not given:
            return RowsAdded(0, 0)
        import pyarrow as pa

        if not unique and not isinstance(frame, pa.Table):
            frame = frame.drop_duplicates(["entity_id", "event_time"], keep="last")
        table = frame if isinstance(frame, pa.Table) else rows_table(frame)
        if not unique and isinstance(frame, pa.Table):
            table = last_of_each_key(table)
        table = new_rows(self, conn, model, ROWS, table)
        kind = ROWS
        if stage is not None:
            kind = staged_kind(stage)
            table = new_rows(self, conn, model, kind, table)
        for lo in range(0, table.num_rows, SEGMENT_ROWS):
            self.put_segment(conn, model, kind, source, table.slice(lo, SEGMENT_ROWS))
        if table.num_rows and stage is None:
            self.compact_rows(conn, model, source)
        return RowsAdded(table.num_rows, given - table.num_rows)

    def publish_rows(
        self, conn: Connection, model: str, run: str, source: str, known: set[int], staged: int
    ) -> int:
        """Make the rows run ``run`` staged visible, in the caller's transaction (which holds
        the model's write lock); returns how many of them turned out to be duplicates. The
        staged rows were checked against the rows stored when each chunk was staged; rows
        stored since (in segments not in ``known``, the row segments' ids when the run began)
        are checked here. ``staged`` is how many rows the run staged: if any are missing (the
        run was taken for dead and dropped) nothing is published and ConflictError says so."""
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = staged_kind(run)
        mine = self.segments(model, kind, conn=conn)
        if sum(s.n_rows for s in mine) != staged:
            self.drop_staged(conn, model, run)
            raise ConflictError(
                f"The ingest run {run} of model {model!r} lost its staged rows (it was idle "
                "longer than its lease and taken for dead); nothing of it was stored. Run the "
                "ingest again.",
                model=model,
            )
        since = [s for s in self.segments(model, ROWS, conn=conn) if s.id not in known]
        dropped = 0
        if since and mine:
            parts = [row_keys(tb) for _s, tb in self._tables(conn, since, META[:2], None)]
            stored = pa.chunked_array(parts, type=pa.string()).combine_chunks()
            for seg, tb in self._tables(conn, mine, None, None):
                fresh = tb.filter(pc.invert(pc.is_in(row_keys(tb), value_set=stored)))
                if fresh.num_rows < tb.num_rows:
                    dropped += tb.num_rows - fresh.num_rows
                    self.fill_segment(conn, seg.id, fresh)
        c = t.segments.c
        conn.execute(update(t.segments).where(c.model == model, c.kind == kind).values(kind=ROWS))
        self.compact_rows(conn, model, source)
        return dropped

    def staged_runs(self, model: str) -> list[str]:
        """The ids of the runs that have rows staged for ``model`` (live or dead)."""
        c = t.segments.c
        q = select(c.kind).where(c.model == model, c.kind.startswith(STAGED)).distinct()
        with self.read() as conn:
            return sorted(str(k)[len(STAGED) :] for k in conn.execute(q).scalars())

    def staged_member_runs(self, prefix: str) -> list[tuple[str, str]]:
        """``(model, run)`` of every run with rows staged for a model named ``prefix…`` (a
        fleet's members), live or dead."""
        c = t.segments.c
        q = (
            select(c.model, c.kind)
            .where(c.model.startswith(prefix, autoescape=True), c.kind.startswith(STAGED))
            .distinct()
        )
        with self.read() as conn:
            return sorted((str(m), str(k)[len(STAGED) :]) for m, k in conn.execute(q))

    def drop_staged_members(self, conn: Connection, prefix: str, run: str) -> int:
        """Delete what run ``run`` staged for the models named ``prefix…`` (a fleet's
        members), in the caller's transaction; returns how many segments were removed."""
        c = t.segments.c
        res = conn.execute(
            delete(t.segments).where(
                c.model.startswith(prefix, autoescape=True), c.kind == staged_kind(run)
            )
        )
        return int(res.rowcount or 0)

    def drop_staged(self, conn: Connection, model: str, run: str) -> int:
        """Delete the rows run ``run`` staged (a failed or dead run), in the caller's
        transaction; returns how many segments were removed."""
        c = t.segments.c
        res = conn.execute(delete(t.segments).where(c.model == model, c.kind == staged_kind(run)))
        return int(res.rowcount or 0)

    def compact_rows(self, conn: Connection, model: str, source: str) -> int:
        """Merge a model's small training-row segments of one source (fewer than
        ``SEGMENT_ROWS / 4`` rows each, e.g. a day of feedback at a time) once there are
        ``COMPACT_AT`` of them, into segments of up to ``SEGMENT_ROWS`` rows sorted by time,
        in the caller's transaction. Reads then decode a few segments instead of one per
        batch. Returns how many segments were merged."""
        import pyarrow as pa
        from sqlalchemy import select

        c = t.segments.c
        small = conn.execute(
            select(c.id, c.n_rows)
            .where(
                c.model == model,
                c.kind == ROWS,
                c.source == source,
                c.n_rows > 0,
                c.n_rows < SEGMENT_ROWS // 4,
            )
            .order_by(c.id)
        ).all()
        if len(small) < COMPACT_AT:
            return 0
        groups: list[list[int]] = [[]]
        total = 0
        for seg_id, n in small:
            if total + n > SEGMENT_ROWS and groups[-1]:
                groups.append([])
                total = 0
            groups[-1].append(seg_id)
            total += n
        merged = 0
        for ids in (g for g in groups if len(g) > 1):
            found = self.segments(model, ROWS, ids=ids, conn=conn)
            tables = [tb for _seg, tb in self._tables(conn, found, None, None)]
            try:
                table = pa.concat_tables(tables, promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                continue  # columns whose types changed between batches: left as they are
            conn.execute(delete(t.segments).where(t.segments.c.id.in_(ids)))
            self.put_segment(conn, model, ROWS, source, by_time(table))
            merged += len(ids)
        return merged

    def training_frame(
        self,
        model: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        after: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows in [start, end] (or strictly after ``after``) ordered by time (then by when
        they were stored): ``entity_id``, ``event_time``, ``target`` and the features
        (``columns`` only, when given)."""
        import pandas as pd

        tables = [
            tb for _seg, tb in self.iter_rows(model, start=start, end=end, after=after,
                                               columns=columns)
        ]  # fmt: skip
        frame = to_frame(tables)
        if frame.empty:
            return pd.DataFrame(columns=META)
        frame = frame.sort_values("event_time", kind="stable", ignore_index=True)
        frame["event_time"] = pd.to_datetime(frame["event_time"])
        return frame

    def iter_rows(
        self,
        model: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        after: datetime | None = None,
        columns: Sequence[str] | None = None,
        source: str | None = None,
    ) -> Iterator[tuple[Segment, pa.Table]]:
        """Each segment's rows that meet the time filters, one segment at a time."""
        found = self.segments(model, ROWS, start=start, end=end, after=after, source=source)
        cols = None if columns is None else list(dict.fromkeys([*META, *columns]))
        filters = _time_filters(start, end, after)
        for seg, tb in self.iter_segment_tables(found, columns=cols, filters=filters):
            if tb.num_rows:
                yield seg, tb

    def count_training_rows(self, model: str, after: datetime | None = None) -> int:
        """Rows of ``model`` (strictly newer than ``after`` when given). Segments wholly after
        it count from their metadata; only those straddling it are read (one column)."""
        if after is None:
            return self.segment_totals(model, ROWS)[0]
        n = 0
        straddling = []
        for seg in self.segments(model, ROWS, after=after):
            if seg.min_time is not None and seg.min_time > after:
                n += seg.n_rows
            else:
                straddling.append(seg)
        filters = _time_filters(None, None, after)
        for _seg, tb in self.iter_segment_tables(
            straddling, columns=["event_time"], filters=filters
        ):
            n += tb.num_rows
        return n

    def training_stats(self, model: str) -> tuple[int, datetime | None, datetime | None]:
        """(rows, oldest event time, newest event time), from segment metadata alone."""
        return self.segment_totals(model, ROWS)

    def row_sources(self, model: str) -> dict[str, int]:
        """Training rows per source (``file``, ``api``, ``feedback``, ...)."""
        from sqlalchemy import func, select

        c = t.segments.c
        q = (
            select(c.source, func.sum(c.n_rows))
            .where(c.model == model, c.kind == ROWS)
            .group_by(c.source)
            .order_by(c.source)
        )
        with self.read() as conn:
            return {src: int(n or 0) for src, n in conn.execute(q)}

    def known_entity_ids(self, model: str, ids: Sequence[str]) -> set[str]:
        """The given ids that have a stored training row (reads every segment's id column)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        wanted = pa.array(list(ids), type=pa.string())
        found: set[str] = set()
        for _seg, tb in self.iter_segment_tables(self.segments(model, ROWS), columns=["entity_id"]):
            hit = pc.is_in(wanted, value_set=tb["entity_id"].combine_chunks().cast(pa.string()))
            found.update(wanted.filter(hit).to_pylist())
        return found

    def delete_rows(
        self,
        model: str,
        *,
        source: str | None = None,
        ids: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        dry_run: bool = True,
        reason: str = "",
        by: str = "manual",
    ) -> RowsDeleted:
        """Delete the training rows that meet every filter given (source, ids, event time in
        [since, until)); each segment touched is replaced by one without those rows and an
        event records it in the model's history, in one transaction. ``dry_run`` counts and
        changes nothing."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        id_set = pa.array(list(ids), type=pa.string()) if ids is not None else None
        total, touched = 0, 0
        by_source: dict[str, int] = {}
        with self.read() if dry_run else self.write(model) as conn:
            found = self.segments(model, ROWS, start=since, source=source, conn=conn)
            if until is not None:
                found = [s for s in found if s.min_time is None or s.min_time < until]
            for seg, tb in list(self.iter_segment_tables(found, conn=conn)):
                mask = np.ones(tb.num_rows, dtype=bool)
                if id_set is not None:
                    ids_col = tb["entity_id"].cast(pa.string())
                    mask &= pc.is_in(ids_col, value_set=id_set).to_numpy(zero_copy_only=False)
                times = tb["event_time"]
                if since is not None:
                    mask &= pc.greater_equal(times, pa.scalar(since, times.type)).to_numpy(
                        zero_copy_only=False
                    )
                if until is not None:
                    mask &= pc.less(times, pa.scalar(until, times.type)).to_numpy(
                        zero_copy_only=False
                    )
                gone = int(mask.sum())
                if not gone:
                    continue
                total += gone
                touched += 1
                by_source[seg.source] = by_source.get(seg.source, 0) + gone
                if dry_run:
                    continue
                conn.execute(delete(t.segments).where(t.segments.c.id == seg.id))
                kept = tb.filter(pa.array(~mask))
                if kept.num_rows:
                    self.put_segment(conn, model, ROWS, seg.source, kept)
            if total and not dry_run:
                add_event(conn, model, "rows_delete", None, None, reason, by)
        return RowsDeleted(total, by_source, touched)


def staged_kind(run: str) -> str:
    """The segment kind of run ``run``'s staged rows (``segments.kind`` holds 16 characters).

    >>> staged_kind("0123456789ab")
    '~0123456789ab'
    """
    if not 1 <= len(run) <= 15 or not run.isalnum():
        raise ValueError(f"run id {run!r}: 1 to 15 letters or digits")
    return STAGED + run


def last_of_each_key(table: pa.Table) -> pa.Table:
    """The table with one row per key (see ``segments.row_keys``): the last one given."""
    import pyarrow.compute as pc

    keys = row_keys(table)
    if pc.count_distinct(keys).as_py() == table.num_rows:
        return table  # the usual case, checked in C
    import pyarrow as pa

    repeated = keys.to_pandas().duplicated(keep="last").to_numpy()
    return table.filter(pa.array(~repeated))


def new_rows(
    store: SegmentStore, conn: Connection, model: str, kind: str, table: pa.Table
) -> pa.Table:
    """The rows of ``table`` (unique keys, all with an event time) whose key is not stored
    yet for the model and kind, sorted by event time."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return table
    lo, hi = time_range(table)
    stored = store.stored_keys(conn, model, kind, lo, hi)
    if len(stored):
        table = table.filter(pc.invert(pc.is_in(row_keys(table), value_set=stored)))
    return by_time(table)


def _time_filters(
    start: datetime | None, end: datetime | None, after: datetime | None
) -> list[tuple[str, str, Any]] | None:
    filters: list[tuple[str, str, Any]] = []
    if start is not None:
        filters.append(("event_time", ">=", start))
    if end is not None:
        filters.append(("event_time", "<=", end))
    if after is not None:
        filters.append(("event_time", ">", after))
    return filters or None

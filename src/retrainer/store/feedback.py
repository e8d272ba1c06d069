"""Feedback: actual outcomes in columnar segments, the logged predictions they join, and
resumable tailing offsets.

Actuals are unique on model, entity id and event time. One with a time is checked against the
actuals stored in its time range (the segments and row groups of that range, their id and time
columns only); one without a time cannot be found by time, so its key is kept in ``row_keys``
(an index in SQL). Every write runs under the model's write lock: the actuals' segment, their
keys, the training rows they add and a followed source's offset commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select

from ..core.clock import utcnow
from . import schema as t
from .bulk import CANDIDATE_COLUMNS, insert_keys, predictions_of
from .inputs import gather
from .predlog import many_input_rows
from .rows import ROWS, RowsStore
from .segments import SEGMENT_ROWS, by_time, decode, row_keys, time_range

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

ACTUALS = "actuals"
_INPUT_CHUNK = 1_000  # stored inputs fetched per query


@dataclass(frozen=True)
class FeedbackOffset:
    """How far a JSONL source has been read: byte offset, lines consumed, file identity."""

    source: str
    inode: int
    head_hash: str
    offset: int
    line: int


@dataclass(frozen=True)
class UnmatchedActual:
    """An actual stored with no prediction: where it is (segment, row) and what it says."""

    segment: int
    row: int
    entity_id: str
    event_time: datetime | None
    value: Any
    received_at: datetime


@dataclass(frozen=True)
class RecordedFeedback:
    inserted: np.ndarray  # mask over the actuals passed: stored now (not stored before)
    training_rows_added: int


def untimed_keys(entity_ids: Sequence[str]) -> list[str]:
    """The index key of actuals without an event time (see ``segments.row_keys``).

    >>> untimed_keys(["a", "b"])
    ['a\\x1f', 'b\\x1f']
    """
    return [f"{e}\x1f" for e in entity_ids]


class FeedbackStore(RowsStore):
    def prediction_candidates(self, model: str, entity_ids: Sequence[str]) -> pd.DataFrame:
        """Every logged prediction of these entity ids (unique): columns
        ``CANDIDATE_COLUMNS`` (``pos`` indexes ``entity_ids``; ``served`` is 0 for a shadow
        arm's). Set-based queries per chunk of ids, never one per id."""
        import pandas as pd

        with self.read() as conn:
            cols = predictions_of(conn, model, entity_ids)
        return pd.DataFrame(cols, columns=list(CANDIDATE_COLUMNS))

    def input_features(
        self, keys: Sequence[str], rows: Sequence[int], columns: Sequence[str]
    ) -> pd.DataFrame:
        """The logged input row of each (input key, row index) pair, as a frame of
        ``columns`` indexed by the pair's position (pairs whose input is gone are left out).
        Each stored input is fetched and parsed once."""
        table, positions = self.input_table(keys, rows, columns)
        frame = table.to_pandas()
        frame.index = positions
        return frame

    def input_table(
        self,
        keys: Sequence[str],
        rows: Sequence[int],
        columns: Sequence[str],
        decoded: dict[str, Any] | None = None,
    ) -> tuple[pa.Table, np.ndarray]:
        """The logged input rows of (input key, row index) pairs as an Arrow table of
        ``columns`` (missing ones null), in the order of the pairs, and each row's position
        among the pairs (pairs whose input is gone are left out). Each stored input is fetched
        and parsed once; a batch's Parquet input is never turned into Python objects.
        ``decoded``: the inputs a caller already parsed, by key (those fetched here are added),
        so that several calls over the same actuals parse each input once."""
        import numpy as np
        import pandas as pd

        codes, unique = pd.factorize(np.asarray(keys, dtype=object))
        names = [str(u) for u in unique]
        known = decoded if decoded is not None else {}
        wanted = [k for k in names if k not in known]
        if wanted:
            with self.read() as conn:
                for lo in range(0, len(wanted), _INPUT_CHUNK):
                    known.update(self._inputs(conn, wanted[lo : lo + _INPUT_CHUNK]))
        return gather([known.get(k) for k in names], codes, np.asarray(rows), columns)

    def _inputs(self, conn: Connection, keys: list[str]) -> dict[str, Any]:
        """The inputs stored under ``keys`` (one query), parsed: a batch's Parquet as a table,
        the JSON texts as lists of rows (parsed together, see ``many_input_rows``)."""
        c = t.prediction_inputs.c
        found: dict[str, Any] = {}
        texts: list[str] = []
        named: list[str] = []
        for key, body, data in conn.execute(select(c.key, c.body, c.data).where(c.key.in_(keys))):
            if data is not None:
                found[key] = decode(bytes(data))
            else:
                named.append(key)
                texts.append(body)
        found.update(zip(named, many_input_rows(texts), strict=True))
        return found

    def record_actuals(
        self,
        model: str,
        actuals: pd.DataFrame,
        training: pd.DataFrame | None = None,
        offset: FeedbackOffset | None = None,
        source: str = "feedback",
        conn: Connection | None = None,
    ) -> RecordedFeedback:
        """Store the actuals (``entity_id``, ``event_time``, ``value``, ``prediction_id``;
        unique on id and time) not stored yet, add the training rows of those (``training``
        has a ``pos`` column indexing ``actuals``), and move the source offset: all in one
        transaction (the caller's ``conn``, holding the model's write lock, when given)."""
        if conn is None:
            with self.write(model) as own:
                return self.record_actuals(model, actuals, training, offset, source, own)
        fresh = self.append_actuals(conn, model, actuals, source)
        added = 0
        if training is not None and len(training):
            rows = of_fresh(training, fresh)  # one per actual: unique ids and times
            added = self.append_rows(conn, model, rows, "feedback", unique=True).inserted
        if offset is not None:
            self.save_offset(conn, model, offset)
        return RecordedFeedback(fresh, added)

    def append_actuals(
        self, conn: Connection, model: str, actuals: pd.DataFrame, source: str
    ) -> np.ndarray:
        """Store the actuals not stored yet (unique within the frame), in segments, in the
        caller's transaction; returns the mask of those stored now."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        fresh = np.zeros(len(actuals), dtype=bool)
        for lo in range(0, len(actuals), SEGMENT_ROWS):
            part = actuals.iloc[lo : lo + SEGMENT_ROWS].reset_index(drop=True)
            table = pa.Table.from_pandas(part, preserve_index=False)
            timed = ~part["event_time"].isna().to_numpy()
            ok = np.zeros(len(part), dtype=bool)
            segment = self.reserve_segment(conn, model, ACTUALS, source)
            if timed.any():
                stamped = table.filter(pa.array(timed))
                t0, t1 = time_range(stamped)
                stored = self.stored_keys(conn, model, ACTUALS, t0, t1)
                new = ~pc.is_in(row_keys(stamped), value_set=stored).to_numpy(zero_copy_only=False)
                ok[np.flatnonzero(timed)[new]] = True
            if (~timed).any():
                where = np.flatnonzero(~timed)
                ids = part["entity_id"].to_numpy(dtype=object)[where].tolist()
                ok[where] = insert_keys(conn, model, ACTUALS, untimed_keys(ids), segment)
            kept = by_time(table.filter(pa.array(ok)))
            self.fill_segment(conn, segment, kept)
            fresh[lo : lo + len(part)] = ok
        return fresh

    def rebuild_keys(self, conn: Connection) -> None:
        """The index keys of the actuals without a time, from the segments (after a
        restore)."""
        c = t.segments.c
        for (model,) in conn.execute(select(c.model).distinct()).all():
            for kind in (ACTUALS,):
                found = self.segments(model, kind, conn=conn)
                cols = ["entity_id", "event_time"]
                for seg, tb in list(self.iter_segment_tables(found, columns=cols, conn=conn)):
                    untimed = tb.filter(tb["event_time"].is_null())
                    if untimed.num_rows:
                        ids = untimed["entity_id"].to_pylist()
                        insert_keys(conn, model, kind, untimed_keys(ids), seg.id)

    def row_counts(self, conn: Connection) -> dict[str, int]:
        """Training rows and actuals stored, over every model."""
        from sqlalchemy import func

        c = t.segments.c
        q = select(c.kind, func.sum(c.n_rows)).group_by(c.kind)
        found = {kind: int(n or 0) for kind, n in conn.execute(q)}
        return {"training_rows": found.get(ROWS, 0), "actuals": found.get(ACTUALS, 0)}

    def unmatched_actuals(self, model: str, since: datetime) -> list[UnmatchedActual]:
        """Actuals received at or after ``since`` that no logged prediction was joined to."""
        import numpy as np

        out: list[UnmatchedActual] = []
        found = self.segments(model, ACTUALS, created_since=since)
        if not found:
            return out
        lk = t.actual_links.c
        with self.read() as conn:
            linked = {
                (r[0], r[1])
                for r in conn.execute(
                    select(lk.segment, lk.row).where(
                        lk.model == model, lk.segment.in_([s.id for s in found])
                    )
                )
            }
            for seg, tb in self.iter_segment_tables(found, conn=conn):
                missing = tb["prediction_id"].is_null().to_numpy(zero_copy_only=False)
                rows = np.flatnonzero(missing)
                if not len(rows):
                    continue
                ids = tb["entity_id"].to_pylist()
                times = tb["event_time"].to_pylist()
                values = tb["value"].to_pylist()
                for r in rows.tolist():
                    if (seg.id, r) not in linked:
                        out.append(
                            UnmatchedActual(seg.id, r, ids[r], times[r], values[r], seg.created_at)
                        )
        return out

    def actuals_frame(self, model: str) -> pd.DataFrame:
        """Every stored actual: ``entity_id``, ``event_time``, ``value``, ``prediction_id``
        (the one joined late when it was stored without), ``received_at``, ``segment`` and
        ``row``. Reads every actuals segment: for inspection and tests, not for the loop."""
        import pandas as pd

        lk = t.actual_links.c
        with self.read() as conn:
            links = {
                (r[0], r[1]): r[2]
                for r in conn.execute(
                    select(lk.segment, lk.row, lk.prediction_id).where(lk.model == model)
                )
            }
            parts = []
            for seg, tb in self.iter_segment_tables(self.segments(model, ACTUALS), conn=conn):
                part = tb.to_pandas()
                part["received_at"] = seg.created_at
                part["segment"] = seg.id
                part["row"] = range(len(part))
                parts.append(part)
        if not parts:
            return pd.DataFrame(
                columns=["entity_id", "event_time", "value", "prediction_id", "received_at",
                         "segment", "row"]
            )  # fmt: skip
        frame = pd.concat(parts, ignore_index=True)
        late = [links.get((s, r)) for s, r in zip(frame["segment"], frame["row"], strict=True)]
        frame["prediction_id"] = (
            frame["prediction_id"]
            .astype("Int64")
            .where(pd.Series([x is None for x in late]), pd.array(late, dtype="Int64"))
        )
        return frame

    def count_actuals(self, model: str) -> int:
        return self.segment_totals(model, ACTUALS)[0]

    def feedback_offset(self, model: str, source: str) -> FeedbackOffset | None:
        c = t.feedback_offsets.c
        q = select(t.feedback_offsets).where(c.model == model, c.source == source)
        with self.read() as conn:
            r = conn.execute(q).first()
        if r is None:
            return None
        return FeedbackOffset(r.source, r.inode, r.head_hash, r.offset, r.line)

    def save_offset(self, conn: Connection, model: str, o: FeedbackOffset) -> None:
        """Move ``model``'s position in a followed source inside the caller's write
        transaction (with the rows read up to it)."""
        c = t.feedback_offsets.c
        conn.execute(delete(t.feedback_offsets).where(c.model == model, c.source == o.source))
        conn.execute(
            t.feedback_offsets.insert(),
            {
                "model": model,
                "source": o.source,
                "inode": o.inode,
                "head_hash": o.head_hash,
                "offset": o.offset,
                "line": o.line,
                "updated_at": utcnow(),
            },
        )


def of_fresh(training: Any, fresh: np.ndarray) -> Any:
    """The training rows (a frame or an Arrow table with a ``pos`` column indexing the
    actuals) of the actuals stored now, without ``pos``."""
    import pyarrow as pa

    if isinstance(training, pa.Table):
        keep = fresh[training["pos"].to_numpy()]
        return training.filter(pa.array(keep)).drop_columns(["pos"])
    return training[fresh[training["pos"].to_numpy()]].drop(columns=["pos"])

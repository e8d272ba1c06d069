"""Feedback: actual outcomes, the predictions they join, and resumable tailing offsets.

Actuals are unique on model, entity id and event time. Every write runs under the model's
registry lock, so the "already stored?" check and the insert cannot interleave with another
writer of the same model (and feedback without an event time is de-duplicated too, which a
unique constraint alone cannot do: SQL treats NULLs as distinct).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from ..core.clock import utcnow
from . import schema as t
from .base import StoreBase
from .predlog import input_rows

_CHUNK = 5_000


@dataclass(frozen=True)
class PredictionRef:
    """A logged prediction, as far as joining an actual to it needs."""

    id: int
    entity_id: str
    version: str
    arm: str
    request_id: str
    created_at: datetime


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
    id: int
    entity_id: str
    event_time: datetime | None
    value: Any
    received_at: datetime


@dataclass(frozen=True)
class RecordedFeedback:
    inserted: list[int]  # indices (into the rows passed) of actuals newly stored
    training_rows_added: int


class FeedbackStore(StoreBase):
    def predictions_for(
        self, model: str, entity_ids: Sequence[str]
    ) -> dict[str, list[PredictionRef]]:
        """Every logged prediction of these entities, oldest first, by entity id."""
        c = t.predictions.c
        found: dict[str, list[PredictionRef]] = {}
        unique = list(dict.fromkeys(entity_ids))
        with self.read() as conn:
            for i in range(0, len(unique), _CHUNK):
                q = (
                    select(c.id, c.entity_id, c.version, c.arm, c.request_id, c.created_at)
                    .where(c.model == model, c.entity_id.in_(unique[i : i + _CHUNK]))
                    .order_by(c.created_at, c.id)
                )
                for r in conn.execute(q):
                    found.setdefault(r.entity_id, []).append(
                        PredictionRef(
                            r.id, r.entity_id, r.version, r.arm, r.request_id, r.created_at
                        )
                    )
        return found

    def prediction_features(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The input row each prediction scored (as it was sent), by prediction id."""
        p, i = t.predictions.c, t.prediction_inputs.c
        out: dict[int, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        with self.read() as conn:
            for j in range(0, len(unique), _CHUNK):
                q = (
                    select(p.id, p.input_row, i.key, i.body)
                    .join(t.prediction_inputs, i.key == p.input_key)
                    .where(p.id.in_(unique[j : j + _CHUNK]))
                )
                parsed: dict[str, list[dict[str, Any]]] = {}
                for r in conn.execute(q):
                    rows = parsed.get(r.key)
                    if rows is None:
                        rows = parsed[r.key] = input_rows(r.body)
                    out[r.id] = rows[r.input_row]
        return out

    def record_actuals(
        self,
        model: str,
        actuals: Sequence[dict[str, Any]],
        training_rows: Sequence[dict[str, Any]],
        offset: FeedbackOffset | None = None,
    ) -> RecordedFeedback:
        """Store actuals (entity_id, event_time, value, received_at, prediction_id) not stored
        yet, add the training rows whose entity id is new, and move the source offset: all in
        one transaction."""
        with self.write(model) as conn:
            stored = self._actual_keys(conn, model, [a["entity_id"] for a in actuals])
            fresh = [
                i for i, a in enumerate(actuals) if (a["entity_id"], a["event_time"]) not in stored
            ]
            rows = [{**actuals[i], "model": model} for i in fresh]
            for j in range(0, len(rows), _CHUNK):
                conn.execute(t.actuals.insert(), rows[j : j + _CHUNK])
            added = add_training_rows(self, conn, model, training_rows)
            if offset is not None:
                self._save_offset(conn, model, offset)
        return RecordedFeedback(fresh, added)

    def unmatched_actuals(self, model: str, since: datetime) -> list[UnmatchedActual]:
        """Actuals received at or after ``since`` that no logged prediction was joined to."""
        c = t.actuals.c
        q = (
            select(c.id, c.entity_id, c.event_time, c.value, c.received_at)
            .where(c.model == model, c.received_at >= since, c.prediction_id.is_(None))
            .order_by(c.id)
        )
        with self.read() as conn:
            return [UnmatchedActual(*r) for r in conn.execute(q)]

    def feedback_offset(self, model: str, source: str) -> FeedbackOffset | None:
        c = t.feedback_offsets.c
        q = select(t.feedback_offsets).where(c.model == model, c.source == source)
        with self.read() as conn:
            r = conn.execute(q).first()
        if r is None:
            return None
        return FeedbackOffset(r.source, r.inode, r.head_hash, r.offset, r.line)

    def save_feedback_offset(self, model: str, offset: FeedbackOffset) -> None:
        with self.write(model) as conn:
            self._save_offset(conn, model, offset)

    def _save_offset(self, conn: Connection, model: str, o: FeedbackOffset) -> None:
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

    def _actual_keys(
        self, conn: Connection, model: str, ids: Sequence[str]
    ) -> set[tuple[str, datetime | None]]:
        c = t.actuals.c
        unique = list(dict.fromkeys(ids))
        keys: set[tuple[str, datetime | None]] = set()
        for i in range(0, len(unique), _CHUNK):
            q = select(c.entity_id, c.event_time).where(
                c.model == model, c.entity_id.in_(unique[i : i + _CHUNK])
            )
            keys.update((r.entity_id, r.event_time) for r in conn.execute(q))
        return keys


def add_training_rows(
    store: StoreBase, conn: Connection, model: str, rows: Sequence[dict[str, Any]]
) -> int:
    """Add the training rows whose entity id the model has no row for (the last one of an id
    given twice); returns how many."""
    known = _training_ids(conn, model, [r["entity_id"] for r in rows])
    last = {r["entity_id"]: r for r in rows if r["entity_id"] not in known}
    new_rows = [{**r, "model": model} for r in last.values()]
    for j in range(0, len(new_rows), _CHUNK):
        store.insert_ignore(conn, t.training_rows, new_rows[j : j + _CHUNK], ["model", "entity_id"])
    return len(new_rows)


def _training_ids(conn: Connection, model: str, ids: Sequence[str]) -> set[str]:
    c = t.training_rows.c
    unique = list(dict.fromkeys(ids))
    found: set[str] = set()
    for i in range(0, len(unique), _CHUNK):
        q = select(c.entity_id).where(c.model == model, c.entity_id.in_(unique[i : i + _CHUNK]))
        found.update(r[0] for r in conn.execute(q))
    return found

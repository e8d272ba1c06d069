"""Training rows: append-only, unique per model and entity id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from . import schema as t
from .base import StoreBase

_CHUNK = 5_000


class RowsStore(StoreBase):
    def add_training_rows(self, model: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows (entity_id, event_time, target, features, source, ingested_at) in one
        transaction; rows whose entity id is already stored are skipped. Returns the number
        inserted."""
        c = t.training_rows.c
        with self.write(model) as conn:
            count = select(func.count()).select_from(t.training_rows).where(c.model == model)
            before = conn.execute(count).scalar() or 0
            for i in range(0, len(rows), _CHUNK):
                chunk = [{**r, "model": model} for r in rows[i : i + _CHUNK]]
                self.insert_ignore(conn, t.training_rows, chunk, ["model", "entity_id"])
            after = conn.execute(count).scalar() or 0
        return int(after - before)

    def known_entity_ids(self, model: str, ids: Sequence[str]) -> set[str]:
        c = t.training_rows.c
        found: set[str] = set()
        with self.read() as conn:
            for i in range(0, len(ids), _CHUNK):
                q = select(c.entity_id).where(
                    c.model == model, c.entity_id.in_(ids[i : i + _CHUNK])
                )
                found.update(r[0] for r in conn.execute(q))
        return found

    def training_frame(
        self,
        model: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        after: datetime | None = None,
    ) -> pd.DataFrame:
        """Rows in [start, end] (or strictly after ``after``) ordered by time, one column per
        feature plus ``entity_id``, ``event_time`` and ``target``."""
        c = t.training_rows.c
        q = select(c.entity_id, c.event_time, c.target, c.features).where(c.model == model)
        if start is not None:
            q = q.where(c.event_time >= start)
        if end is not None:
            q = q.where(c.event_time <= end)
        if after is not None:
            q = q.where(c.event_time > after)
        q = q.order_by(c.event_time, c.id)
        with self.read() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return pd.DataFrame(columns=["entity_id", "event_time", "target"])
        feats = pd.DataFrame.from_records([r.features for r in rows])
        meta = pd.DataFrame(
            {
                "entity_id": [r.entity_id for r in rows],
                "event_time": pd.to_datetime([r.event_time for r in rows]),
                "target": [r.target for r in rows],
            }
        )
        return pd.concat([meta, feats], axis=1)

    def count_training_rows(self, model: str, after: datetime | None = None) -> int:
        """Rows of ``model`` (strictly newer than ``after`` when given)."""
        c = t.training_rows.c
        q = select(func.count()).select_from(t.training_rows).where(c.model == model)
        if after is not None:
            q = q.where(c.event_time > after)
        with self.read() as conn:
            return int(conn.execute(q).scalar() or 0)

    def training_stats(self, model: str) -> tuple[int, datetime | None, datetime | None]:
        c = t.training_rows.c
        q = select(func.count(), func.min(c.event_time), func.max(c.event_time)).where(
            c.model == model
        )
        with self.read() as conn:
            n, lo, hi = conn.execute(q).one()
        return int(n), lo, hi

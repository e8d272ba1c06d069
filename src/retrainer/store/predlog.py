"""The prediction log: written in batches (one transaction per batch, never per row)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from . import schema as t
from .base import StoreBase

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite
_COLUMNS = (
    "model",
    "request_id",
    "entity_id",
    "version",
    "arm",
    "features",
    "output",
    "proba",
    "created_at",
)


class PredictionLogStore(StoreBase):
    def log_predictions(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert prediction records (model, request_id, entity_id, version, arm, features as
        JSON text, output, proba, created_at) as one group commit."""
        if not rows:
            return 0
        mark = "?" if self.dialect == "sqlite" else "%s"
        sql = (
            f"INSERT INTO predictions ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(_COLUMNS))})"
        )
        # The driver's executemany, not SQLAlchemy's per-row parameter processing: this is
        # the serving path's cost per logged row. JSON and time values are encoded here.
        params = [
            (
                r["model"],
                r["request_id"],
                r.get("entity_id"),
                r["version"],
                r["arm"],
                r["features"],
                json.dumps(r["output"]),
                r.get("proba"),
                r["created_at"]
                if self.dialect != "sqlite"
                else r["created_at"].strftime(_SQLITE_TIME),
            )
            for r in rows
        ]
        with self.write() as conn:
            conn.exec_driver_sql(sql, params)  # type: ignore[arg-type]
        return len(rows)

    def count_predictions(self, model: str) -> int:
        q = select(func.count()).select_from(t.predictions).where(t.predictions.c.model == model)
        with self.read() as conn:
            return int(conn.execute(q).scalar() or 0)


class PredictionFeatures(StoreBase):
    def iter_prediction_features(
        self, model: str, since: datetime | None = None, chunk: int = 50_000
    ) -> Iterator[list[str]]:
        """The logged feature JSON of ``model``'s predictions since a time, in chunks (keyset
        pagination on the id, so memory stays bounded)."""
        c = t.predictions.c
        last = 0
        while True:
            q = select(c.id, c.features).where(c.model == model, c.id > last)
            if since is not None:
                q = q.where(c.created_at >= since)
            with self.read() as conn:
                rows = conn.execute(q.order_by(c.id).limit(chunk)).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[1] for r in rows]

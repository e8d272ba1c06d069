"""The prediction log: written in batches (one transaction per batch, never per row)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from . import schema as t
from .base import StoreBase


class PredictionLogStore(StoreBase):
    def log_predictions(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert prediction records (model, request_id, entity_id, version, arm, features as
        JSON text, output, proba, created_at) as one group commit."""
        if not rows:
            return 0
        with self.write() as conn:
            conn.execute(t.predictions.insert(), list(rows))
        return len(rows)

    def count_predictions(self, model: str) -> int:
        q = select(func.count()).select_from(t.predictions).where(t.predictions.c.model == model)
        with self.read() as conn:
            return int(conn.execute(q).scalar() or 0)

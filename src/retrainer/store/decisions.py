"""Every maintenance decision, taken or not, with its reasons and numbers."""

from __future__ import annotations

from sqlalchemy import select

from ..core.entities import Decision
from . import schema as t
from .base import StoreBase
from .convert import jsonsafe


class DecisionStore(StoreBase):
    def add_decision(self, d: Decision) -> int:
        row = {
            "model": d.model,
            "action": d.action,
            "reasons": list(d.reasons),
            "numbers": jsonsafe(d.numbers),
            "taken_at": d.taken_at,
            "dry_run": d.dry_run,
            "outcome": d.outcome,
        }
        with self.write() as conn:
            key = conn.execute(t.decisions.insert().values(**row)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def decisions(self, model: str, limit: int = 50) -> list[Decision]:
        c = t.decisions.c
        q = select(t.decisions).where(c.model == model).order_by(c.id.desc()).limit(limit)
        with self.read() as conn:
            rows = conn.execute(q).all()
        return [
            Decision(
                r.model,
                r.action,
                tuple(r.reasons),
                r.numbers,
                r.taken_at,
                r.dry_run,
                r.outcome,
                r.id,
            )
            for r in reversed(rows)
        ]

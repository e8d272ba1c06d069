"""Every maintenance decision, taken or not, with its reasons and numbers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from ..core.entities import Decision
from . import schema as t
from .base import StoreBase
from .convert import jsonsafe

PENDING = "pending:"  # the outcome of a decision whose action is under way


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

    def set_outcome(self, decision_id: int, outcome: str) -> None:
        """Record what became of a stored decision (one written as pending before acting)."""
        with self.write() as conn:
            conn.execute(
                update(t.decisions).where(t.decisions.c.id == decision_id).values(outcome=outcome)
            )

    def pending_decisions(self, model: str) -> list[Decision]:
        """Decisions stored before acting whose run never recorded an outcome (it died)."""
        c = t.decisions.c
        q = select(t.decisions.c.id).where(c.model == model, c.outcome.like(f"{PENDING}%"))
        with self.read() as conn:
            ids = {int(r[0]) for r in conn.execute(q)}
        return [d for d in self.decisions(model, limit=10_000) if d.id in ids] if ids else []

    def latest_decisions(self, names: list[str]) -> dict[str, Decision]:
        """The newest decision of each of ``names`` that has one, in one query whatever their
        number (a fleet's thousand members on the dashboard).

        >>> from retrainer.store import SqlStore
        >>> SqlStore("sqlite://").latest_decisions(["sales.s0", "sales.s1"])
        {}
        """
        if not names:
            return {}
        c = t.decisions.c
        newest = select(func.max(c.id)).where(c.model.in_(sorted(set(names)))).group_by(c.model)
        with self.read() as conn:
            rows = conn.execute(select(t.decisions).where(c.id.in_(newest))).all()
        return {str(r.model): _decision(r) for r in rows}

    def decisions(self, model: str, limit: int = 50) -> list[Decision]:
        c = t.decisions.c
        q = select(t.decisions).where(c.model == model).order_by(c.id.desc()).limit(limit)
        with self.read() as conn:
            rows = conn.execute(q).all()
        return [_decision(r) for r in reversed(rows)]


def _decision(r: Any) -> Decision:
    return Decision(
        r.model, r.action, tuple(r.reasons), r.numbers, r.taken_at, r.dry_run, r.outcome, r.id
    )

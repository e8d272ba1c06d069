"""Per-model state kept between turns of the loop, as JSON under a key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from ..core.clock import utcnow
from . import schema as t
from .base import StoreBase
from .convert import jsonsafe


class StateStore(StoreBase):
    def get_state(self, model: str, key: str) -> tuple[str | None, Any] | None:
        """(version, value) stored under ``key``, or None."""
        c = t.model_state.c
        with self.read() as conn:
            row = conn.execute(
                select(c.version, c.value).where(c.model == model, c.key == key)
            ).first()
        return None if row is None else (row.version, row.value)

    def member_states(self, prefix: str, key: str) -> dict[str, tuple[str | None, Any]]:
        """(version, value) under ``key`` of every model named ``prefix…`` (a fleet's
        members) that has one, in one query (``/metrics`` of a thousand members).

        >>> from retrainer.store import SqlStore
        >>> SqlStore("sqlite://").member_states("sales.", "drift")
        {}
        """
        c = t.model_state.c
        q = select(c.model, c.version, c.value).where(
            c.model.startswith(prefix, autoescape=True), c.key == key
        )
        with self.read() as conn:
            return {str(r.model): (r.version, r.value) for r in conn.execute(q)}

    def put_state(
        self,
        model: str,
        key: str,
        version: str | None,
        value: Any,
        conn: Connection | None = None,
    ) -> None:
        """Store ``value`` under ``key``, in the caller's write transaction ``conn`` when given
        (e.g. a feedback source's cursor, moved with the rows it stored)."""
        if conn is None:
            with self.write() as own:
                self.put_state(model, key, version, value, own)
            return
        c = t.model_state.c
        conn.execute(delete(t.model_state).where(c.model == model, c.key == key))
        conn.execute(
            t.model_state.insert().values(
                model=model,
                key=key,
                version=version,
                value=jsonsafe(value),
                updated_at=utcnow(),
            )
        )

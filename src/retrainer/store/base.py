"""What every store backend shares: the engine, transactions, and insert-or-ignore."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from ..core.clock import utcnow
from . import schema as t
from .engine import connect, make_engine, migrate, safe_url, write_transaction


class StoreBase:
    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        if auto_migrate:
            migrate(self.engine)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({safe_url(self.url)!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with connect(self.engine) as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, model: str | None = None) -> Iterator[Connection]:
        """One write transaction; with ``model``, it holds that model's registry lock."""
        with write_transaction(self.engine) as conn:
            if model is not None:
                self._lock_model(conn, model)
            yield conn

    @contextmanager
    def write_models(self, models: Sequence[str]) -> Iterator[Connection]:
        """One write transaction holding the registry locks of ``models`` (taken in sorted
        order, so two writers of overlapping sets cannot deadlock)."""
        with write_transaction(self.engine) as conn:
            for model in sorted(set(models)):
                self._lock_model(conn, model)
            yield conn

    def insert_ignore(
        self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
    ) -> None:
        if not rows:
            return
        if conn.dialect.name == "postgresql":
            pg = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
            conn.execute(pg, list(rows))
        else:
            lite = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
            conn.execute(lite, list(rows))

    def _lock_model(self, conn: Connection, model: str) -> None:
        self.insert_ignore(conn, t.models, [{"name": model, "created_at": utcnow()}], ["name"])
        self.insert_ignore(
            conn, t.roles, [{"model": model, "challenger_step": 0, "revision": 0}], ["model"]
        )
        if conn.dialect.name == "postgresql":
            conn.execute(select(t.roles.c.model).where(t.roles.c.model == model).with_for_update())

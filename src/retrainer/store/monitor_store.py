"""Monitoring aggregates: per-hour sufficient statistics per version and arm, and the watermark
of the last prediction and actual folded into them.

A fold reads only rows above the watermark, adds them to their hour buckets and moves the
watermark, one chunk per transaction under the model's lock, so a crash or a concurrent check
never counts a row twice. A check then sums the buckets in its window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, Text, cast, func, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite

from ..core.clock import utcnow
from . import schema as t
from .base import StoreBase
from .feedback import add_training_rows

STATS = [
    c.name for c in t.monitor_aggregates.c if c.name not in ("model", "version", "arm", "hour")
]
KEY = ["model", "version", "arm", "hour"]
FOLD_CHUNK = 200_000
_LINK_CHUNK = 5_000

# A folder turns fetched rows (plain tuples; timestamps as text or datetime, JSON values as
# JSON text) into bucket rows: {version, arm, hour, <stat>: value, ...}.
Folder = Callable[[Sequence[Any]], list[dict[str, Any]]]


class MonitorStore(StoreBase):
    def fold_monitor(
        self,
        model: str,
        fold_predictions: Folder,
        fold_pairs: Folder,
        *,
        chunk: int = FOLD_CHUNK,
    ) -> tuple[int, int]:
        """Fold every prediction and actual above the watermark; returns how many of each."""
        n_pred = n_act = 0
        while True:
            with self.write(model) as conn:
                wm = self._watermark(conn, model)
                p, a = t.predictions.c, t.actuals.c
                preds = conn.execute(
                    select(p.id, p.version, p.arm, _raw(p.created_at), p.proba)
                    .where(p.model == model, p.id > wm[0])
                    .order_by(p.id)
                    .limit(chunk)
                ).all()
                ids = (
                    conn.execute(
                        select(a.id)
                        .where(a.model == model, a.id > wm[1])
                        .order_by(a.id)
                        .limit(chunk)
                    )
                    .scalars()
                    .all()
                )
                if not preds and not ids:
                    return n_pred, n_act
                pairs = conn.execute(_pairs_query(model, wm[1], ids[-1])).all() if ids else []
                self._add(
                    conn,
                    model,
                    fold_predictions([tuple(r) for r in preds])
                    + fold_pairs([tuple(r) for r in pairs]),
                )
                self._set_watermark(
                    conn, model, (preds[-1][0] if preds else wm[0], ids[-1] if ids else wm[1])
                )
                n_pred += len(preds)
                n_act += len(ids)

    def link_actuals(
        self,
        model: str,
        links: Sequence[tuple[int, int]],
        training_rows: dict[int, dict[str, Any]],
        fold_pairs: Folder,
    ) -> int:
        """Join actuals stored unmatched to the predictions logged after them, as (actual id,
        prediction id) ``links``; adds the training row of each actual linked (by actual id)
        and returns how many were linked. One transaction under the model's lock: an actual
        still unmatched is linked once, and one the monitor's watermark has passed is folded
        into the buckets here (the others are folded when the monitor reaches them)."""
        a = t.actuals.c
        linked: list[int] = []
        with self.write(model) as conn:
            for aid, pid in links:
                done = conn.execute(
                    update(t.actuals)
                    .where(a.id == aid, a.model == model, a.prediction_id.is_(None))
                    .values(prediction_id=pid)
                )
                if done.rowcount:
                    linked.append(aid)
            rows = [training_rows[i] for i in linked if i in training_rows]
            add_training_rows(self, conn, model, rows)
            wm = self._watermark(conn, model)
            passed = [i for i in linked if i <= wm[1]]
            for j in range(0, len(passed), _LINK_CHUNK):
                q = _pairs_query(model, 0, wm[1]).where(a.id.in_(passed[j : j + _LINK_CHUNK]))
                self._add(conn, model, fold_pairs([tuple(r) for r in conn.execute(q)]))
        return len(linked)

    def monitor_buckets(
        self, model: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Bucket sums per (version, arm) over hours in [since, until)."""
        c = t.monitor_aggregates.c
        q = select(c.version, c.arm, *[func.sum(c[s]).label(s) for s in STATS]).where(
            c.model == model
        )
        if since is not None:
            q = q.where(c.hour >= since)
        if until is not None:
            q = q.where(c.hour < until)
        q = q.group_by(c.version, c.arm).order_by(c.version, c.arm)
        with self.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:  # PostgreSQL sums BIGINT as NUMERIC
            r.update({s: (float if s.startswith("sum_") else int)(r[s] or 0) for s in STATS})
        return rows

    def monitor_watermark(self, model: str) -> tuple[int, int]:
        with self.read() as conn:
            return self._watermark(conn, model)

    def _watermark(self, conn: Connection, model: str) -> tuple[int, int]:
        c = t.monitor_watermarks.c
        r = conn.execute(
            select(c.last_prediction_id, c.last_actual_id).where(c.model == model)
        ).first()
        return (0, 0) if r is None else (int(r[0]), int(r[1]))

    def _set_watermark(self, conn: Connection, model: str, wm: tuple[int, int]) -> None:
        row = {
            "model": model,
            "last_prediction_id": wm[0],
            "last_actual_id": wm[1],
            "updated_at": utcnow(),
        }
        self._upsert(conn, t.monitor_watermarks, [row], ["model"], replace=True)

    def _add(self, conn: Connection, model: str, buckets: list[dict[str, Any]]) -> None:
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        for b in buckets:
            key = (b["version"], b["arm"], b["hour"])
            acc = merged.setdefault(
                key,
                {
                    "model": model,
                    "version": key[0],
                    "arm": key[1],
                    "hour": key[2],
                    **{s: 0 for s in STATS},
                },
            )
            for s in STATS:
                acc[s] += b.get(s, 0)
        self._upsert(conn, t.monitor_aggregates, list(merged.values()), KEY, replace=False)

    def _upsert(
        self,
        conn: Connection,
        table: Any,
        rows: list[dict[str, Any]],
        keys: list[str],
        *,
        replace: bool,
    ) -> None:
        if not rows:
            return
        ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
        cols = [c.name for c in table.c if c.name not in keys]
        if replace:
            sets = {c: ins.excluded[c] for c in cols}
        else:
            sets = {c: table.c[c] + ins.excluded[c] for c in cols}
        conn.execute(ins.on_conflict_do_update(index_elements=keys, set_=sets), rows)


def _raw(col: Any) -> Any:
    """A timestamp as the driver returns it (text on SQLite): the folder parses a whole chunk
    at once, far faster than row by row."""
    return type_coerce(col, String).label(col.name)


def _text(col: Any) -> Any:
    """A JSON value as its JSON text on every backend (decoded per distinct value later)."""
    return cast(col, Text).label(col.name)


def _pairs_query(model: str, after: int, last: int) -> Any:
    """Each actual in (after, last] with the prediction it joined and that prediction's
    siblings from other arms (a shadow challenger scored on the same request)."""
    a = t.actuals
    m = t.predictions.alias("m")
    p = t.predictions.alias("p")
    return (
        select(
            _text(a.c.value),
            p.c.version,
            p.c.arm,
            _raw(p.c.created_at),
            _text(p.c.output),
            p.c.proba,
        )
        .select_from(a)
        .join(m, m.c.id == a.c.prediction_id)
        .join(
            p,
            (p.c.model == m.c.model)
            & (p.c.entity_id == m.c.entity_id)
            & (p.c.request_id == m.c.request_id)
            & ((p.c.id == m.c.id) | (p.c.arm != m.c.arm)),
        )
        .where(a.c.model == model, a.c.id > after, a.c.id <= last)
    )

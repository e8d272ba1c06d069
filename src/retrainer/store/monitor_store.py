"""Monitoring aggregates: per-hour sufficient statistics per version and arm, and the watermark
of the last prediction and actual folded into them.

A fold reads only rows above the watermark, adds them to their hour buckets and moves the
watermark, one chunk per transaction under the model's lock, so a crash or a concurrent check
never counts a row twice. A check then sums the buckets in its window.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, func, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite

from ..core.clock import utcnow
from . import schema as t
from .bulk import PAIR_COLUMNS, pairs_of
from .feedback import ACTUALS, FeedbackStore, of_fresh

if TYPE_CHECKING:
    import pandas as pd

STATS = [
    c.name for c in t.monitor_aggregates.c if c.name not in ("model", "version", "arm", "hour")
]
KEY = ["model", "version", "arm", "hour"]
FOLD_CHUNK = 200_000

# A folder turns fetched rows (plain tuples; timestamps as text or datetime, JSON values as
# JSON text) into bucket rows: {version, arm, hour, <stat>: value, ...}.
Folder = Callable[[Sequence[Any]], list[dict[str, Any]]]
# A baseline folder takes an actuals segment (a pyarrow table), its labelled pairs (with the
# segment ``row`` of each) and the baselines' state (None at first); returns bucket rows and
# the new state, which is stored with the buckets and the watermark in one transaction.
BaselineFolder = Callable[[Any, Any, Any], tuple[list[dict[str, Any]], Any]]
BASELINE_STATE = "naive"


class MonitorStore(FeedbackStore):
    def fold_monitor(
        self,
        model: str,
        fold_predictions: Folder,
        fold_pairs: Folder,
        *,
        chunk: int = FOLD_CHUNK,
        fold_baselines: BaselineFolder | None = None,
    ) -> tuple[int, int]:
        """Fold every prediction and actual above the watermark; returns how many of each.
        Each transaction takes a chunk of predictions by id and the next actuals segments up
        to a chunk of rows (at least one segment; many small ones, e.g. one per REST call,
        together). ``fold_baselines``: also fold the naive baselines of each actuals segment,
        their state kept under ``model_state`` key ``naive`` in the same transaction."""
        n_pred = n_act = 0
        while True:
            with self.write(model) as conn:
                wm = self._watermark(conn, model)
                p = t.predictions.c
                preds = conn.execute(
                    select(p.id, p.version, p.arm, _raw(p.created_at), p.proba)
                    .where(p.model == model, p.id > wm[0])
                    .order_by(p.id)
                    .limit(chunk)
                ).cursor.fetchall()  # plain tuples: no result-row object per row
                found = _up_to(self.segments(model, ACTUALS, above=wm[1], conn=conn), chunk)
                if not preds and not found:
                    return n_pred, n_act
                buckets = fold_predictions(preds)
                state = self._baseline_state(conn, model) if fold_baselines else None
                for seg, tb in self.iter_segment_tables(found, conn=conn):
                    pairs = self._segment_pairs(conn, model, seg.id, tb)
                    buckets += fold_pairs(pairs)
                    if fold_baselines is not None:
                        more, state = fold_baselines(tb, pairs, state)
                        buckets += more
                    n_act += tb.num_rows
                self._add(conn, model, buckets)
                if fold_baselines is not None and found:
                    self._put_baseline_state(conn, model, state)
                self._set_watermark(
                    conn,
                    model,
                    (preds[-1][0] if preds else wm[0], found[-1].id if found else wm[1]),
                )
                n_pred += len(preds)

    def add_folded_predictions(
        self, model: str, after: int, upto: int, buckets: list[dict[str, Any]]
    ) -> bool:
        """Add the buckets of ``model``'s predictions with ids in (``after``, ``upto``],
        folded elsewhere (on Dask workers, :mod:`.monitor_reads`), and move the prediction
        watermark to ``upto``, in one transaction under the model's lock; False, with
        nothing added, when the watermark is no longer ``after`` (another fold counted some
        of them meanwhile)."""
        with self.write(model) as conn:
            wm = self._watermark(conn, model)
            if wm[0] != after:
                return False
            self._add(conn, model, buckets)
            self._set_watermark(conn, model, (upto, wm[1]))
        return True

    def prediction_watermark(self, model: str) -> int:
        """The id of the last prediction the monitor has folded (0 before the first)."""
        with self.read() as conn:
            return self._watermark(conn, model)[0]

    def _segment_pairs(
        self, conn: Connection, model: str, segment: int, tb: Any, only: Any = None
    ) -> list[tuple[Any, ...]]:
        """The labelled pairs of an actuals segment: each actual with the prediction it joined
        (at feedback time, or later through a link) and that prediction's siblings from other
        arms, as a frame (value JSON, version, arm, created_at, output JSON, proba; the fold
        takes it as its rows). ``only``: row numbers to keep (the links just made)."""
        import numpy as np

        pid = tb["prediction_id"].to_numpy(zero_copy_only=False)
        has = ~tb["prediction_id"].is_null().to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(has)
        pids = np.where(has, pid, 0).astype(np.int64)[rows]
        lk = t.actual_links.c
        late = conn.execute(
            select(lk.row, lk.prediction_id).where(lk.model == model, lk.segment == segment)
        ).all()
        if late:
            rows = np.concatenate([rows, np.array([r[0] for r in late], dtype=np.int64)])
            pids = np.concatenate([pids, np.array([r[1] for r in late], dtype=np.int64)])
        if only is not None:
            keep = np.isin(rows, np.asarray(list(only), dtype=np.int64))
            rows, pids = rows[keep], pids[keep]
        if not len(rows):
            return []
        import pandas as pd

        cols = pairs_of(conn, pids)
        values = tb["value"].to_pandas().to_numpy(dtype=object)[rows[cols["pos"]]]
        texts = pd.Series(values, dtype=object)
        texts = texts.map({u: json.dumps(u) for u in texts.unique()})
        frame = pd.DataFrame({"value": texts, **{c: cols[c] for c in PAIR_COLUMNS[1:]}})
        frame["row"] = rows[cols["pos"]]  # the actual's row in its segment
        frame["proba"] = pd.to_numeric(frame["proba"], errors="coerce")
        return frame  # type: ignore[return-value]

    def link_actuals(
        self,
        model: str,
        links: Sequence[tuple[int, int, int]],
        training_rows: Any,
        fold_pairs: Folder,
    ) -> int:
        """Join actuals stored unmatched to the predictions logged after them, as (segment,
        row, prediction id) ``links``; adds the training rows of the actuals linked
        (``training_rows``: a rows frame with a ``pos`` column indexing ``links``, or None)
        and returns how many were linked. One transaction under the model's lock: an actual
        is linked once, and one whose segment the monitor has folded already is folded into
        the buckets here (the others are folded when the monitor reaches them)."""
        lk = t.actual_links.c
        now = utcnow()
        linked: list[int] = []
        with self.write(model) as conn:
            done = {
                (r[0], r[1])
                for r in conn.execute(
                    select(lk.segment, lk.row).where(
                        lk.model == model, lk.segment.in_(sorted({s for s, _r, _p in links}))
                    )
                )
            }
            fresh = []
            for i, (seg, row, pid) in enumerate(links):
                if (seg, row) in done:
                    continue
                done.add((seg, row))
                linked.append(i)
                fresh.append(
                    {"model": model, "segment": seg, "row": row, "prediction_id": pid,
                     "linked_at": now}
                )  # fmt: skip
            if fresh:
                conn.execute(t.actual_links.insert(), fresh)
            if training_rows is not None and len(training_rows) and linked:
                import numpy as np

                chosen = np.zeros(len(links), dtype=bool)
                chosen[linked] = True
                self.append_rows(conn, model, of_fresh(training_rows, chosen), "feedback")
            wm = self._watermark(conn, model)
            passed: dict[int, list[int]] = {}
            for i in linked:
                seg, row, _pid = links[i]
                if seg <= wm[1]:
                    passed.setdefault(seg, []).append(row)
            found = self.segments(model, ACTUALS, ids=sorted(passed), conn=conn)
            for seg_meta, tb in self.iter_segment_tables(found, conn=conn):
                only = passed[seg_meta.id]
                self._add(conn, model, fold_pairs(
                    self._segment_pairs(conn, model, seg_meta.id, tb, only=only)))  # fmt: skip
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

    def monitor_hours(self, model: str) -> pd.DataFrame:
        """Every hour bucket of ``model``: columns hour, version, arm and each statistic,
        sorted by hour; one read for a chart over the whole life (a row per hour and arm)."""
        import pandas as pd

        c = t.monitor_aggregates.c
        q = select(type_coerce(c.hour, String).label("hour"), c.version, c.arm,
                   *[c[s] for s in STATS]).where(c.model == model).order_by(c.hour)  # fmt: skip
        with self.read() as conn:
            rows = conn.execute(q).fetchall()
        names = ["hour", "version", "arm", *STATS]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        frame = pd.DataFrame({n: list(col) for n, col in zip(names, columns, strict=True)})
        frame["hour"] = pd.to_datetime(frame["hour"], format="ISO8601")
        for s in STATS:  # PostgreSQL sums BIGINT as NUMERIC; NULL as 0
            frame[s] = pd.to_numeric(frame[s]).fillna(0).astype(float)
        return frame

    def monitor_span(self, model: str) -> tuple[datetime, datetime] | None:
        """The first and last hour holding monitor buckets of ``model`` (None: no bucket)."""
        c = t.monitor_aggregates.c
        q = select(func.min(c.hour), func.max(c.hour)).where(c.model == model)
        with self.read() as conn:
            lo, hi = conn.execute(q).one()
        return None if lo is None else (lo, hi)

    def _baseline_state(self, conn: Connection, model: str) -> Any:
        c = t.model_state.c
        row = conn.execute(select(c.value).where(c.model == model, c.key == BASELINE_STATE)).first()
        return None if row is None else row[0]

    def _put_baseline_state(self, conn: Connection, model: str, state: Any) -> None:
        row = {"model": model, "key": BASELINE_STATE, "version": None, "value": state,
               "updated_at": utcnow()}  # fmt: skip
        self._upsert(conn, t.model_state, [row], ["model", "key"], replace=True)

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


def _up_to(found: Sequence[Any], rows: int) -> list[Any]:
    """The first segments of ``found`` holding at most ``rows`` rows (at least one)."""
    out: list[Any] = []
    total = 0
    for seg in found:
        if out and total + seg.n_rows > rows:
            break
        out.append(seg)
        total += seg.n_rows
    return out


def _raw(col: Any) -> Any:
    """A timestamp as the driver returns it (text on SQLite): the folder parses a whole chunk
    at once, far faster than row by row."""
    return type_coerce(col, String).label(col.name)

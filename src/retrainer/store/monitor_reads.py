"""The predictions above the monitor's watermark in id ranges, each folded by any process (a
Dask worker).

The monitor of a ``training.engine: dask`` model folds the prediction log on the workers
(:mod:`retrainer.lifecycle.dask_monitor`): :func:`plan_prediction_ranges` cuts the
predictions above the watermark into ranges of ids from one query (a row per ``chunk``
predictions of the model; no prediction fetched), and :func:`fold_prediction_range` reads one
range from the store by its URL and folds it with the monitor's prediction folder; the
buckets and the new watermark go in with
:meth:`~retrainer.store.monitor_store.MonitorStore.add_folded_predictions`.

>>> import pathlib, tempfile
>>> from datetime import datetime
>>> from retrainer.store import SqlStore
>>> from retrainer.store.predlog import request_record
>>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 's.db'}"
>>> store = SqlStore(url)
>>> _ = store.log_predictions([request_record("m", "r", "1.0.0", "champion",
...     datetime(2026, 1, 1), '{"rows": []}', [None] * 5, [0] * 5, [0.5] * 5)])
>>> plan_prediction_ranges(store, "m", above=0, chunk=2)
[(0, 2), (2, 4), (4, 5)]
>>> len(fold_prediction_range(url, "m", (2, 4), lambda rows: list(rows)))
2
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from . import schema as t
from .base import StoreBase
from .engine import make_engine
from .monitor_store import FOLD_CHUNK, _raw

if TYPE_CHECKING:
    from sqlalchemy import Engine


def plan_prediction_ranges(
    store: StoreBase, model: str, above: int, chunk: int | None = None
) -> list[tuple[int, int]]:
    """``model``'s predictions with id > ``above`` as ranges ``(after, upto]`` of ``chunk``
    (None: FOLD_CHUNK, a local fold's transaction) predictions each (the last may hold
    fewer), in id order."""
    chunk = FOLD_CHUNK if chunk is None else chunk
    p = t.predictions.c
    ranked = (
        select(p.id, _row_number(p.id).label("rn")).where(p.model == model, p.id > above).subquery()
    )
    last = select(ranked.c.id).where(ranked.c.rn % chunk == 0).order_by(ranked.c.id)
    top = select(p.id).where(p.model == model, p.id > above).order_by(p.id.desc()).limit(1)
    with store.read() as conn:
        ends = [int(r[0]) for r in conn.execute(last)]
        newest = conn.execute(top).scalar()
    if newest is None:
        return []
    if not ends or ends[-1] != newest:
        ends.append(int(newest))
    return list(zip([above, *ends[:-1]], ends, strict=True))


def _row_number(order: Any) -> Any:
    from sqlalchemy import func

    return func.row_number().over(order_by=order)


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    return make_engine(url)


def fold_prediction_range(
    url: str,
    model: str,
    ids: tuple[int, int],
    fold: Callable[[Sequence[Any]], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """``fold`` of ``model``'s predictions with ids in ``(ids[0], ids[1]]``, read from the
    store at ``url``: the rows ``fold_monitor`` gives its prediction folder (id, version, arm,
    created_at as the driver returns it, proba)."""
    p = t.predictions.c
    q = (
        select(p.id, p.version, p.arm, _raw(p.created_at), p.proba)
        .where(p.model == model, p.id > ids[0], p.id <= ids[1])
        .order_by(p.id)
    )
    with _engine(url).connect() as conn:
        rows = conn.execute(q).cursor.fetchall()
    return fold(rows)

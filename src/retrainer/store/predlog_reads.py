"""The prediction log's inputs of a window in ranges, each read by any process (a Dask worker).

A drift check on the Dask engine reads the window's logged inputs on the workers.
:func:`plan_input_ranges` cuts the window into :class:`InputRange` from metadata only (one
query of positions, keys and batch sizes; no input bodies), and :func:`read_input_range`
reads one range from the store by its URL (once per process: the engine is kept, as in
:mod:`.segment_reads`). A range starts where a frame of
:meth:`~retrainer.store.predlog.PredictionFeatures.iter_prediction_features` starts (every
``FETCH`` inputs from the window's start, and around each Parquet batch) and is read in
pages that end where its pages end, so its frames are the local read's frames: the same
pandas dtypes, the same values.

>>> import pathlib, tempfile
>>> from datetime import datetime
>>> from retrainer.store import SqlStore
>>> from retrainer.store.predlog import request_record
>>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 's.db'}"
>>> store = SqlStore(url)
>>> _ = store.log_predictions([request_record("m", f"r{i}", "1.0.0", "champion",
...     datetime(2026, 1, 1, 0, i), '{"row": {"x": %d}}' % i, [None], [0]) for i in range(5)])
>>> ranges = plan_input_ranges(store, "m", None, None, fetch=2, budget=1)
>>> [(r.offset, r.inputs) for r in ranges]
[(0, 2), (2, 2), (4, 1)]
>>> [f["x"].tolist() for f in read_input_range(url, "m", None, None, ranges[1], fetch=2)]
[[2, 3]]
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from . import schema as t
from .base import StoreBase
from .engine import make_engine
from .predlog import page_frames

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import ColumnElement, Engine

FETCH = 1_000  # inputs per page: iter_prediction_features' default ``chunk``
JSON_INPUT_BYTES = 1_024  # what one JSON input counts for in a range's budget
BUDGET_BYTES = 8 << 20  # a range closes once its inputs count for this much


@dataclass(frozen=True)
class InputRange:
    """Inputs ``start`` <= (created_at, key) < ``end`` (None: to the window's end) of a
    window; ``offset``: the position of the first in the window (pages end every FETCH
    inputs from the window's start); ``inputs``: how many."""

    start: tuple[datetime, str]
    end: tuple[datetime, str] | None
    offset: int
    inputs: int


def _window(model: str, since: datetime | None, until: datetime | None) -> list[Any]:
    c = t.prediction_inputs.c
    where: list[Any] = [c.model == model]
    if since is not None:
        where.append(c.created_at >= since)
    if until is not None:
        where.append(c.created_at <= until)
    return where


def plan_input_ranges(
    store: StoreBase,
    model: str,
    since: datetime | None,
    until: datetime | None,
    *,
    fetch: int = FETCH,
    budget: int | None = None,
) -> list[InputRange]:
    """The window's inputs cut into ranges of about ``budget`` bytes each (a JSON input
    counts for JSON_INPUT_BYTES, a Parquet batch for its size), cut only where a frame
    starts (``budget`` None: BUDGET_BYTES). One query, which returns a row per ``fetch``
    inputs and per Parquet batch."""
    budget = BUDGET_BYTES if budget is None else budget
    c = t.prediction_inputs.c
    order = (c.created_at, c.key)
    batch = c.data.is_not(None)
    inner = (
        select(
            c.created_at,
            c.key,
            batch.label("batch"),
            func.coalesce(func.length(c.data), 0).label("size"),
            func.row_number().over(order_by=order).label("rn"),
            func.lag(batch).over(order_by=order).label("after_batch"),
            func.count().over().label("total"),
        )
        .where(*_window(model, since, until))
        .subquery()
    )
    q = (
        select(
            inner.c.rn, inner.c.created_at, inner.c.key, inner.c.batch, inner.c.size, inner.c.total
        )
        .where(
            or_(
                (inner.c.rn - 1) % fetch == 0,
                inner.c.batch.is_(True),
                inner.c.after_batch.is_(True),
            )
        )
        .order_by(inner.c.rn)
    )
    with store.read() as conn:
        starts = conn.execute(q).all()
    if not starts:
        return []
    total = int(starts[0].total)
    cuts: list[int] = [0]  # indexes into starts where a range begins
    cost = 0
    for i, s in enumerate(starts):
        if cost >= budget:
            cuts.append(i)
            cost = 0
        upto = int(starts[i + 1].rn) if i + 1 < len(starts) else total + 1
        cost += int(s.size) if s.batch else (upto - int(s.rn)) * JSON_INPUT_BYTES
    out = []
    for j, i in enumerate(cuts):
        first = starts[i]
        nxt = starts[cuts[j + 1]] if j + 1 < len(cuts) else None
        end = None if nxt is None else (nxt.created_at, nxt.key)
        upto = total + 1 if nxt is None else int(nxt.rn)
        out.append(
            InputRange((first.created_at, first.key), end, int(first.rn) - 1, upto - int(first.rn))
        )
    return out


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    return make_engine(url)


def _after(key: tuple[datetime, str], strict: bool) -> ColumnElement[bool]:
    c = t.prediction_inputs.c
    tie = c.key > key[1] if strict else c.key >= key[1]
    return or_(c.created_at > key[0], and_(c.created_at == key[0], tie))


def read_input_range(
    url: str,
    model: str,
    since: datetime | None,
    until: datetime | None,
    part: InputRange,
    *,
    fetch: int = FETCH,
) -> Iterator[pd.DataFrame]:
    """The frames of range ``part`` of ``model``'s window, read from the store at ``url``
    (see the module docstring): each page's JSON inputs as one frame, each Parquet batch
    as its own, as the local read gives them."""
    c = t.prediction_inputs.c
    where = [*_window(model, since, until), _after(part.start, strict=False)]
    if part.end is not None:
        where.append(~_after(part.end, strict=False))
    position, after = part.offset, None
    while True:
        q = select(c.created_at, c.key, c.body, c.data).where(*where)
        if after is not None:
            q = q.where(_after(after, strict=True))
        size = fetch - position % fetch  # the page ends where the local read's page ends
        with _engine(url).connect() as conn:
            found = conn.execute(q.order_by(c.created_at, c.key).limit(size)).all()
        if not found:
            return
        after, position = (found[-1][0], found[-1][1]), position + len(found)
        yield from page_frames([(r[2], r[3]) for r in found])

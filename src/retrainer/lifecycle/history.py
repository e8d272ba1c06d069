"""Recent rows of each entity for a sequence model (the ``lstm`` family): what a prediction
prepends to the rows it scores so that each row's window holds its entity's history.

A sequence model scores each row from the ``lookback`` earlier rows of its entity (the value
of its ``entity`` feature; one sequence when it has none) in the frame it is given. A batch
predict gives it, in time order, the newest stored training rows of each entity in the batch
from before the batch's first time (:func:`stored_history`), then the batch's own rows; the
server gives it the newest stored rows of each entity in the request (cached per entity with a
bound, :class:`HistoryCache`), then the request's rows in their order. A row whose entity has
no earlier row anywhere is a cold start: it is scored from itself alone (the model learnt
that case in training) and reported with ``cold_start: true``.

>>> import pandas as pd
>>> seq = arrange("shop", pd.DataFrame({"shop": ["a", "b", "a"], "x": [1, 2, 3]}),
...               pd.DataFrame({"shop": ["b"], "x": [0]}), ["shop", "x"], None)
>>> seq.frame["x"].tolist(), seq.rows.tolist(), seq.cold_start.tolist()
([0, 1, 2, 3], [1, 2, 3], [True, False, False])
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..families.lstm_config import group_keys, history_windows
from ..families.schema import level
from ..plumbing.workspace import Workspace
from ..store.rows import META, ROWS
from .ingest import parse_times

KEY = "__entity"  # the entity's level, a helper column of stored_history's frame


class SequenceModel(Protocol):
    """What a prediction needs of a sequence model (``LSTMModel``)."""

    numeric: list[str]
    categorical: list[str]

    @property
    def lookback(self) -> int: ...

    @property
    def entity(self) -> str | None: ...


def as_sequence(model: Any) -> SequenceModel | None:
    """The model when it scores rows from their entity's history, else None."""
    return model if getattr(model, "sequence", False) else None


def _levels(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if v is None or v != v else level(v))


def stored_history(
    ws: Workspace,
    model: str,
    entity: str | None,
    values: Sequence[str],
    *,
    limit: int,
    columns: Sequence[str],
    before: datetime | None = None,
) -> pd.DataFrame:
    """The newest ``limit`` stored training rows of each entity (``values``: levels of the
    ``entity`` column; with no entity column, of the one sequence) strictly before
    ``before`` (naive UTC; None: the newest), oldest first, with the entity's level in a
    ``__entity`` column. Segments are read newest first, only ``columns``, and the read stops
    once every entity has ``limit`` rows newer than any unread segment."""
    wanted = {""} if entity is None else set(values)
    empty = pd.DataFrame(columns=[*META, *columns, KEY])
    if not wanted or limit < 1:
        return empty
    found = ws.store.segments(model, ROWS, end=before)
    found.sort(key=lambda s: (s.max_time is None, s.max_time), reverse=True)
    filters = None if before is None else [("event_time", "<", before)]
    cols = list(dict.fromkeys([*META, *columns]))
    parts: list[pd.DataFrame] = []
    cutoff: Any = None
    for seg, table in ws.store.iter_segment_tables(found, columns=cols, filters=filters):
        if cutoff is not None and seg.max_time is not None and seg.max_time < cutoff:
            break
        part = table.to_pandas()
        part[KEY] = "" if entity is None else _levels(part[entity])
        part = part[part[KEY].isin(wanted)]
        if part.empty:
            continue
        parts.append(part)
        cutoff = _cutoff(pd.concat(parts, ignore_index=True), wanted, limit)
    if not parts:
        return empty
    frame = pd.concat(parts, ignore_index=True).sort_values("event_time", kind="stable")
    return frame.groupby(KEY, sort=False).tail(limit).reset_index(drop=True)


def _cutoff(frame: pd.DataFrame, wanted: set[str], limit: int) -> Any:
    """The oldest of each entity's ``limit``-th newest time, once every entity has that many
    (an unread segment wholly older cannot change the answer); else None."""
    counts = frame[KEY].value_counts()
    if len(counts) < len(wanted) or counts.min() < limit:
        return None
    nth = frame.groupby(KEY)["event_time"].nlargest(limit).groupby(level=0).min()
    return nth.min().to_pydatetime()


@dataclass(frozen=True)
class SequenceInput:
    """History rows then the rows to score (in time order): what the model scores."""

    frame: pd.DataFrame
    rows: np.ndarray  # where each row to score (in its given order) sits in ``frame``
    cold_start: np.ndarray  # per row to score: its entity has no earlier row at all

    def pick(self, labels: list[Any], proba: np.ndarray | None) -> tuple[list[Any], Any]:
        """The outputs of the rows to score, from those of the whole frame."""
        return [labels[i] for i in self.rows], None if proba is None else proba[self.rows]


def arrange(
    entity: str | None,
    df: pd.DataFrame,
    history: pd.DataFrame,
    columns: Sequence[str],
    time_column: str | None,
) -> SequenceInput:
    """``history`` (oldest first) then ``df``'s rows, sorted by ``time_column`` when it is
    there (stable: rows of one time keep their order), else in their given order."""
    n = len(df)
    order = np.arange(n)
    if time_column is not None and time_column in df.columns:
        times = parse_times(df[time_column]).to_numpy(dtype="datetime64[ns]")
        order = np.argsort(times, kind="stable")
    cols = list(columns)
    past = history.reindex(columns=cols)
    now = df.iloc[order].reindex(columns=cols)
    frame = now.reset_index(drop=True) if past.empty else pd.concat([past, now], ignore_index=True)
    rows = np.empty(n, dtype=np.int64)
    rows[order] = len(past) + np.arange(n)
    if entity is None:
        keys = np.zeros(len(frame))
    else:
        codes, _ = pd.factorize(_levels(frame[entity]), use_na_sentinel=True)
        keys = group_keys(np.where(codes < 0, np.nan, codes.astype(np.float64)))
    previous = history_windows(keys, 1)[:, 0]
    return SequenceInput(frame, rows, previous[rows] == len(frame))


def sequence_input(
    ws: Workspace, model: str, seq: SequenceModel, df: pd.DataFrame
) -> SequenceInput:
    """A batch's rows after the stored history of its entities from before its first time
    (the newest stored rows when it has no time column)."""
    spec = ws.model_spec(model)
    columns = [*seq.numeric, *seq.categorical]
    before = None
    if spec.time_column in df.columns and len(df):
        first = parse_times(df[spec.time_column]).min()
        before = None if pd.isna(first) else first.tz_localize(None).to_pydatetime()
    values: list[str] = []
    if seq.entity is not None and seq.entity in df.columns:
        values = sorted({v for v in _levels(df[seq.entity]) if v is not None})
    history = stored_history(
        ws, model, seq.entity, values, limit=seq.lookback, columns=columns, before=before
    )
    return arrange(seq.entity, df, history, columns, spec.time_column)


class HistoryCache:
    """The newest stored rows of recently asked entities, for the server: at most
    ``max_entities`` entities (least recently used go first), each kept ``ttl_s`` seconds
    (rows ingested since are seen after that). Thread-safe."""

    def __init__(self, max_entities: int = 10_000, ttl_s: float = 30.0) -> None:
        self.max_entities = max_entities
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._rows: OrderedDict[tuple[Any, ...], tuple[float, pd.DataFrame]] = OrderedDict()

    def history(
        self, ws: Workspace, model: str, seq: SequenceModel, df: pd.DataFrame
    ) -> pd.DataFrame:
        """The stored history (oldest first) of the entities of ``df``'s rows."""
        columns = [*seq.numeric, *seq.categorical]
        if seq.entity is None:
            values = [""]
        elif seq.entity in df.columns:
            values = sorted({v for v in _levels(df[seq.entity]) if v is not None})
        else:
            values = []
        now = time.monotonic()
        shape = (model, seq.lookback, tuple(columns))  # a new champion may read other rows
        found: dict[str, pd.DataFrame] = {}
        with self._lock:
            for v in values:
                hit = self._rows.get((*shape, v))
                if hit is not None and now - hit[0] < self.ttl_s:
                    self._rows.move_to_end((*shape, v))
                    found[v] = hit[1]
        missing = [v for v in values if v not in found]
        if missing:
            fresh = stored_history(
                ws, model, seq.entity, missing, limit=seq.lookback, columns=columns
            )
            groups = dict(tuple(fresh.groupby(KEY, sort=False)))
            with self._lock:
                for v in missing:
                    found[v] = groups.get(v, fresh.iloc[:0])
                    self._rows[(*shape, v)] = (now, found[v])
                    self._rows.move_to_end((*shape, v))
                while len(self._rows) > self.max_entities:
                    self._rows.popitem(last=False)
        if not found:
            return pd.DataFrame(columns=[*META, *columns, KEY])
        frame = pd.concat(list(found.values()), ignore_index=True)
        return frame.sort_values("event_time", kind="stable", ignore_index=True)

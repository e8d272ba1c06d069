"""The previous actual as an input of a regression: the newest actual known before a row.

Where the target moves slowly (a daily average, a level), the best single predictor of the
next actual is often the last one: the monitor's ``naive:last`` baseline measures it. A full
retrain may try it as an input (``training.choice.previous_actual``): the candidate learns
from one more numeric column, :data:`PREVIOUS`, and is chosen only when it beats the
candidate without it on the holdout beyond chance (:mod:`.choice`). A version that learnt it
lists it in its feature schema, and every path that scores rows fills it from the store, so
that a client never sends it:

- a training frame (and the gate's holdout, the choice's candidates): each row's previous
  actual is that of the newest row of an earlier time in the frame (:func:`add_previous`);
- a batch prediction: the newest stored actual of an earlier time than each row's, read from
  the store's rows between the batch's times and the newest one before them
  (:func:`stored_previous`);
- the REST server: the newest stored actual, cached per model for a few seconds
  (:class:`PreviousCache`);
- a replay: the stored actuals and those of the replayed rows whose actual arrived before the
  row was scored (each row's time plus the replay's delay).

It is the stream's previous actual (the newest of any entity), the ``naive:last`` baseline of
a stream whose ids do not repeat. A row with no earlier actual gets a missing value, which
every family that handles missing values learns. Regression only, from the store only (a
model whose rows come from ``data.source`` parquet or sql never tries it), and never for a
sequence family (``lstm``), which reads its rows' history itself.

>>> import pandas as pd
>>> f = pd.DataFrame({"event_time": pd.to_datetime(["2024-01-01", "2024-01-02",
...     "2024-01-02", "2024-01-03"]), "target": [1.0, 2.0, 3.0, 4.0]})
>>> add_previous(f)[PREVIOUS].tolist()  # rows of one time share the time before's last
[nan, 1.0, 1.0, 3.0]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..core.feature_sets import PREVIOUS_ACTUAL

if TYPE_CHECKING:
    from ..core.spec import ModelSpec
    from ..families import FamilyModel
    from ..plumbing.workspace import Workspace

PREVIOUS = PREVIOUS_ACTUAL  # the input's column; a spec cannot name a column so


def newest_before(at: Any, known_at: Any, *, strict: bool = True) -> np.ndarray:
    """For each time of ``at``, the position of the newest time of ``known_at`` (sorted)
    before it (``strict``; else at or before it), -1 where none is. One binary search per row.

    >>> t = pd.to_datetime(["2024-01-02", "2024-01-05"]).to_numpy()
    >>> newest_before(t, pd.to_datetime(["2024-01-01", "2024-01-02"]).to_numpy()).tolist()
    [0, 1]
    >>> newest_before(t[:1], t[:1]).tolist(), newest_before(t[:1], t[:1], strict=False).tolist()
    ([-1], [0])
    """
    side: Literal["left", "right"] = "left" if strict else "right"
    return np.searchsorted(np.asarray(known_at), np.asarray(at), side=side).astype(np.int64) - 1


def asof(at: Any, known_at: Any, values: Any, *, strict: bool = True) -> np.ndarray:
    """The value of :func:`newest_before` for each time of ``at``; NaN where none is.

    >>> t = pd.to_datetime(["2024-01-02", "2024-01-05"]).to_numpy()
    >>> asof(t, t, [7.0, 8.0]).tolist()
    [nan, 7.0]
    """
    idx = newest_before(at, known_at, strict=strict)
    vals = np.asarray(values, dtype=np.float64)
    out = np.full(len(idx), np.nan)
    out[idx >= 0] = vals[idx[idx >= 0]]
    return out


def _sorted(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) of a frame of ``event_time`` and ``target``, in time order."""
    at = pd.to_datetime(frame["event_time"], utc=True).dt.tz_localize(None)
    at = at.to_numpy(dtype="datetime64[ns]")
    values = pd.to_numeric(frame["target"], errors="coerce").to_numpy(np.float64)
    order = np.argsort(at, kind="stable")
    return at[order], values[order]


def add_previous(frame: pd.DataFrame, before: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame`` (time-ordered labelled rows: ``event_time``, ``target``) with each row's
    previous actual in :data:`PREVIOUS`, set in place; ``before``: older rows (the newest
    stored row before the frame's first), whose actual the first rows see."""
    known = frame if before is None or before.empty else pd.concat([before, frame])
    at, values = _sorted(known[["event_time", "target"]])
    times = pd.to_datetime(frame["event_time"]).to_numpy(dtype="datetime64[ns]")
    frame[PREVIOUS] = asof(times, at, values)
    return frame


def with_previous_column(
    ws: Workspace, spec: ModelSpec, frame: pd.DataFrame, *, oldest: bool = False
) -> pd.DataFrame:
    """A regression's stored training rows (``frame``, time-ordered) with :data:`PREVIOUS`
    (see :func:`add_previous`; the first rows see the newest stored row before them, read
    unless ``oldest``: the frame starts at the oldest stored row): what every training and
    gate scores versions on. Other frames as they are."""
    from .history import stored_history

    if spec.task != "regression" or frame.empty or "target" not in frame.columns:
        return frame
    if oldest:
        return add_previous(frame)
    first = pd.Timestamp(frame["event_time"].iloc[0]).to_pydatetime()
    before = stored_history(ws, spec.name, None, [""], limit=1, columns=[], before=first)
    return add_previous(frame, before[["event_time", "target"]])


def uses_previous(model: FamilyModel) -> bool:
    """Whether ``model`` learnt the previous actual as an input."""
    return PREVIOUS in getattr(model, "numeric", ())


def with_previous(spec: ModelSpec) -> ModelSpec:
    """``spec`` whose active features add :data:`PREVIOUS` (numeric): what the candidate,
    and every fit after it was chosen, trains on."""
    from ..core import feature_sets

    active = feature_sets.active(spec)
    if PREVIOUS in active.numeric:
        return spec
    grown = active.model_copy(update={"numeric": [*active.numeric, PREVIOUS]})
    name = feature_sets.chosen_name(spec)
    if name is None:
        return spec.model_copy(update={"features": grown})
    return spec.model_copy(update={"feature_sets": {**spec.feature_sets, name: grown}})


def can_try(spec: ModelSpec) -> bool:
    """Whether a full retrain of ``spec`` may try the previous actual (see the module)."""
    return (
        spec.task == "regression"
        and spec.training.choice.previous_actual
        and spec.data.source == "store"
    )


def _times(spec: ModelSpec, df: pd.DataFrame) -> np.ndarray | None:
    """The rows' times (naive UTC, datetime64), or None when the frame has no time column."""
    from .ingest import parse_times

    if spec.time_column not in df.columns or df.empty:
        return None
    parsed = parse_times(df[spec.time_column])
    if parsed.isna().any():
        return None
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def stored_previous(
    ws: Workspace,
    spec: ModelSpec,
    df: pd.DataFrame,
    pending: pd.DataFrame | None = None,
    delay: timedelta | None = None,
) -> np.ndarray:
    """Each row's previous actual from the store: the newest stored actual of a time before
    the row's (of all, for rows without a time). ``pending`` (``event_time``, ``target``):
    actuals not stored yet that arrive ``delay`` after their time (a replay's); a row sees
    those that arrived by its time. Reads the newest stored row before the first time and
    the stored rows between the first and the last time: bounded by the batch's span."""
    from .history import stored_history

    times = _times(spec, df)
    first = None if times is None else pd.Timestamp(times.min()).to_pydatetime()
    newest = stored_history(ws, spec.name, None, [""], limit=1, columns=[], before=first)
    known = [newest[["event_time", "target"]]]
    if times is not None:
        last = pd.Timestamp(times.max()).to_pydatetime()
        within = ws.store.training_frame(spec.name, start=first, end=last, columns=[])
        if len(within):
            known.append(within[["event_time", "target"]])
    stored_at, stored_v = _sorted(pd.concat([k for k in known if len(k)] or known))
    if times is None:
        return np.full(len(df), stored_v[-1] if len(stored_v) else np.nan)
    out = asof(times, stored_at, stored_v)
    if pending is None or not len(pending):
        return out
    # a pending actual is seen by a row once it arrived (its time plus ``delay``), and only
    # by rows of a later time; it replaces the stored one when newer
    lag = np.timedelta64(delay or timedelta(0))
    p_at, p_v = _sorted(pending)
    idx = newest_before(times - lag, p_at, strict=lag == np.timedelta64(0))
    idx = np.where(idx >= 0, np.minimum(idx, newest_before(times, p_at)), -1)
    s_idx = newest_before(times, stored_at)
    newer = idx >= 0
    if len(stored_at):  # and newer than the stored one, where a stored one is
        fresher = p_at[np.maximum(idx, 0)] >= stored_at[np.maximum(s_idx, 0)]
        newer &= (s_idx < 0) | fresher
    out[newer] = p_v[idx[newer]]
    return out


def fill_previous(
    ws: Workspace,
    spec: ModelSpec,
    model: FamilyModel,
    df: pd.DataFrame,
    pending: pd.DataFrame | None = None,
    delay: timedelta | None = None,
) -> pd.DataFrame:
    """``df`` with :data:`PREVIOUS` filled from the store when ``model`` learnt it (a copy);
    ``df`` itself otherwise."""
    if not uses_previous(model):
        return df
    out = df.copy()
    out[PREVIOUS] = stored_previous(ws, spec, df, pending, delay)
    return out


class PreviousCache:
    """The newest stored actual per model, for the server: read at most once per ``ttl_s``
    seconds per model (actuals stored since are seen after that). Thread-safe."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, float | None]] = {}

    def newest(self, ws: Workspace, model: str) -> float | None:
        """The newest stored actual of ``model`` (None when it has none)."""
        from .history import stored_history

        now = time.monotonic()
        with self._lock:
            hit = self._values.get(model)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        newest = stored_history(ws, model, None, [""], limit=1, columns=[])
        value = None
        if len(newest):
            v = pd.to_numeric(newest["target"], errors="coerce").iloc[-1]
            value = None if pd.isna(v) else float(v)
        with self._lock:
            self._values[model] = (now, value)
        return value

    def fill(self, ws: Workspace, model: str, rows: Sequence[Any]) -> list[Any]:
        """The request's rows with :data:`PREVIOUS` set to the newest stored actual (each
        row a new dict; a row that is not an object is left for the codec to name)."""
        value = self.newest(ws, model)
        return [{**r, PREVIOUS: value} if isinstance(r, dict) else r for r in rows]

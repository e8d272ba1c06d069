"""Inputs made from a row's place in time: the previous actual, the previous row's numeric
features, the day of the year.

Where a target moves slowly (a daily average, a level), the best single predictor of the next
actual is often the last one: the monitor's ``naive:last`` baseline measures it. Where today
follows from yesterday (the weather), the previous row's features and the season say more
than the row alone. A full retrain may try them as inputs (``training.choice.previous_actual``
and ``training.choice.time_features``, :mod:`.choice`): a candidate learns from more numeric
columns, and is chosen only when it beats the candidate without them on the holdout beyond
chance. A version that learnt them lists them in its feature schema (:class:`TimeInputs`
reads them back), and every path that scores rows fills them, so a client never sends them:

- :data:`PREVIOUS`: the actual of the newest row of an earlier time (a class label as a
  number: a classification model whose labels are not numbers skips it);
- ``__previous:<feature>``: that row's value of each numeric feature;
- :data:`DAY_SIN`, :data:`DAY_COS`: the day of the year of the row's own time, as a point on
  a circle (31 December is next to 1 January).

Where the previous row comes from:

- a training frame (and the gate's holdout, the choice's candidates): the frame's rows, the
  first ones seeing the newest stored row before the frame (:func:`with_time_inputs`);
- a batch prediction: the newest stored row of an earlier time than each row's, read from the
  store's rows between the batch's times and the newest one before them
  (:func:`stored_inputs`);
- the REST server: the newest stored row, cached per model for a few seconds
  (:class:`NewestRowCache`); the day of the year is the row's time when it has one, else now;
- a replay: the stored rows and those of the replayed rows whose actual arrived before the
  row was scored (each row's time plus the replay's delay).

It is the stream's previous row (the newest of any entity), the ``naive:last`` baseline of a
stream whose ids do not repeat. A row with no earlier row gets missing values, which every
family that handles missing values learns. Rows from the store only (a model whose rows come
from ``data.source`` parquet or sql never tries them), and never for a sequence family
(``lstm``), which reads its rows' history itself.

>>> import pandas as pd
>>> f = pd.DataFrame({"event_time": pd.to_datetime(["2024-01-01", "2024-01-02",
...     "2024-01-02", "2024-01-03"]), "target": [1.0, 2.0, 3.0, 4.0], "x": [5, 6, 7, 8]})
>>> out = add_inputs(f, TimeInputs(True, ("x",), True))
>>> out[PREVIOUS].tolist()  # rows of one time share the time before's last
[nan, 1.0, 1.0, 3.0]
>>> out["__previous:x"].tolist(), out[DAY_COS].round(3).tolist()
([nan, 5.0, 5.0, 7.0], [1.0, 1.0, 1.0, 0.999])
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..core.feature_sets import DAY_COS, DAY_SIN, PREVIOUS_ACTUAL, PREVIOUS_PREFIX

if TYPE_CHECKING:
    from ..core.spec import ModelSpec
    from ..families import FamilyModel
    from ..plumbing.workspace import Workspace

PREVIOUS = PREVIOUS_ACTUAL  # the previous actual's column; a spec cannot name a column so
YEAR_DAYS = 365.2425


def previous_name(feature: str) -> str:
    """The column of the previous row's value of ``feature``.

    >>> previous_name("humidity")
    '__previous:humidity'
    """
    return f"{PREVIOUS_PREFIX}{feature}"


@dataclass(frozen=True)
class TimeInputs:
    """Which inputs made from time a model learns (or a frame holds): the previous actual,
    the previous row's values of ``previous_row`` (numeric features), the day of the year."""

    previous_actual: bool = False
    previous_row: tuple[str, ...] = ()
    calendar: bool = False

    @property
    def columns(self) -> list[str]:
        """The columns, in the order a model lists them (after the spec's features)."""
        out = [PREVIOUS] if self.previous_actual else []
        out += [previous_name(f) for f in self.previous_row]
        return out + ([DAY_SIN, DAY_COS] if self.calendar else [])

    @property
    def features(self) -> bool:
        """Whether these are the time features (the previous row and the day of the year)."""
        return bool(self.previous_row) or self.calendar

    def __or__(self, other: TimeInputs) -> TimeInputs:
        row = tuple(dict.fromkeys([*self.previous_row, *other.previous_row]))
        return TimeInputs(
            self.previous_actual or other.previous_actual, row, self.calendar or other.calendar
        )

    @classmethod
    def of_columns(cls, numeric: Sequence[str]) -> TimeInputs:
        """The inputs a model's numeric columns name (none for a plain model).

        >>> TimeInputs.of_columns(["x", "__previous:x", "__day_of_year_sin"]).columns
        ['__previous:x', '__day_of_year_sin', '__day_of_year_cos']
        """
        row = tuple(c[len(PREVIOUS_PREFIX) :] for c in numeric if c.startswith(PREVIOUS_PREFIX))
        return cls(PREVIOUS in numeric, row, DAY_SIN in numeric)


def of_model(model: FamilyModel) -> TimeInputs:
    """The time inputs ``model`` learnt (none when it learnt only the spec's features)."""
    return TimeInputs.of_columns(list(getattr(model, "numeric", ())))


def uses_time_inputs(model: FamilyModel) -> bool:
    """Whether ``model`` learnt any input made from time."""
    return bool(of_model(model).columns)


def with_inputs(spec: ModelSpec, inputs: TimeInputs) -> ModelSpec:
    """``spec`` whose active features add ``inputs``' columns (numeric): what the candidate,
    and every fit after it was chosen, trains on."""
    from ..core import feature_sets

    active = feature_sets.active(spec)
    extra = [c for c in inputs.columns if c not in active.numeric]
    if not extra:
        return spec
    grown = active.model_copy(update={"numeric": [*active.numeric, *extra]})
    name = feature_sets.chosen_name(spec)
    if name is None:
        return spec.model_copy(update={"features": grown})
    return spec.model_copy(update={"feature_sets": {**spec.feature_sets, name: grown}})


def to_try(spec: ModelSpec) -> tuple[TimeInputs, TimeInputs]:
    """The previous actual and the time features a full retrain of ``spec`` may try (each
    empty when it may not: see the module and ``training.choice``)."""
    choice = spec.training.choice
    if spec.data.source != "store":  # the inputs are read from the store's rows only
        return TimeInputs(), TimeInputs()
    actual = TimeInputs(previous_actual=choice.previous_actual)
    numeric = tuple(spec.active_features.numeric)
    features = TimeInputs(previous_row=numeric, calendar=True)
    return actual, features if choice.time_features else TimeInputs()


def calendar(times: Any) -> tuple[np.ndarray, np.ndarray]:
    """The day of the year of each time (datetime64) as (sine, cosine) of its angle.

    >>> s, c = calendar(pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-02"]).to_numpy())
    >>> s.round(1).tolist(), c.round(1).tolist()
    ([0.0, 1.0, -0.0], [1.0, 0.0, -1.0])
    """
    at = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    days = (at - at.to_period("Y").start_time).to_numpy(dtype="timedelta64[s]")
    angle = 2 * np.pi * days.astype(np.float64) / (YEAR_DAYS * 86400)
    return np.sin(angle), np.cos(angle)


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


def _naive_times(values: Any) -> np.ndarray:
    """Times as naive UTC datetime64[ns] (aware ones converted)."""
    return (
        pd.to_datetime(pd.Series(values), utc=True)
        .dt.tz_localize(None)
        .to_numpy(dtype="datetime64[ns]")
    )


def _in_time_order(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame``'s rows sorted by ``event_time`` (stable), and those times."""
    at = _naive_times(frame["event_time"])
    order = np.argsort(at, kind="stable")
    return frame.iloc[order], at[order]


def _newest_row(
    ws: Workspace, model: str, columns: Sequence[str], before: datetime | None = None
) -> pd.DataFrame:
    """The newest stored row of ``model`` strictly before ``before`` (None: of all), with
    ``columns`` besides its time and actual; empty when there is none."""
    from .history import stored_history

    return stored_history(ws, model, None, [""], limit=1, columns=columns, before=before)


def _sources(inputs: TimeInputs) -> list[str]:
    """The stored columns the previous row's inputs are taken from (``target`` first)."""
    return (["target"] if inputs.previous_actual else []) + list(inputs.previous_row)


def _gather(known: pd.DataFrame, idx: np.ndarray, inputs: TimeInputs) -> dict[str, np.ndarray]:
    """The previous-row columns of ``inputs`` for rows whose previous row is ``known``'s
    row ``idx`` (-1: none, a missing value)."""
    out: dict[str, np.ndarray] = {}
    found = idx >= 0
    for source in _sources(inputs):
        values = pd.to_numeric(known[source], errors="coerce").to_numpy(np.float64)
        col = np.full(len(idx), np.nan)
        col[found] = values[idx[found]]
        out[PREVIOUS if source == "target" else previous_name(source)] = col
    return out


def add_inputs(
    frame: pd.DataFrame, inputs: TimeInputs, before: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``frame`` (time-ordered labelled rows: ``event_time``, ``target``, the features) with
    ``inputs``' columns, set in place; ``before``: older rows (the newest stored row before
    the frame's first), which the first rows see."""
    if not inputs.columns:
        return frame
    times = _naive_times(frame["event_time"])
    cols = ["event_time", *_sources(inputs)]
    # an older row stored before a feature was added has no value of it: missing
    older = None if before is None or before.empty else before.reindex(columns=cols)
    known, known_at = _in_time_order(
        frame[cols] if older is None else pd.concat([older, frame[cols]])
    )
    for name, values in _gather(known, newest_before(times, known_at), inputs).items():
        frame[name] = values
    if inputs.calendar:
        frame[DAY_SIN], frame[DAY_COS] = calendar(times)
    return frame


def with_time_inputs(
    ws: Workspace, spec: ModelSpec, frame: pd.DataFrame, inputs: TimeInputs
) -> pd.DataFrame:
    """Stored training rows (``frame``, time-ordered) with ``inputs``' columns (see
    :func:`add_inputs`; the first rows see the newest stored row before them): what a
    training and its gate score versions on."""
    if frame.empty or not inputs.columns:
        return frame
    first = pd.Timestamp(frame["event_time"].iloc[0]).to_pydatetime()
    before = _newest_row(ws, spec.name, inputs.previous_row, first)
    return add_inputs(frame, inputs, before if len(before) else None)


def _row_times(spec: ModelSpec, df: pd.DataFrame) -> np.ndarray | None:
    """The rows' times (naive UTC, datetime64), or None when the frame has no time column
    (or a row lacks one)."""
    from .ingest import parse_times

    if spec.time_column not in df.columns or df.empty:
        return None
    parsed = parse_times(df[spec.time_column])
    if parsed.isna().any():
        return None
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def stored_inputs(
    ws: Workspace,
    spec: ModelSpec,
    df: pd.DataFrame,
    inputs: TimeInputs,
    pending: pd.DataFrame | None = None,
    delay: timedelta | None = None,
) -> dict[str, np.ndarray]:
    """``inputs``' columns for ``df``'s rows from the store: the newest stored row of a time
    before each row's (the newest of all, and the day of the year of now, for rows without a
    time). ``pending`` (``event_time``, ``target``, the features): rows not stored yet whose
    actual arrives ``delay`` after their time (a replay's); a row sees those that arrived by
    its time. Reads the newest stored row before the first time and the stored rows between
    the first and the last time: bounded by the batch's span."""
    times = _row_times(spec, df)
    cols = list(inputs.previous_row)
    first = None if times is None else pd.Timestamp(times.min()).to_pydatetime()
    newest = _newest_row(ws, spec.name, cols, first)
    parts = [newest] if len(newest) else []
    if times is not None and _sources(inputs):
        last = pd.Timestamp(times.max()).to_pydatetime()
        within = ws.store.training_frame(spec.name, start=first, end=last, columns=cols)
        if len(within):
            parts.append(within)
    keep = ["event_time", *_sources(inputs)]
    known, known_at = _in_time_order(
        pd.concat([p[keep] for p in parts]) if parts else pd.DataFrame(columns=keep)
    )
    at = times if times is not None else np.full(len(df), np.datetime64("now", "ns"))
    idx = newest_before(at, known_at) if times is not None else np.full(len(df), len(known) - 1)
    out = _gather(known, idx, inputs)
    if pending is not None and len(pending) and times is not None:
        # a pending row is seen once its actual arrived (its time plus ``delay``), and only
        # by rows of a later time; it replaces the stored one when newer
        lag = np.timedelta64(delay or timedelta(0))
        pend, p_at = _in_time_order(pending)
        p_idx = newest_before(times - lag, p_at, strict=lag == np.timedelta64(0))
        p_idx = np.where(p_idx >= 0, np.minimum(p_idx, newest_before(times, p_at)), -1)
        newer = p_idx >= 0
        if len(known_at):  # and newer than the stored one, where a stored one is
            newer &= (idx < 0) | (p_at[np.maximum(p_idx, 0)] >= known_at[np.maximum(idx, 0)])
        for name, values in _gather(pend, p_idx, inputs).items():
            out[name][newer] = values[newer]
    if inputs.calendar:
        out[DAY_SIN], out[DAY_COS] = calendar(at)
    return out


def fill_inputs(
    ws: Workspace,
    spec: ModelSpec,
    model: FamilyModel,
    df: pd.DataFrame,
    pending: pd.DataFrame | None = None,
    delay: timedelta | None = None,
) -> pd.DataFrame:
    """``df`` with the time inputs ``model`` learnt, filled from the store (a copy); ``df``
    itself when it learnt none."""
    inputs = of_model(model)
    if not inputs.columns:
        return df
    out = df.copy()
    for name, values in stored_inputs(ws, spec, df, inputs, pending, delay).items():
        out[name] = values
    return out


class NewestRowCache:
    """The newest stored row per model (its actual and features), for the server: read at
    most once per ``ttl_s`` seconds per model (rows stored since are seen after that).
    Thread-safe."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}

    def newest(self, ws: Workspace, model: str, inputs: TimeInputs) -> dict[str, Any]:
        """The previous-row columns of ``inputs`` from the newest stored row of ``model``
        (None values when it has none)."""
        key = (model, inputs.previous_row)
        now = time.monotonic()
        with self._lock:
            hit = self._rows.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            values = hit[1]
        else:
            newest = _newest_row(ws, model, inputs.previous_row)
            full = TimeInputs(True, inputs.previous_row)
            gathered = _gather(newest, np.array([len(newest) - 1]), full)
            values = {k: None if np.isnan(v[0]) else float(v[0]) for k, v in gathered.items()}
            with self._lock:
                self._rows[key] = (now, values)
        return {k: v for k, v in values.items() if k in inputs.columns}

    def fill(
        self,
        ws: Workspace,
        model: str,
        time_column: str,
        inputs: TimeInputs,
        rows: Sequence[Any],
    ) -> list[Any]:
        """The request's rows with ``inputs``' columns: ``model``'s newest stored row's, and
        the day of the year of each row's time (its ``time_column``; now for a row without
        one). Each row a new dict; a row that is not an object is left for the codec."""
        values = self.newest(ws, model, inputs)
        out = [{**r, **values} if isinstance(r, dict) else r for r in rows]
        if inputs.calendar:
            stamps = [r.get(time_column) if isinstance(r, dict) else None for r in rows]
            at = pd.to_datetime(pd.Series(stamps, dtype=object), utc=True, errors="coerce")
            now = pd.Timestamp.now(tz="UTC").as_unit(at.dt.unit)  # the column's resolution
            at = at.fillna(now).dt.tz_localize(None)
            sin, cos = calendar(at.to_numpy(dtype="datetime64[ns]"))
            for r, s, c in zip(out, sin.tolist(), cos.tolist(), strict=True):
                if isinstance(r, dict):
                    r[DAY_SIN], r[DAY_COS] = s, c
        return out

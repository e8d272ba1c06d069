"""The training window as partitions on a Dask cluster (``training.engine: dask``).

:func:`read_window` lists the window's segments from the store's metadata (no rows) and
builds a ``dask.dataframe`` with one partition per segment (small segments grouped up to
:data:`PARTITION_ROWS` rows): each partition is read by a worker from the store itself
(:func:`retrainer.store.segment_reads.read_segment`), filtered to the window there. The frame
is not kept on the workers: every pass over it (a summary, a column, a fit's matrices) reads
its partitions again, only the columns it needs, so a worker holds one partition's frame at a
time and, during a fit, the float32 matrix of its share (:func:`matrices`). The process that
runs the training gets summaries (:func:`window_facts`, reduced on the cluster), the columns
it asks for one at a time (:func:`column`), and the holdout rows; never the window.

Rows are in segment order, each segment sorted by time; the time cuts (holdout, early
stopping) are by event time, so the split is the local one's except for rows that share the
cut's timestamp.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core import feature_sets
from ..core.errors import InputError
from ..core.spec import ModelSpec
from ..families.schema import FeatureSchema
from ..plumbing.workspace import Workspace
from ..store.rows import META, ROWS
from ..store.segment_reads import read_segment

PARTITION_ROWS = 262_144  # small segments are read together up to this many rows
_EARLIEST = datetime(1, 1, 1)


def store_url(ws: Workspace) -> str | None:
    """The store's URL as a worker opens it (a SQLite file by its absolute path); None for
    an in-memory SQLite store, which no other process can read."""
    from sqlalchemy.engine import make_url

    url = make_url(ws.store.url)
    if url.get_backend_name() != "sqlite":
        return ws.store.url
    if url.database in (None, "", ":memory:"):
        return None
    return url.set(database=str(Path(url.database).resolve())).render_as_string(hide_password=False)


def unsupported(ws: Workspace, spec: ModelSpec) -> str | None:
    """Why ``spec``'s window cannot be read in partitions (then it is read in this process
    and sent to the workers, see docs/dask.md), or None when it can."""
    t = spec.training
    if t.engine != "dask":
        return "engine: local"
    if spec.data.source != "store":
        return f"data.source: {spec.data.source} (read in place by this process)"
    if store_url(ws) is None:
        return "an in-memory SQLite store (the workers cannot open it)"
    return None


@dataclass(frozen=True)
class Cut:
    """Rows at ``at`` or later (``inclusive``) or strictly later are after the cut."""

    at: pd.Timestamp
    inclusive: bool

    def after(self, times: pd.Series) -> np.ndarray:
        out = times >= self.at if self.inclusive else times > self.at
        return np.asarray(out.to_numpy(), dtype=bool)


@dataclass(frozen=True)
class PartitionedWindow:
    """The window's rows in the store, read by the cluster's workers: ``frame`` (a dask
    DataFrame, not persisted: each computation reads its partitions again), its columns, the
    store's URL, the segment ids of each partition and the time filter they are read with."""

    frame: Any
    columns: tuple[str, ...]
    partitions: int
    url: str = ""
    groups: tuple[tuple[int, ...], ...] = ()
    filters: Any = None

    def parts(self) -> list[Any]:
        """The partitions as delayed pandas frames (every column), in order."""
        return list(self.frame.to_delayed())

    def read(self, columns: Sequence[str]) -> list[Any]:
        """The partitions as delayed pandas frames of ``columns`` (and the event time) only,
        in order, rows as in :meth:`parts` (a worker decodes only those columns)."""
        import dask

        columns = list(dict.fromkeys(["event_time", *columns]))
        if not self.groups:  # a window built by hand over a frame
            return [dask.delayed(_columns)(p, columns) for p in self.parts()]
        return [
            dask.delayed(_read_group)(ids, self.url, tuple(columns), self.filters)
            for ids in self.groups
        ]


def _columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df[columns]


@dataclass(frozen=True)
class WindowFacts:
    """What the registering process records of a window it never held."""

    rows: int
    start: pd.Timestamp
    end: pd.Timestamp
    present: tuple[str, ...]  # columns with at least one value
    labels: tuple[Any, ...]  # distinct target values
    schema_levels: dict[str, tuple[str, ...]]
    kinds: dict[str, str]
    lengths: tuple[int, ...]  # rows per partition


def read_window(
    ws: Workspace, spec: ModelSpec, client: Any, start: datetime | None
) -> PartitionedWindow:
    """The rows of ``spec``'s window (event time >= ``start``) as partitions read by
    ``client``'s workers from the store (each time they are used: the frame is not kept in
    the workers' memory); InputError when the window holds no rows."""
    import dask.dataframe as dd

    url = store_url(ws)
    assert url is not None  # unsupported() said so before
    found = ws.store.segments(spec.name, ROWS, start=start)
    if not found:
        raise InputError(
            f"Model {spec.name!r} has no training rows{' in the window' if start else ''}. "
            f"Ingest labelled data first: `retrainer ingest {spec.name} FILE`."
        )
    columns = tuple(dict.fromkeys([*META, *feature_sets.stored(spec).all]))
    filters = None if start is None else [("event_time", ">=", start)]
    groups = _groups([(s.id, s.n_rows) for s in found])
    meta = read_segment(url, found[0].id, columns, [("event_time", "<", _EARLIEST)])
    frame = dd.from_map(
        _read_group,
        groups,
        url=url,
        columns=columns,
        filters=filters,
        meta=meta,
        enforce_metadata=False,
        label="retrainer-window",
    )
    return PartitionedWindow(frame, columns, len(groups), url, tuple(groups), filters)


def _groups(segments: Sequence[tuple[int, int]]) -> list[tuple[int, ...]]:
    """Segment ids in partitions of up to PARTITION_ROWS rows (a bigger segment alone).

    >>> _groups([(1, 200_000), (2, 50_000), (3, 20_000), (4, 300_000)])
    [(1, 2), (3,), (4,)]
    """
    out: list[list[int]] = [[]]
    total = 0
    for seg, n in segments:
        if out[-1] and total + n > PARTITION_ROWS:
            out.append([])
            total = 0
        out[-1].append(seg)
        total += n
    return [tuple(g) for g in out if g]


def _read_group(
    ids: tuple[int, ...], url: str, columns: Sequence[str], filters: Any
) -> pd.DataFrame:
    parts = [read_segment(url, i, columns, filters) for i in ids]
    parts = [p for p in parts if len(p)] or parts[:1]
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return frame.sort_values("event_time", kind="stable", ignore_index=True)


# -- summaries reduced on the cluster -----------------------------------------------------


def _part_facts(df: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> dict:
    times = df["event_time"].dropna()
    kinds = {}
    for c in numeric:
        if c not in df.columns:
            continue
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        v = v[np.isfinite(v)]
        kinds[c] = (len(v) > 0, bool(np.isin(v, (0.0, 1.0)).all()), bool((v == np.trunc(v)).all()))
    from ..families.schema import level

    levels = {
        c: {level(v) for v in df[c].dropna().unique()} for c in categorical if c in df.columns
    }
    return {
        "rows": len(df),
        "lo": times.min() if len(times) else None,
        "hi": times.max() if len(times) else None,
        "present": {c for c in df.columns if bool(df[c].notna().any())},
        "labels": set(df["target"].dropna().unique().tolist()),
        "levels": levels,
        "kinds": kinds,
    }


def window_facts(window: PartitionedWindow, spec: ModelSpec) -> WindowFacts:
    """Row counts, time range, target values, category levels and numeric kinds of the
    window, each partition summarised by its worker (what the client receives is a few
    values per partition)."""
    import dask

    stored = feature_sets.stored(spec)
    facts = dask.compute(
        *[dask.delayed(_part_facts)(p, stored.numeric, stored.categorical) for p in window.parts()]
    )
    los = [f["lo"] for f in facts if f["lo"] is not None]
    his = [f["hi"] for f in facts if f["hi"] is not None]
    levels: dict[str, set[str]] = {}
    kinds: dict[str, tuple[bool, bool, bool]] = {}
    for f in facts:
        for c, lv in f["levels"].items():
            levels.setdefault(c, set()).update(lv)
        for c, (some, binary, whole) in f["kinds"].items():
            a, b, w = kinds.get(c, (False, True, True))
            kinds[c] = (a or some, b and binary, w and whole)
    named = {}
    for c, (some, binary, whole) in kinds.items():
        if some and binary:
            named[c] = "boolean"
        elif some and whole:
            named[c] = "integer"
    return WindowFacts(
        rows=sum(f["rows"] for f in facts),
        start=pd.Timestamp(min(los)),
        end=pd.Timestamp(max(his)),
        present=tuple(sorted(set().union(*[f["present"] for f in facts]))),
        labels=tuple(set().union(*[f["labels"] for f in facts])),
        schema_levels={c: tuple(sorted(v)) for c, v in levels.items()},
        kinds=named,
        lengths=tuple(f["rows"] for f in facts),
    )


def schema_of(facts: WindowFacts, spec: ModelSpec) -> FeatureSchema:
    """The feature schema a local fit on the window would learn (columns, levels, kinds)."""
    f = spec.active_features
    return FeatureSchema(
        tuple(f.numeric),
        tuple(f.categorical),
        {c: facts.schema_levels.get(c, ()) for c in f.categorical},
        {c: k for c, k in facts.kinds.items() if c in f.numeric},
    )


def _newest_time(window: PartitionedWindow, n: int, before: Cut | None) -> pd.Timestamp:
    """The ``n``-th newest event time of the window (of its rows before ``before``)."""
    frame = window.frame
    if before is not None:
        times = frame["event_time"]
        frame = frame[times < before.at] if before.inclusive else frame[times <= before.at]
    return pd.Timestamp(frame["event_time"].nlargest(n).compute().min())


def holdout_cut(window: PartitionedWindow, spec: ModelSpec, facts: WindowFacts) -> Cut:
    """Where the holdout starts: the window's last ``holdout_days`` days, or its newest
    ``holdout_fraction`` of rows (as :func:`retrainer.evaluation.splits.temporal_holdout`)."""
    from ..evaluation.splits import temporal_holdout

    days = spec.training.holdout_days
    if days is not None:
        return Cut(facts.end - pd.Timedelta(days=days), inclusive=False)
    _train, hold = temporal_holdout(facts.rows, spec.training.holdout_fraction)
    return Cut(_newest_time(window, hold.stop - hold.start, None), inclusive=True)


def newest_cut(window: PartitionedWindow, rows: int, fraction: float, before: Cut | None) -> Cut:
    """The cut holding out the newest ``fraction`` of ``rows`` rows (those before
    ``before``): the early-stopping slice."""
    return Cut(_newest_time(window, max(1, int(rows * fraction)), before), inclusive=True)


def select_rows(df: pd.DataFrame, lo: Cut | None, hi: Cut | None) -> pd.DataFrame:
    """The rows of a partition after ``lo`` and not after ``hi`` (None: no bound)."""
    keep = np.ones(len(df), dtype=bool)
    if lo is not None:
        keep &= lo.after(df["event_time"])
    if hi is not None:
        keep &= ~hi.after(df["event_time"])
    return df[keep]


def rows_between(window: PartitionedWindow, lo: Cut | None, hi: Cut | None) -> pd.DataFrame:
    """The window's rows after ``lo`` and before ``hi`` in this process, oldest first (the
    holdout: a slice, never the window)."""
    import dask

    parts = dask.compute(*[dask.delayed(select_rows)(p, lo, hi) for p in window.parts()])
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values("event_time", kind="stable", ignore_index=True)


def _count(df: pd.DataFrame, lo: Cut | None, hi: Cut | None) -> int:
    return len(select_rows(df, lo, hi))


def count_between(window: PartitionedWindow, lo: Cut | None, hi: Cut | None) -> int:
    """How many of the window's rows are between the cuts (each partition counted by its
    worker from the event times)."""
    import dask

    times = window.read(["event_time"])
    return int(sum(dask.compute(*[dask.delayed(_count)(p, lo, hi) for p in times])))


def matrices(
    window: PartitionedWindow,
    schema: FeatureSchema,
    encode: Any,
    lo: Cut | None = None,
    hi: Cut | None = None,
) -> tuple[Any, Any, int]:
    """The float32 matrix and encoded target (float64) of the rows between the cuts as dask
    arrays, in partition order, and their row count. Each chunk is built by a worker straight
    from the columns of its partition (read again, the features, target and event time only):
    no copy of the frame, which is dropped once its chunk exists.

    The matrix is float32 (half the memory of the float64 one a local fit builds): XGBoost
    trains on float32 anyway; LightGBM bins the float32 values (a value that rounds onto a
    bin's edge may fall on the other side of it, see docs/dask.md)."""
    import dask.array as da

    import dask

    times = window.read(["event_time"])
    counts = dask.compute(*[dask.delayed(_count)(p, lo, hi) for p in times])
    parts = window.read(["event_time", "target", *schema.columns])
    xs, ys = [], []
    k = len(schema.columns)
    for p, n in zip(parts, counts, strict=True):
        if not n:
            continue
        block = dask.delayed(_block, nout=2)(p, schema, encode, lo, hi)
        xs.append(da.from_delayed(block[0], (n, k), dtype=np.float32))
        ys.append(da.from_delayed(block[1], (n,), dtype=np.float64))
    if not xs:
        raise InputError("No training rows between the window's time cuts; widen the window.")
    return da.concatenate(xs), da.concatenate(ys), int(sum(counts))


def _block(
    df: pd.DataFrame, schema: FeatureSchema, encode: Any, lo: Cut | None, hi: Cut | None
) -> tuple[np.ndarray, np.ndarray]:
    """The float32 matrix (as :meth:`FeatureSchema.matrix`, in float32) and the target of
    ``df``'s rows between the cuts, a column at a time (no copy of the frame).

    >>> s = FeatureSchema(("x",), ("c",), {"c": ("a", "b")}, {})
    >>> df = pd.DataFrame({"event_time": pd.to_datetime(["2026-01-01", "2026-01-02"]),
    ...                    "target": [0, 1], "x": [0.5, 1.5], "c": ["b", None]})
    >>> X, y = _block(df, s, lambda t: t, Cut(pd.Timestamp("2026-01-02"), True), None)
    >>> X.dtype, X.tolist(), y.tolist()
    (dtype('float32'), [[1.5, nan]], [1.0])
    """
    schema.check_columns(df)
    keep = _keep(df, lo, hi)
    out = np.empty((int(keep.sum()), len(schema.columns)), dtype=np.float32)
    for j, col in enumerate(schema.numeric):
        try:
            values = pd.to_numeric(df[col], errors="raise")
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"Feature {col!r} must be numeric: {exc}. Fix or drop the offending values.",
                feature=col,
            ) from None
        out[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)[keep]
    for k, col in enumerate(schema.categorical):
        out[:, len(schema.numeric) + k] = schema._codes(col, df[col][keep])
    return out, _target(df["target"].to_numpy()[keep], encode)


def _keep(df: pd.DataFrame, lo: Cut | None, hi: Cut | None) -> np.ndarray:
    keep = np.ones(len(df), dtype=bool)
    if lo is not None:
        keep &= lo.after(df["event_time"])
    if hi is not None:
        keep &= ~hi.after(df["event_time"])
    return keep


def _target(values: np.ndarray, encode: Any) -> np.ndarray:
    return np.asarray(encode(values), dtype=np.float64)


def column(window: PartitionedWindow, name: str) -> pd.Series:
    """One column of the window in this process (a column at a time: quality checks and
    reference statistics that need every value), in partition order."""
    import dask

    parts = dask.compute(*[dask.delayed(_pick)(p, name) for p in window.read([name])])
    return pd.concat(parts, ignore_index=True)


def _pick(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name]


def fingerprint(window: PartitionedWindow, columns: Sequence[str]) -> str:
    """SHA-256 of the rows' values (as :func:`retrainer.lifecycle.train.fingerprint`, rows in
    partition order): each worker hashes its partition, this process chains the digests'
    bytes partition by partition, holding one partition's hashes at a time."""
    h = hashlib.sha256()
    for chunk in _ordered(window.read(columns), _row_hashes, list(columns)):
        h.update(chunk)
    return h.hexdigest()


def _row_hashes(df: pd.DataFrame, columns: list[str]) -> bytes:
    hashed = pd.util.hash_pandas_object(df[columns], index=False, categorize=False)
    return bytes(hashed.to_numpy().tobytes())


def _ordered(parts: list[Any], fn: Any, *args: Any) -> Iterator[Any]:
    """``fn(part, *args)`` of each delayed partition, computed one at a time, in order."""
    import dask

    for p in parts:
        (out,) = dask.compute(dask.delayed(fn)(p, *args))
        yield out


def days_before(end: pd.Timestamp, days: int | None) -> datetime | None:
    """The window's start ``days`` before ``end`` (None: every row)."""
    return None if not days else (end - timedelta(days=days)).to_pydatetime()

"""Where a model's labelled rows are read from: the store, and (``data:`` in the spec) the
team's own Parquet files or SQL database, read in place, never copied.

Reads are by time: a training window, the rows after a champion's window (fine-tune), a count
of new rows (the policy). A Parquet source pushes the time filter down to its row groups (when
the time column is a timestamp) and reads only the spec's columns; a SQL source runs the
spec's query with ``:since`` (and ``:until``) bound, or wraps it in a time filter, and reads
the result in chunks. Source rows are validated like ingested ones (bad rows are skipped and
counted); rows in the store (ingested, or added by feedback) are read too, and a source row
wins over a stored row of the same id.

>>> from retrainer.core.spec import parse_spec
>>> spec = parse_spec({"models": {"m": {"task": "regression", "target": "y",
...     "id_column": "id", "time_column": "t", "features": {"numeric": ["x"]},
...     "data": {"source": "parquet", "path": "s3://lake/events/*.parquet"}}}}, environ={})
>>> describe(spec.model("m"))
"parquet source 's3://lake/events/*.parquet'"
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError, SourceUnavailable
from ..core.spec import ModelSpec
from ..plumbing.tables import CHUNK_ROWS, LINE
from ..plumbing.workspace import Workspace
from .ingest import prepare_frame

if TYPE_CHECKING:
    import pandas as pd

_EARLIEST = datetime(1, 1, 1)


@dataclass(frozen=True)
class Window:
    """A time filter: event time >= start, <= end, > after (each optional)."""

    start: datetime | None = None
    end: datetime | None = None
    after: datetime | None = None

    @property
    def lower(self) -> datetime | None:
        return self.after if self.after is not None else self.start


def describe(spec: ModelSpec) -> str:
    """The model's data source, for messages (a database URL without its password)."""
    d = spec.data
    if d.source == "parquet":
        return f"parquet source {d.path!r}"
    if d.source == "sql":
        from ..store.engine import safe_url

        return f"sql source {safe_url(d.url or '')!r}"
    return "the store"


def training_frame(
    ws: Workspace,
    spec: ModelSpec,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    after: datetime | None = None,
) -> pd.DataFrame:
    """The model's labelled rows in a time window, oldest first (see the module docstring)."""
    import pandas as pd

    stored = ws.store.training_frame(spec.name, start=start, end=end, after=after)
    if spec.data.source == "store":
        return stored
    window = Window(start, end, after)
    parts = [_within(f, window) for f in _source_frames(spec, window)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return stored
    source = pd.concat(parts, ignore_index=True)
    frame = pd.concat([source, stored], ignore_index=True) if len(stored) else source
    frame = frame.drop_duplicates("entity_id", keep="first")
    return frame.sort_values("event_time", kind="stable", ignore_index=True)


def row_stats(ws: Workspace, spec: ModelSpec) -> tuple[int, datetime | None, datetime | None]:
    """(rows, oldest event time, newest event time) over the source and the store."""
    n, lo, hi = ws.store.training_stats(spec.name)
    if spec.data.source == "store":
        return n, lo, hi
    m, slo, shi = _source_stats(spec, Window())
    return n + m, _min(lo, slo), _max(hi, shi)


def count_rows(ws: Workspace, spec: ModelSpec, after: datetime | None = None) -> int:
    """Rows newer than ``after`` (all when None), over the source and the store."""
    n = ws.store.count_training_rows(spec.name, after=after)
    if spec.data.source == "store":
        return n
    return n + _source_stats(spec, Window(after=after))[0]


# -- reading a source ------------------------------------------------------------------------


def _source_frames(spec: ModelSpec, window: Window) -> Iterator[pd.DataFrame]:
    """The source's rows in the window, validated and shaped like stored rows, in chunks."""
    where = describe(spec)
    first = 1
    for raw in _raw_chunks(spec, window):
        raw = raw.reset_index(drop=True)
        raw[LINE] = range(first, first + len(raw))
        first += len(raw)
        frame, _rejects = prepare_frame(spec, raw, where)
        yield frame


def _raw_chunks(spec: ModelSpec, window: Window) -> Iterator[pd.DataFrame]:
    if spec.data.source == "parquet":
        yield from _parquet_chunks(spec, window)
    else:
        yield from _sql_chunks(spec, window)


def _within(frame: pd.DataFrame, w: Window) -> pd.DataFrame:
    """Rows of a prepared frame inside the window (exact, whatever the source pushed down)."""
    keep = frame["event_time"].notna()
    if w.start is not None:
        keep &= frame["event_time"] >= w.start
    if w.end is not None:
        keep &= frame["event_time"] <= w.end
    if w.after is not None:
        keep &= frame["event_time"] > w.after
    return frame[keep]


def _source_stats(spec: ModelSpec, window: Window) -> tuple[int, datetime | None, datetime | None]:
    if spec.data.source == "sql":
        return _sql_stats(spec, window)
    n, lo, hi = 0, None, None
    for chunk in _parquet_chunks(spec, window, columns=[spec.time_column]):
        import pandas as pd

        times = pd.to_datetime(chunk[spec.time_column], errors="coerce", utc=True, format="mixed")
        times = times.dt.tz_localize(None)
        if window.after is not None:
            times = times[times > window.after]
        times = times.dropna()
        if len(times):
            n += len(times)
            lo = _min(lo, times.min().to_pydatetime())
            hi = _max(hi, times.max().to_pydatetime())
    return n, lo, hi


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# -- Parquet ---------------------------------------------------------------------------------


def _dataset(spec: ModelSpec) -> Any:
    import fsspec
    import pyarrow.dataset as ds

    path = spec.data.path or ""
    try:
        fs, root = fsspec.core.url_to_fs(path)
        if any(ch in root for ch in "*?["):
            files = sorted(fs.glob(root))
        elif fs.isdir(root):
            return ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive")
        else:
            files = [root] if fs.exists(root) else []
        if not files:
            raise SourceUnavailable(
                f"The parquet source {path!r} of model {spec.name!r} matches no file. Check "
                "data.path in the spec (a file, a folder or a glob such as "
                "'s3://bucket/events/*.parquet') and that this machine can reach it.",
                source=path,
            )
        return ds.dataset(files, filesystem=fs, format="parquet")
    except SourceUnavailable:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise SourceUnavailable(
            f"The parquet source {path!r} of model {spec.name!r} cannot be read: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. Check data.path "
            "and the credentials in the environment.",
            source=path,
        ) from None


def _parquet_chunks(
    spec: ModelSpec, window: Window, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.dataset as ds

    data = _dataset(spec)
    names = set(data.schema.names)
    wanted = columns or [spec.id_column, spec.time_column, spec.target, *spec.stored_features.all]
    cols = [c for c in wanted if c in names]
    if spec.time_column not in names:
        raise InputError(
            f"The {describe(spec)} of model {spec.name!r} has no column {spec.time_column!r} "
            f"(the spec's time column); it has {sorted(names)}.",
        )
    expr = None
    kind = data.schema.field(spec.time_column).type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        field = ds.field(spec.time_column)

        def at(t: datetime) -> Any:
            if pa.types.is_timestamp(kind) and kind.tz is not None:
                from datetime import UTC

                t = t.replace(tzinfo=UTC)
            return pa.scalar(t, type=kind) if pa.types.is_timestamp(kind) else pa.scalar(t.date())

        for bound, op in ((window.start, "ge"), (window.end, "le"), (window.after, "gt")):
            if bound is None:
                continue
            term = {"ge": field >= at(bound), "le": field <= at(bound), "gt": field > at(bound)}[op]
            expr = term if expr is None else expr & term
    try:
        for batch in data.to_batches(columns=cols, filter=expr, batch_size=CHUNK_ROWS):
            if batch.num_rows:
                yield batch.to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceUnavailable(
            f"The {describe(spec)} of model {spec.name!r} failed while reading: "
            f"{str(exc).splitlines()[0]}.",
            source=spec.data.path,
        ) from None


# -- SQL -------------------------------------------------------------------------------------


def _sql(spec: ModelSpec, window: Window, select: str) -> tuple[Any, dict[str, Any]]:
    """The statement and its parameters: the spec's query with ``:since``/``:until`` bound,
    or wrapped in a filter on the time column, under ``select``."""
    from sqlalchemy import text

    query = (spec.data.query or "").strip().rstrip(";")
    params: dict[str, Any] = {}
    uses = {name for name in ("since", "until") if f":{name}" in query}
    if "since" in uses:
        params["since"] = window.lower or _EARLIEST
    if "until" in uses:
        params["until"] = window.end or datetime(9999, 12, 31)
    tc = spec.time_column.replace('"', '""')
    conds = []
    if window.lower is not None:
        conds.append(f'src."{tc}" {">" if window.after is not None else ">="} :lower_')
        params["lower_"] = window.lower
    if window.end is not None:
        conds.append(f'src."{tc}" <= :upper_')
        params["upper_"] = window.end
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    return text(f"SELECT {select} FROM ({query}) AS src{where}"), params


def _engine(spec: ModelSpec) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        return create_engine(spec.data.url or "", pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise SourceUnavailable(
            f"The {describe(spec)} of model {spec.name!r} is not a usable database URL "
            f"({exc}). Check data.url in the spec.",
        ) from None


def _sql_errors(spec: ModelSpec, exc: Exception) -> SourceUnavailable:
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return SourceUnavailable(
        f"The {describe(spec)} of model {spec.name!r} cannot be read: {first}. Check data.url, "
        "data.query and that the database answers.",
    )


def _sql_chunks(spec: ModelSpec, window: Window) -> Iterator[pd.DataFrame]:
    import pandas as pd
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    stmt, params = _sql(spec, window, "*")
    engine = _engine(spec)
    try:
        with engine.connect() as conn:
            yield from pd.read_sql(stmt, conn, params=params, chunksize=CHUNK_ROWS)
    except (DBAPIError, SQLAlchemyError) as exc:
        raise _sql_errors(spec, exc) from None
    finally:
        engine.dispose()


def _sql_stats(spec: ModelSpec, window: Window) -> tuple[int, datetime | None, datetime | None]:
    import pandas as pd
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    tc = spec.time_column.replace('"', '""')
    stmt, params = _sql(spec, window, f'count(*), min(src."{tc}"), max(src."{tc}")')
    engine = _engine(spec)
    try:
        with engine.connect() as conn:
            n, lo, hi = conn.execute(stmt, params).one()
    except (DBAPIError, SQLAlchemyError) as exc:
        raise _sql_errors(spec, exc) from None
    finally:
        engine.dispose()

    def when(v: Any) -> datetime | None:
        if v is None:
            return None
        ts = pd.Timestamp(v)
        return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()

    return int(n or 0), when(lo), when(hi)

"""Ingest labelled rows: validate, reject with line numbers, de-duplicate by id and time
(the first row of a key wins, within a file as across files; the others are counted as
duplicates); one transaction per file, read and stored a chunk at a time (memory bounded by
a chunk).

A classifier's labels have one type per model, whatever each file holds: integers, or text.
The model's stored rows decide it; a model's first rows decide it by their majority. A label
that does not fit (``yes`` among integers, ``0.5``) is a rejected line naming the value, like
any other bad value, so one bad label never changes how the others are stored.

>>> import pandas as pd
>>> from retrainer.core.spec import ModelSpec
>>> spec = ModelSpec(task="classification", target="y", id_column="id", time_column="t",
...                  features={"numeric": ["x"], "categorical": ["c"]})
>>> df = pd.DataFrame({"id": [1.0, 2.0, 3.0], "t": ["2024-01-01", "bad", "2024-01-03"],
...                    "y": [1, 0, 1], "x": [0.5, 1.0, "n/a"], "c": [7.0, 7.0, None]})
>>> frame, rejects = prepare_frame(spec, df, "rows.csv")
>>> frame[["entity_id", "target", "x", "c"]].values.tolist()
[['1', 1, 0.5, '7']]
>>> [(r.line, r.reason) for r in rejects]
[(2, "unparseable time in 't': bad"), (3, "non-numeric value in feature 'x': n/a")]

One label that is not a whole number among integers is a rejected line; the others stay
integers. Rows repeating an id and time: the first is kept, the others counted:

>>> df = pd.DataFrame({"id": [1, 2, 3, 3], "t": ["2024-01-01"] * 4, "y": [1, "yes", 0, 1],
...                    "x": [1.0] * 4, "c": ["a"] * 4})
>>> frame, rejects = prepare_frame(spec, df, "rows.csv")
>>> frame["target"].tolist(), labels_kind(spec, df["y"]), repeated(df, frame, rejects)
([1, 0], 'int', 1)
>>> [(r.line, r.reason) for r in rejects]
[(2, "label 'y' = 'yes' is not a whole number like this model's other labels (integers)")]
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError
from ..core.feature_sets import required as spec_required
from ..core.fleet import member_prefix, split_member
from ..core.levels import level
from ..core.names import MAX_ID
from ..core.progress import Progress, current
from ..core.spec import ModelSpec
from ..plumbing.tables import CHUNK_ROWS, LINE, iter_table
from ..plumbing.workspace import Workspace
from ..store.rows import ROWS

if TYPE_CHECKING:
    import pandas as pd

MAX_REPORTED = 5
MEMBER = "__member__"  # a fleet's member column while a chunk is split (see prepare_frame)
log = logging.getLogger("retrainer.ingest")


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str


INT, TEXT = "int", "text"  # how a classifier's labels are stored


@dataclass(frozen=True)
class IngestResult:
    inserted: int
    duplicates: int
    rejected: int
    rejects: list[Reject] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "first_rejects": [{"line": r.line, "reason": r.reason} for r in self.rejects],
        }


def ingest_file(
    ws: Workspace,
    model: str,
    path: str | Path,
    *,
    source: str = "file",
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> IngestResult:
    """Ingest a CSV, Parquet or JSONL file of labelled rows for ``model``: all of its valid
    rows or none, read ``chunk_rows`` at a time.

    Each chunk is staged in its own short write transaction (other writers wait for a chunk,
    not for the file), and the run becomes visible in one short transaction at the end; a run
    that fails or dies leaves none of its rows visible (see ``store.rows``). A lease per run,
    renewed at every chunk, tells a dead run's staged rows (dropped by the next ingest) from a
    live one's. ``progress`` hears of each chunk read and stored (see ``core.progress``)."""
    spec = ws.model_spec(model)
    p = progress or current()
    p.stage("read", unit="rows")
    chunks = iter_table(path, chunk_rows)
    first = next(chunks)  # a file that cannot be read fails before anything is written
    if spec.is_fleet:
        from .fleet_ingest import ingest_fleet

        return ingest_fleet(ws, spec, _chain(first, chunks), str(path), source, p)
    kind = stored_labels_kind(ws, model)
    if kind is None and spec.target in first.columns:
        kind = labels_kind(spec, first[spec.target])
    inserted = duplicates = rejected = 0
    rejects: list[Reject] = []
    with _Run(ws, model) as run:
        for df in _chain(first, chunks):
            frame, bad = prepare_frame(spec, df, str(path), labels=kind)
            duplicates += repeated(df, frame, bad)
            rejected += len(bad)
            rejects = (rejects + bad)[:MAX_REPORTED]
            with ws.store.write() as conn:  # no model lock: staged rows are the run's own
                added = ws.store.append_rows(conn, model, frame, source, stage=run.id, unique=True)
            inserted += added.inserted
            duplicates += added.duplicates
            run.alive()
            p.advance(len(df))
        p.stage("publish")
        with ws.store.write(model) as conn:
            late = ws.store.publish_rows(conn, model, run.id, source, run.known, inserted)
        run.published = True
    p.done()
    return IngestResult(inserted - late, duplicates + late, rejected, rejects)


RUN_TTL = 600.0  # seconds an ingest run may spend on one chunk before it is taken for dead


def _wall() -> datetime:
    """The machine's time (naive UTC) for run leases: a run is alive in real time, whatever
    clock the project runs on (a replay's simulated one)."""
    return datetime.now(UTC).replace(tzinfo=None)


def run_lease(model: str, run: str) -> str:
    """The lease a live ingest run of ``model`` holds (a fleet's run: the fleet's name)."""
    return f"ingest-run:{model}:{run}"


class _Run:
    """One staged ingest run of a model (or of a fleet, staging rows for its members): its
    id, its lease, the row segments stored when it began; drops its staged rows unless
    published, and the staged rows of dead runs."""

    def __init__(self, ws: Workspace, model: str, *, fleet: bool = False) -> None:
        self.ws, self.model, self.fleet = ws, model, fleet
        self.id = uuid.uuid4().hex[:12]
        self.lease = run_lease(model, self.id)
        self.owner = f"{socket.gethostname()[:80]}:{os.getpid()}"
        self.known: set[int] = set()
        self.published = False

    def __enter__(self) -> _Run:
        store = self.ws.store
        store.acquire_lease(self.lease, self.owner, RUN_TTL, now=_wall())
        if self.fleet:
            staged = store.staged_member_runs(member_prefix(self.model))
        else:
            staged = [(self.model, other) for other in store.staged_runs(self.model)]
        for model, other in staged:
            if other != self.id and self._dead(other):
                with store.write() as conn:
                    n = store.drop_staged(conn, model, other)
                log.info("ingest %s: dropped %d staged segments of dead run %s", model, n, other)
        if not self.fleet:
            self.known = {s.id for s in store.segments(self.model, ROWS)}
        return self

    def _dead(self, other: str) -> bool:
        """Whether run ``other`` is dead: no lease of it is held, neither the model's own nor
        (for a fleet member) its fleet's. The leases taken to tell are released again."""
        store = self.ws.store
        parts = split_member(self.model) if not self.fleet else None
        owners = [self.model, parts[0]] if parts else [self.model]
        taken: list[str] = []
        try:
            for owner in owners:
                lease = run_lease(owner, other)
                if not store.acquire_lease(lease, self.owner, 60, now=_wall()):
                    return False
                taken.append(lease)
            return True
        finally:
            for lease in taken:
                store.release_lease(lease, self.owner)

    def alive(self) -> None:
        self.ws.store.renew_lease(self.lease, self.owner, RUN_TTL, now=_wall())

    def __exit__(self, *exc: object) -> None:
        store = self.ws.store
        try:
            if not self.published:
                with store.write() as conn:
                    if self.fleet:
                        store.drop_staged_members(conn, member_prefix(self.model), self.id)
                    else:
                        store.drop_staged(conn, self.model, self.id)
            store.release_lease(self.lease, self.owner)
        except Exception as cleanup:  # the next ingest drops them once the lease expires
            log.warning("ingest %s: run %s left for cleanup: %s", self.model, self.id, cleanup)


def _chain(first: pd.DataFrame, rest: Any) -> Any:
    yield first
    yield from rest


def ingest_frame(
    ws: Workspace,
    model: str,
    df: pd.DataFrame,
    *,
    source: str = "api",
    where: str = "data",
    spec: ModelSpec | None = None,
) -> IngestResult:
    """Ingest labelled rows given as a frame (the spec's columns), in one transaction."""
    spec = spec or ws.model_spec(model)
    if LINE not in df.columns:
        df = df.assign(**{LINE: range(1, len(df) + 1)})
    if spec.is_fleet:
        from .fleet_ingest import ingest_fleet

        return ingest_fleet(ws, spec, iter([df]), where, source, current())
    kind = stored_labels_kind(ws, model) if spec.target in df.columns else None
    frame, rejects = prepare_frame(spec, df, where, labels=kind)
    again = repeated(df, frame, rejects)
    if frame.empty:
        return IngestResult(0, again, len(rejects), rejects[:MAX_REPORTED])
    added = ws.store.add_training_frame(model, frame, source)
    return IngestResult(
        added.inserted, added.duplicates + again, len(rejects), rejects[:MAX_REPORTED]
    )


def stored_labels_kind(ws: Workspace, model: str) -> str | None:
    """How ``model``'s stored labels are typed (``int`` or ``text``; None: no rows yet, or
    not a classifier): the target column of its newest training-row segment."""
    import pyarrow as pa

    if ws.model_spec(model).task != "classification":
        return None
    found = ws.store.segments(model, "rows")[-1:]
    for _seg, table in ws.store.iter_segment_tables(found, columns=["target"]):
        kind = table.schema.field("target").type
        if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            return INT
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return TEXT
    return None


def labels_kind(spec: ModelSpec, values: pd.Series) -> str | None:
    """How a classifier's labels are stored when its first rows are ``values``: ``int`` when
    most present labels are whole numbers, else ``text`` (None for regression)."""
    import pandas as pd

    if spec.task != "classification":
        return None
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        return INT
    num = pd.to_numeric(present, errors="coerce")
    whole = int((num.notna() & (num % 1 == 0)).sum())
    return INT if whole * 2 >= len(present) else TEXT


def repeated(df: pd.DataFrame, frame: pd.DataFrame, rejects: list[Reject]) -> int:
    """Valid rows of ``df`` that :func:`prepare_frame` left out of ``frame`` because an
    earlier row of ``df`` has the same id and time (they are counted as duplicates)."""
    return len(df) - len(rejects) - len(frame)


class Reasons:
    """Why rows are rejected: the first reason per row wins. Reason texts are built only for
    the rows a check newly rejects, so a clean chunk costs one mask per check."""

    def __init__(self, index: pd.Index) -> None:
        import numpy as np

        self.index = index
        self.ok = np.ones(len(index), dtype=bool)
        self.texts: dict[int, str] = {}

    def flag_ids(self, ids: pd.Series, column: str) -> None:
        """Reject rows whose id is missing or cannot be stored (longer than ``MAX_ID``
        characters as text, or holding a NUL): one check for every path that stores ids."""
        import pandas as pd

        self.flag(ids.isna(), f"missing id ({column})")
        if pd.api.types.is_numeric_dtype(ids) or pd.api.types.is_bool_dtype(ids):
            return  # a number's text is short and holds no NUL
        typed = ids.dtype != object and pd.api.types.is_string_dtype(ids)
        texts = ids if typed else id_texts(ids).astype("string")
        self.flag(
            texts.str.len().fillna(0) > MAX_ID,
            f"id in {column!r} longer than {MAX_ID} characters",
        )
        self.flag(
            texts.str.contains("\x00", regex=False).fillna(False).astype(bool),
            f"id in {column!r} holds a NUL character (U+0000)",
        )

    def flag(self, bad: Any, reason: str | pd.Series) -> None:
        """Reject the rows of mask ``bad`` not rejected yet, with ``reason`` (a text, or a
        series of texts indexed like the data)."""
        import numpy as np

        new = np.flatnonzero(self.ok & np.asarray(bad, dtype=bool))
        if not len(new):
            return
        self.ok[new] = False
        if isinstance(reason, str):
            self.texts.update(dict.fromkeys(new.tolist(), reason))
        else:
            picked = reason.loc[self.index[new]].astype(str).tolist()
            self.texts.update(zip(new.tolist(), picked, strict=True))

    def rejects(self, lines: Any) -> list[Reject]:
        return [Reject(int(lines[i]), self.texts[i]) for i in sorted(self.texts)]


def prepare_frame(
    spec: ModelSpec,
    df: pd.DataFrame,
    where: str,
    *,
    labels: str | None = None,
    member_column: str | None = None,
) -> tuple[pd.DataFrame, list[Reject]]:
    """Validate a frame against the spec; returns the storable rows (``entity_id``,
    ``event_time``, ``target``, features; the first row of an id and time given twice) and
    the rejected lines. A classifier's labels are stored as ``labels`` (``int`` or ``text``;
    None: by :func:`labels_kind` of this frame). With ``member_column`` (a fleet's ``by``),
    its values come along as text in column :data:`MEMBER` and an id and time repeat only
    within one member. Vectorized: no Python work per row."""
    import numpy as np
    import pandas as pd

    if LINE not in df.columns:
        df = df.assign(**{LINE: range(1, len(df) + 1)})
    needed = [spec.id_column, spec.time_column, spec.target, *spec_required(spec).all]
    if member_column is not None:
        needed.insert(0, member_column)
    missing = [c for c in needed if c not in df.columns]
    kept = spec.stored_features  # a feature set's columns beyond the fallback's, when given
    numeric_cols = [c for c in kept.numeric if c in df.columns]
    categorical_cols = [c for c in kept.categorical if c in df.columns]
    if missing:
        have = [c for c in df.columns if c != LINE]
        raise InputError(
            f"{where}: column(s) {missing} named in the spec for model {spec.name!r} are not in "
            f"the data. The data has {have}. Rename the columns or fix the spec.",
            missing=missing,
        )
    rs = Reasons(df.index)
    if member_column is not None:
        rs.flag(df[member_column].isna(), f"missing fleet member ({member_column})")
    rs.flag_ids(df[spec.id_column], spec.id_column)
    raw_time = df[spec.time_column]
    times = parse_times(raw_time)
    if times.isna().any():  # the reasons' text is built only for a chunk that needs it
        rs.flag(
            times.isna(),
            f"unparseable time in {spec.time_column!r}: " + raw_time.astype(str).str.slice(0, 40),
        )
    target = df[spec.target]
    rs.flag(target.isna(), f"missing target ({spec.target})")
    target, why = check_labels(spec, target, None, kind=labels or labels_kind(spec, target))
    rs.flag(df.index.isin(why.index), why)
    numeric: dict[str, pd.Series] = {}
    for col in numeric_cols:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            rs.flag(bad, f"non-numeric value in feature {col!r}: " + raw.astype(str))
        numeric[col] = num.astype("float64")
    ok = rs.ok
    frame = pd.DataFrame(
        {
            "entity_id": id_texts(df[spec.id_column][ok]),
            "event_time": times[ok].dt.tz_localize(None).astype("datetime64[us]"),
            "target": _no_missing(target[ok]),
        }
    )
    for col in numeric_cols:
        v = numeric[col][ok]
        frame[col] = v.where(np.isfinite(v))
    for col in categorical_cols:
        frame[col] = level_texts(df[col][ok])
    key = ["entity_id", "event_time"]
    if member_column is not None:
        frame[MEMBER] = id_texts(df[member_column][ok])
        key.insert(0, MEMBER)
    frame = frame.drop_duplicates(key, keep="first")
    return frame.reset_index(drop=True), rs.rejects(df[LINE].to_numpy())


def _no_missing(target: pd.Series) -> pd.Series:
    """Kept targets are all present: nullable integers (a rejected row's gap) as int64."""
    return target.astype("int64") if str(target.dtype) == "Int64" else target


def parse_times(raw: pd.Series) -> pd.Series:
    """Times as UTC timestamps (NaT where a value does not parse). ISO 8601 text, the common
    case, is parsed in one fast pass; only the values it does not take go through the slower
    parser that guesses each one's format."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(raw):
        return pd.to_datetime(raw, utc=True)
    times = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    retry = times.isna() & raw.notna()
    if retry.any():
        times = times.copy()
        times[retry] = pd.to_datetime(raw[retry], errors="coerce", utc=True, format="mixed")
    return times


def check_labels(
    spec: ModelSpec, values: pd.Series, classes: list[Any] | None, *, kind: str | None = None
) -> tuple[pd.Series, pd.Series]:
    """Targets as stored (regression: float64; classification: the model's own class values
    when ``classes`` is given, else as ``kind`` says: ``int`` (a label that is not a whole
    number is invalid) or ``text``; without a kind, integers where every label is a whole
    number, else text) and, for each present value that is not a valid target, why (a series
    indexed by those rows)."""
    import numpy as np
    import pandas as pd

    present = values.notna()
    if spec.task == "regression":
        num = pd.to_numeric(values, errors="coerce")
        finite = num.notna() & np.isfinite(num.fillna(0.0))
        bad = present & ~finite
        why = f"non-numeric target {spec.target!r}: " + values[bad].astype(str).str[:40]
        return num.astype("float64").where(finite), why
    why = pd.Series([], dtype=object)
    if values.dtype == object:
        nested = values.map(lambda v: isinstance(v, dict | list)).astype(bool)
        if nested.any():
            why = f"target {spec.target!r} must be one label, got " + values[nested].astype(str)
            values = values.where(~nested)
            present = present & ~nested
    if classes is None and kind == INT and not pd.api.types.is_bool_dtype(values):
        num = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & ~(num.notna() & (num % 1 == 0))
        if bad.any():
            wrong = (
                f"label {spec.target!r} = " + values[bad].map(repr).str[:40]
                + " is not a whole number like this model's other labels (integers)"
            )  # fmt: skip
            why = pd.concat([why, wrong]) if len(why) else wrong
        whole = num.where(~bad)
        return (whole.astype("Int64") if whole.isna().any() else whole.astype("int64")), why
    if classes is None and kind == TEXT:
        return values.map(lambda v: None if v is None or v != v else label_key(v)), why
    labels = label_column(values)
    if classes is None:
        return labels, why
    keys = labels.map({u: label_key(u) for u in labels.dropna().unique()})
    by_key = {label_key(c): c for c in classes}
    unknown = present & ~keys.isin(list(by_key))
    if unknown.any():
        known = ", ".join(sorted(by_key))
        unseen = (
            f"label {spec.target!r} = " + values[unknown].astype(str).str[:40]
            + f" is not a class of the model (known: {known})"
        )  # fmt: skip
        why = pd.concat([why, unseen]) if len(why) else unseen
    return label_column(keys.map(by_key).where(~unknown)), why


def label_column(values: pd.Series) -> pd.Series:
    """Class labels with one type: whole numbers as int64, anything else as text.

    >>> import pandas as pd
    >>> label_column(pd.Series([1.0, 0.0])).tolist(), label_column(pd.Series([1, "yes"])).tolist()
    ([1, 0], ['1', 'yes'])
    """
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return values
    num = pd.to_numeric(values, errors="coerce")
    present = values.notna()
    if (num.notna() == present).all():
        if (num[present] % 1 == 0).all():
            return num.astype("Int64") if not present.all() else num.astype("int64")
        return num.astype("float64")
    return values.map(lambda v: None if v is None or v != v else label_key(v))


def label_key(value: Any) -> str:
    """Labels compared across sources: ``1``, ``1.0`` and ``"1"`` are the same label.

    >>> import numpy as np
    >>> label_key(1.0), label_key("yes"), label_key(np.int64(0))
    ('1', 'yes', '0')
    """
    return level(value)


def id_texts(values: pd.Series) -> pd.Series:
    """Entity ids as text; whole floats (a numeric id column with gaps) without ``.0``.

    >>> import pandas as pd
    >>> id_texts(pd.Series([1.0, 2.5])).tolist(), id_texts(pd.Series([7, 8])).tolist()
    (['1', '2.5'], ['7', '8'])
    """
    return level_texts(values).astype(object)


def level_texts(values: pd.Series) -> pd.Series:
    """Values as the text of their category level (see ``FeatureSchema``), missing as None."""
    import numpy as np
    import pandas as pd

    present = values.notna()
    if pd.api.types.is_float_dtype(values):
        out = pd.Series(None, index=values.index, dtype=object)
        whole = present & (values % 1 == 0)
        out[whole] = values[whole].astype("int64").astype(str)
        rest = present & ~whole
        out[rest] = values[rest].astype(str)
        return out
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.astype(str).astype(object).where(present, None)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.astype(object).where(present, None)
    mapped = values.map(lambda v: None if v is None or v != v else level(v))
    return pd.Series(np.asarray(mapped, dtype=object), index=values.index)

"""Feedback: actual outcomes joined to logged predictions, stored once, turned into training
rows; from a file, a frame, or a JSONL log followed across restarts.

An actual joins the prediction of its entity id. When an id was scored more than once, it joins
the prediction of its own row, the one scored with the same id and time column value (a row's
identity is its id and time: a forecast of many hours of one place joins hour by hour); else
the prediction nearest before the actual's event time (the earliest one when all are after it,
the newest one when the feedback has no time). Served predictions are preferred over shadow
ones. Unmatched actuals are stored with no prediction and counted, never dropped. A label that
is not a valid target (not numeric for a regression; not one of the model's classes for a
classifier) is rejected with its line and never becomes a training row.

The join is set-based and linear in the batch: one query per chunk of entity ids finds their
predictions, the choice among them is a vectorized as-of join, and each stored input that the
matches point at is read and parsed once.
"""

from __future__ import annotations

import hashlib
import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.clock import utcnow
from ..core.durations import parse_duration
from ..core.errors import InputError, RetrainerError
from ..core.progress import Progress, current
from ..core.spec import ModelSpec
from ..plumbing.tables import CHUNK_ROWS, LINE, file_format, iter_table
from ..plumbing.workspace import Workspace
from ..store.feedback import FeedbackOffset
from ..store.monitor_store import Folder
from .feedback_fields import FieldMap
from .ingest import (
    MAX_REPORTED,
    Reasons,
    Reject,
    check_labels,
    id_texts,
    label_key,
    level_texts,
    parse_times,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy import Connection

__all__ = ["FeedbackResult", "feedback_file", "follow_feedback", "label_key", "record_feedback"]


@dataclass(frozen=True)
class FeedbackResult:
    """What one feedback call did. ``received == matched + unmatched + duplicates + rejected``."""

    received: int
    matched: int
    unmatched: int
    duplicates: int
    rejected: int
    first_rejects: list[Reject] = field(default_factory=list)
    training_rows_added: int = 0

    def __add__(self, other: FeedbackResult) -> FeedbackResult:
        return FeedbackResult(
            self.received + other.received,
            self.matched + other.matched,
            self.unmatched + other.unmatched,
            self.duplicates + other.duplicates,
            self.rejected + other.rejected,
            (self.first_rejects + other.first_rejects)[:MAX_REPORTED],
            self.training_rows_added + other.training_rows_added,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "first_rejects": [{"line": r.line, "reason": r.reason} for r in self.first_rejects],
            "training_rows_added": self.training_rows_added,
        }


EMPTY = FeedbackResult(0, 0, 0, 0, 0)


def record_feedback(
    ws: Workspace,
    model: str,
    frame: pd.DataFrame,
    *,
    where: str = "data",
    rejects: Sequence[Reject] = (),
    offset: FeedbackOffset | None = None,
    conn: Connection | None = None,
    fields: FieldMap | None = None,
) -> FeedbackResult:
    """Join actual outcomes (the spec's id and target columns, optionally its time column) to
    the logged predictions and store them in one transaction; bad rows are rejected with their
    line numbers and the rest goes in. Calling it twice with the same rows changes nothing.

    ``rejects`` are lines already refused while reading (e.g. invalid JSON); ``offset`` moves a
    followed source's position in the same transaction; ``conn``: a write transaction of the
    caller's (holding the model's lock) to store in, e.g. one for a whole file; ``fields``:
    the source's names for the spec's id, target and time columns.
    """
    import numpy as np
    import pandas as pd

    spec = ws.model_spec(model)
    if fields is not None:
        frame = fields.apply(frame, spec, where)
    if LINE not in frame.columns:
        frame = frame.assign(**{LINE: range(1, len(frame) + 1)})
    actuals, bad = _validate(spec, frame, where, model_classes(ws, spec))
    bad = [*rejects, *bad]
    received = len(frame) + len(rejects)
    unique = actuals.drop_duplicates(["entity_id", "event_time"], keep="last")
    unique = unique.reset_index(drop=True)
    codes, entities = pd.factorize(unique["entity_id"])
    decoded: dict[str, Any] = {}  # the logged inputs parsed in this call, by key: each once
    chosen = match(candidates(ws, model, entities.tolist(), decoded), unique, codes)
    stored = unique.assign(prediction_id=chosen["id"].astype("Int64"))
    training = _training_rows(ws, spec, unique, chosen, decoded)
    recorded = ws.store.record_actuals(model, stored, training, offset, conn=conn)
    fresh = recorded.inserted
    matched = int((fresh & chosen["id"].notna().to_numpy()).sum())
    n_stored = int(np.count_nonzero(fresh))
    return FeedbackResult(
        received=received,
        matched=matched,
        unmatched=n_stored - matched,
        duplicates=len(actuals) - n_stored,
        rejected=len(bad),
        first_rejects=sorted(bad, key=lambda r: r.line)[:MAX_REPORTED],
        training_rows_added=recorded.training_rows_added,
    )


def feedback_file(
    ws: Workspace,
    model: str,
    path: str | Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    fields: FieldMap | None = None,
    progress: Progress | None = None,
) -> FeedbackResult:
    """Record the actuals of a CSV, Parquet or JSONL file (invalid JSON lines are rejected):
    all of its valid rows or none (one transaction), read ``chunk_rows`` at a time; ``fields``
    maps the file's names onto the spec's id, target and time columns; ``progress`` hears of
    each chunk joined and stored."""
    shown = progress or current()
    shown.stage("join and store", unit="rows")
    p = Path(path)
    if file_format(p) == "jsonl" and p.exists() and p.suffix.lower() != ".gz":
        chunks: Iterator[tuple[pd.DataFrame, list[Reject]]] = _jsonl_chunks(p, chunk_rows)
    else:
        chunks = ((df, []) for df in iter_table(p, chunk_rows))
    first = next(chunks, None)  # a file that cannot be read fails before the transaction
    total = EMPTY
    if first is None:
        return total
    with ws.store.write(model) as conn:
        for df, rejects in _chain(first, chunks):
            total += record_feedback(
                ws, model, df, where=str(p), rejects=rejects, conn=conn, fields=fields
            )
            shown.advance(len(df) + len(rejects))
    shown.done()
    return total


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _jsonl_chunks(p: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, list[Reject]]]:
    pos, line = 0, 0
    while True:
        chunk = read_jsonl(p, pos, line, max_lines=chunk_rows, final=True)
        if chunk.line == line:
            return
        yield chunk.frame, chunk.rejects
        pos, line = chunk.offset, chunk.line


def model_classes(ws: Workspace, spec: ModelSpec) -> list[Any] | None:
    """The class labels a classifier's feedback must use: the champion's (or the newest
    version's when none serves); None for a regression or a model with no version yet."""
    if spec.task != "classification":
        return None
    name = ws.store.roles(spec.name).champion
    if name is None:
        versions = ws.store.list_versions(spec.name, include_deleted=False)
        if not versions:
            return None
        name = versions[-1].version
    try:
        return ws.classes(spec.name, name) or None
    except RetrainerError:
        return None


def _training_rows(
    ws: Workspace,
    spec: ModelSpec,
    actuals: pd.DataFrame,
    chosen: pd.DataFrame,
    decoded: dict[str, Any] | None = None,
) -> pa.Table | None:
    """The training rows the actuals add, as an Arrow table: the input each matched
    prediction scored, labelled; the prediction's time when the actual has none. ``pos``
    indexes ``actuals``. A batch's Parquet input stays columnar all the way."""
    import numpy as np
    import pyarrow as pa

    hit = np.flatnonzero(chosen["id"].notna().to_numpy())
    if not len(hit):
        return None
    feats, have = ws.store.input_table(
        chosen["input_key"].to_numpy()[hit].tolist(),
        chosen["input_row"].to_numpy()[hit].astype(np.int64),
        spec.stored_features.all,  # every set's columns: a challenger may use others
        decoded,
    )
    if not len(have):
        return None
    rows = hit[have]
    times = actuals["event_time"].to_numpy(dtype="datetime64[us]")[rows]
    fallback = chosen["created_at"].to_numpy(dtype="datetime64[us]")[rows]
    columns: dict[str, Any] = {
        "entity_id": pa.array(actuals["entity_id"].to_numpy(dtype=object)[rows], pa.string()),
        "event_time": pa.array(np.where(np.isnat(times), fallback, times)),
        "target": pa.Array.from_pandas(actuals["value"].iloc[rows].reset_index(drop=True)),
    }
    for col in spec.stored_features.numeric:
        columns[col] = numeric_column(feats[col])
    for col in spec.stored_features.categorical:
        columns[col] = level_column(feats[col])
    columns["pos"] = pa.array(rows)
    return pa.table(columns)


def numeric_column(values: Any) -> pa.Array:
    """A logged numeric feature as stored in a training row: float64, missing and non-finite
    values null (the serving path accepts NaN for families that take missing values)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        x = values.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        x = pa.array(pd.to_numeric(values.to_pandas(), errors="coerce"), pa.float64())
    return pc.if_else(pc.is_finite(x), x, pa.scalar(None, pa.float64()))


def level_column(values: Any) -> pa.Array:
    """A logged categorical feature as stored: the text of its level (see ingest)."""
    import pyarrow as pa

    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    if pa.types.is_null(values.type):
        return values.cast(pa.string())
    return pa.array(level_texts(values.to_pandas()), pa.string())


def candidates(
    ws: Workspace, model: str, entity_ids: Sequence[str], decoded: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Every logged prediction of the given (distinct) entity ids: ``pos`` indexes
    ``entity_ids`` (see ``FeedbackStore.prediction_candidates``). ``row_time`` is the time
    column's value in the row each prediction scored (NaT when the request did not send it),
    read only for entities scored more than once: there it picks the prediction of the
    actual's own (id, time) row, e.g. one forecast of a week of hours per place.
    ``decoded``: logged inputs already parsed, shared with the training-row step."""
    import numpy as np

    cands = ws.store.prediction_candidates(model, entity_ids)
    row_time = np.full(len(cands), np.datetime64("NaT"), dtype="datetime64[us]")
    pos = cands["pos"].to_numpy(dtype=np.int64)
    many = np.flatnonzero(np.bincount(pos)[pos] > 1) if len(pos) else pos
    if len(many):
        column = ws.model_spec(model).time_column
        table, have = ws.store.input_table(
            cands["input_key"].to_numpy()[many].tolist(),
            cands["input_row"].to_numpy()[many].astype(np.int64),
            [column],
            decoded,
        )
        times = parse_times(table.column(column).to_pandas())
        row_time[many[have]] = times.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    return cands.assign(row_time=row_time)


def match(cands: pd.DataFrame, actuals: pd.DataFrame, codes: Any) -> pd.DataFrame:
    """For each actual (``event_time`` or NaT; ``codes``: its entity's index into the ids the
    candidates were asked for), the prediction it joins among the candidates: a frame indexed
    like ``actuals`` with the chosen prediction's ``id``, ``created_at``, ``input_key`` and
    ``input_row`` (NaN where none).

    An entity with one candidate, the usual case, takes it (a gather, no search); the others
    go through an as-of join by entity and time."""
    import numpy as np
    import pandas as pd

    cols = ["id", "created_at", "input_key", "input_row"]
    none = pd.DataFrame({c: np.nan for c in cols}, index=actuals.index)
    if cands.empty or actuals.empty:
        return none
    k = int(max(codes.max(), cands["pos"].max())) + 1
    served = cands["served"].to_numpy() == 1
    has_served = np.bincount(cands["pos"][served], minlength=k) > 0
    cands = cands[served | ~has_served[cands["pos"].to_numpy()]]
    per_entity = np.bincount(cands["pos"], minlength=k)
    row_of = np.full(k, -1, dtype=np.int64)
    row_of[cands["pos"].to_numpy()] = np.arange(len(cands))
    picked = np.where(per_entity[codes] == 1, row_of[codes], -1)
    at = np.maximum(picked, 0)
    miss = picked < 0
    out = {
        "id": cands["id"].to_numpy(dtype=np.float64)[at],
        "created_at": cands["created_at"].to_numpy(dtype="datetime64[ns]")[at],
        "input_key": cands["input_key"].to_numpy(dtype=object)[at],
        "input_row": cands["input_row"].to_numpy(dtype=np.float64)[at],
    }
    for c, empty in (("id", np.nan), ("created_at", np.datetime64("NaT")), ("input_key", None),
                     ("input_row", np.nan)):  # fmt: skip
        out[c][miss] = empty
    many = np.flatnonzero(per_entity[codes] > 1)
    if len(many):
        sub = actuals.iloc[many]
        chosen = _as_of(cands[np.isin(cands["pos"], codes[many])], sub, codes[many], cols)
        for c in cols:
            out[c][many] = chosen[c].to_numpy(dtype=out[c].dtype)
    return pd.DataFrame(out, index=actuals.index)


def _as_of(cands: pd.DataFrame, actuals: pd.DataFrame, codes: Any, cols: list[str]) -> Any:
    """The choice for entities with several candidates: the prediction of the actual's own
    row (its id and time, when the scored rows carried the time column), else the prediction
    nearest before the actual's time, else the earliest after it; the newest when the actual
    has no time."""
    import pandas as pd

    cands = cands.sort_values(["created_at", "id"], kind="stable")
    left = pd.DataFrame(
        {"pos": codes, "event_time": actuals["event_time"].to_numpy()}, index=actuals.index
    ).reset_index()
    picked = []
    timed = left[left["event_time"].notna()].sort_values("event_time", kind="stable")
    if len(timed):
        right = cands[["pos", *cols]].assign(
            event_time=cands["created_at"].astype(timed["event_time"].dtype)
        )
        before = pd.merge_asof(timed, right, on="event_time", by="pos")
        after = pd.merge_asof(timed, right, on="event_time", by="pos", direction="forward")
        before, after = before.set_index("index")[cols], after.set_index("index")[cols]
        chosen = before.where(before["id"].notna(), after)
        if "row_time" in cands.columns and cands["row_time"].notna().any():
            # the prediction of the actual's own row (id and time) wins; the newest of them
            rows = cands.dropna(subset=["row_time"]).drop_duplicates(
                ["pos", "row_time"], keep="last"
            )
            own = timed.merge(
                rows[["pos", "row_time", *cols]],
                left_on=["pos", "event_time"],
                right_on=["pos", "row_time"],
                how="left",
            ).set_index("index")[cols]
            chosen = own.where(own["id"].notna(), chosen)
        picked.append(chosen)
    untimed = left[left["event_time"].isna()]
    if len(untimed):
        newest = cands.groupby("pos", sort=False).tail(1)[["pos", *cols]]
        picked.append(untimed.merge(newest, on="pos", how="left").set_index("index")[cols])
    return pd.concat(picked).reindex(actuals.index)


# -- following a JSONL log -------------------------------------------------------------------


@dataclass(frozen=True)
class JsonlChunk:
    frame: pd.DataFrame
    rejects: list[Reject]
    offset: int  # byte offset after the last complete line read
    line: int  # number of lines consumed so far
    head: bytes  # the file's first line (empty until it is complete)


def read_jsonl(
    path: Path, offset: int, line: int, *, max_lines: int | None = None, final: bool = False
) -> JsonlChunk:
    """Complete lines of a JSONL file from a byte offset (a trailing partial line is left for
    the next read unless ``final``); lines that are not JSON objects become rejects."""
    import json

    import pandas as pd

    records: list[dict[str, Any]] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    with path.open("rb") as fh:
        head = fh.readline()
        head = head if head.endswith(b"\n") else b""
        fh.seek(offset)
        while max_lines is None or len(lines) + len(rejects) < max_lines:
            raw = fh.readline()
            if not raw or (not raw.endswith(b"\n") and not final):
                break
            offset += len(raw)
            line += 1
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                rejects.append(Reject(line, f"not valid JSON ({getattr(exc, 'msg', exc)})"))
                continue
            if not isinstance(obj, dict):
                rejects.append(Reject(line, "not a JSON object"))
                continue
            records.append(obj)
            lines.append(line)
    frame = pd.DataFrame.from_records(records)
    frame[LINE] = lines
    return JsonlChunk(frame, rejects, offset, line, head)


def follow_feedback(
    ws: Workspace,
    model: str,
    path: str | Path,
    *,
    interval: float = 1.0,
    max_seconds: float | None = None,
    batch_lines: int = 10_000,
    stop: threading.Event | None = None,
    fields: FieldMap | None = None,
) -> FeedbackResult:
    """Tail a JSONL file of actuals, resuming where the last run stopped (byte offset and file
    identity kept in the store, moved in the same transaction as the rows), until SIGINT,
    SIGTERM, ``stop`` or ``max_seconds``. A rotated or truncated file is read from its start."""
    p = Path(path).resolve()
    if not p.exists():
        raise InputError(f"File {str(p)!r} does not exist.", path=str(p))
    if file_format(p) != "jsonl" or p.suffix.lower() == ".gz":
        raise InputError(
            f"{p}: --follow tails plain JSONL files (one JSON object per line, not gzipped). "
            "Record other files without --follow."
        )
    stop = stop or threading.Event()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    total = EMPTY
    with _stop_on_signals(stop):
        while not stop.is_set():
            while not stop.is_set():
                pos = _resume(ws, model, p)
                chunk = read_jsonl(p, pos.offset, pos.line, max_lines=batch_lines)
                if chunk.line == pos.line:
                    break
                head = hashlib.sha256(chunk.head).hexdigest() if chunk.head else ""
                moved = replace(pos, offset=chunk.offset, line=chunk.line, head_hash=head)
                total += record_feedback(
                    ws,
                    model,
                    chunk.frame,
                    where=str(p),
                    rejects=chunk.rejects,
                    offset=moved,
                    fields=fields,
                )
            remaining = math.inf if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            stop.wait(min(interval, remaining))
    return total


def _resume(ws: Workspace, model: str, p: Path) -> FeedbackOffset:
    st = p.stat()
    start = FeedbackOffset(str(p), st.st_ino, "", 0, 0)
    saved = ws.store.feedback_offset(model, str(p))
    if saved is None or saved.inode != st.st_ino or saved.offset > st.st_size:
        return start
    with p.open("rb") as fh:
        head = fh.readline()
    if saved.head_hash and hashlib.sha256(head).hexdigest() != saved.head_hash:
        return start
    return saved


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda *_: stop.set())
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# -- validation and matching -----------------------------------------------------------------


def _validate(
    spec: ModelSpec, df: pd.DataFrame, where: str, classes: list[Any] | None
) -> tuple[pd.DataFrame, list[Reject]]:
    """The valid actuals (``entity_id``, ``event_time`` or NaT, ``value``) and the rejects."""
    import pandas as pd

    missing = [c for c in (spec.id_column, spec.target) if c not in df.columns]
    if missing:
        have = [c for c in df.columns if c != LINE]
        raise InputError(
            f"{where}: feedback for model {spec.name!r} needs column(s) {missing} (the spec's "
            f"id and target columns). The data has {have}. Rename the columns or fix the spec.",
            missing=missing,
        )
    rs = Reasons(df.index)
    rs.flag_ids(df[spec.id_column], spec.id_column)
    target = df[spec.target]
    rs.flag(target.isna(), f"missing target ({spec.target})")
    values, why = check_labels(spec, target, classes)
    rs.flag(df.index.isin(why.index), why)
    if spec.time_column in df.columns:
        raw = df[spec.time_column]
        times = parse_times(raw)
        unparsed = times.isna() & raw.notna()
        if unparsed.any():
            rs.flag(
                unparsed, f"unparseable time in {spec.time_column!r}: " + raw.astype(str).str[:40]
            )
        event = times.dt.tz_localize(None).astype("datetime64[us]")
    else:
        event = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us]")
    ok = rs.ok
    rejects = rs.rejects(df[LINE].to_numpy())
    actuals = pd.DataFrame(
        {
            "entity_id": id_texts(df[spec.id_column][ok]),
            "event_time": event[ok],
            "value": values[ok],
        }
    ).reset_index(drop=True)
    return actuals, rejects


def join_late_predictions(
    ws: Workspace, model: str, fold_pairs: Folder, now: datetime | None = None
) -> int:
    """Join the actuals that arrived before their prediction was logged; returns how many.

    The prediction log is written behind the response (and spooled while the store is down),
    so an actual can be stored, unmatched, before the prediction it labels. Each actual
    received within ``monitor.late_join`` of ``now`` and still unmatched is joined, as
    :func:`record_feedback` would have, to a prediction served before it was received, and
    its training row is added; the monitor counts it once (``fold_pairs`` folds the ones it
    has already passed).
    """
    import pandas as pd

    spec = ws.model_spec(model)
    now = now or utcnow()
    since = now - parse_duration(spec.monitor.late_join, what="monitor.late_join")
    waiting = ws.store.unmatched_actuals(model, since)
    if not waiting:
        return 0
    actuals = pd.DataFrame(
        {
            "entity_id": [w.entity_id for w in waiting],
            "event_time": pd.to_datetime([w.event_time for w in waiting]).astype("datetime64[us]"),
            "value": [w.value for w in waiting],
            "received_at": pd.to_datetime([w.received_at for w in waiting]),
        }
    )
    codes, entities = pd.factorize(actuals["entity_id"])
    cands = candidates(ws, model, entities.tolist())
    parts = [
        match(cands[cands["created_at"] <= received], group, codes[group.index.to_numpy()])
        for received, group in actuals.groupby("received_at", sort=False)
    ]
    chosen = pd.concat(parts).reindex(actuals.index)
    hit = chosen["id"].notna().to_numpy()
    if not hit.any():
        return 0
    links = [
        (waiting[i].segment, waiting[i].row, int(chosen["id"].iloc[i]))
        for i in range(len(waiting))
        if hit[i]
    ]
    found = actuals[hit].reset_index(drop=True)
    training = _training_rows(ws, spec, found, chosen[hit].reset_index(drop=True))
    return ws.store.link_actuals(model, links, training, fold_pairs)

"""Feedback: actual outcomes joined to logged predictions, stored once, turned into training
rows; from a file, a frame, or a JSONL log followed across restarts.

An actual joins the prediction of its entity id. When an id was scored more than once, it joins
the prediction nearest before the actual's event time (the earliest one when all are after it,
the newest one when the feedback has no time). Served predictions are preferred over shadow
ones. Unmatched actuals are stored with no prediction and counted, never dropped.
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
from typing import Any

import numpy as np
import pandas as pd

from ..core.clock import utcnow
from ..core.durations import parse_duration
from ..core.errors import InputError, RetrainerError
from ..core.spec import ModelSpec
from ..store.feedback import FeedbackOffset, PredictionRef
from ..store.monitor_store import Folder
from .ingest import MAX_REPORTED, Reject, _id_text, _scalar
from .tables import LINE, file_format, read_table
from .workspace import Workspace


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
    unseen_labels: list[str] = field(default_factory=list)

    def __add__(self, other: FeedbackResult) -> FeedbackResult:
        return FeedbackResult(
            self.received + other.received,
            self.matched + other.matched,
            self.unmatched + other.unmatched,
            self.duplicates + other.duplicates,
            self.rejected + other.rejected,
            (self.first_rejects + other.first_rejects)[:MAX_REPORTED],
            self.training_rows_added + other.training_rows_added,
            sorted({*self.unseen_labels, *other.unseen_labels}),
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
            "unseen_labels": self.unseen_labels,
        }


EMPTY = FeedbackResult(0, 0, 0, 0, 0)


def label_key(value: Any) -> str:
    """Labels compared across sources: ``1``, ``1.0`` and ``"1"`` are the same label.

    >>> label_key(1.0), label_key("yes"), label_key(np.int64(0))
    ('1', 'yes', '0')
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _training_row(
    spec: ModelSpec,
    entity_id: str,
    event_time: Any,
    value: Any,
    m: PredictionRef,
    feats: dict[int, dict[str, Any]],
    now: Any,
) -> dict[str, Any]:
    """The training row an actual adds: the input its prediction scored, labelled; the
    prediction's time when the actual has none."""
    return {
        "entity_id": entity_id,
        "event_time": event_time or m.created_at,
        "target": value,
        "features": _features(feats[m.id], spec.feature_names),
        "source": "feedback",
        "ingested_at": now,
    }


def _features(row: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A logged input row as training features: the spec's features only, and a non-finite
    number (accepted for a family that takes missing values) as missing."""
    out = {}
    for c in names:
        v = row.get(c)
        out[c] = None if type(v) is float and not math.isfinite(v) else v
    return out


def record_feedback(
    ws: Workspace,
    model: str,
    frame: pd.DataFrame,
    *,
    where: str = "data",
    rejects: Sequence[Reject] = (),
    offset: FeedbackOffset | None = None,
) -> FeedbackResult:
    """Join actual outcomes (the spec's id and target columns, optionally its time column) to
    the logged predictions and store them in one transaction; bad rows are rejected with their
    line numbers and the rest goes in. Calling it twice with the same rows changes nothing.

    ``rejects`` are lines already refused while reading (e.g. invalid JSON); ``offset`` moves a
    followed source's position in the same transaction.
    """
    spec = ws.model_spec(model)
    if LINE not in frame.columns:
        frame = frame.assign(**{LINE: range(1, len(frame) + 1)})
    actuals, bad = _validate(spec, frame, where)
    bad = [*rejects, *bad]
    received = len(frame) + len(rejects)
    unique = _dedupe(actuals)
    refs = ws.store.predictions_for(model, [a["entity_id"] for a in unique])
    matches = [_match(refs.get(a["entity_id"], []), a["event_time"]) for a in unique]
    feats = ws.store.prediction_features([m.id for m in matches if m is not None])
    now = utcnow()
    rows, training = [], []
    for a, m in zip(unique, matches, strict=True):
        rows.append({**a, "received_at": now, "prediction_id": m.id if m else None})
        if m is not None and m.id in feats:
            training.append(
                _training_row(spec, a["entity_id"], a["event_time"], a["value"], m, feats, now)
            )
    recorded = ws.store.record_actuals(model, rows, training, offset)
    matched = sum(1 for i in recorded.inserted if rows[i]["prediction_id"] is not None)
    stored = len(recorded.inserted)
    return FeedbackResult(
        received=received,
        matched=matched,
        unmatched=stored - matched,
        duplicates=len(actuals) - stored,
        rejected=len(bad),
        first_rejects=sorted(bad, key=lambda r: r.line)[:MAX_REPORTED],
        training_rows_added=recorded.training_rows_added,
        unseen_labels=_unseen_labels(ws, spec, [rows[i]["value"] for i in recorded.inserted]),
    )


def feedback_file(ws: Workspace, model: str, path: str | Path) -> FeedbackResult:
    """Record the actuals of a CSV, Parquet or JSONL file (invalid JSON lines are rejected)."""
    p = Path(path)
    if file_format(p) == "jsonl" and p.exists() and p.suffix.lower() != ".gz":
        chunk = read_jsonl(p, 0, 0, final=True)
        return record_feedback(ws, model, chunk.frame, where=str(p), rejects=chunk.rejects)
    return record_feedback(ws, model, read_table(p), where=str(p))


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
                    ws, model, chunk.frame, where=str(p), rejects=chunk.rejects, offset=moved
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
    spec: ModelSpec, df: pd.DataFrame, where: str
) -> tuple[list[dict[str, Any]], list[Reject]]:
    missing = [c for c in (spec.id_column, spec.target) if c not in df.columns]
    if missing:
        have = [c for c in df.columns if c != LINE]
        raise InputError(
            f"{where}: feedback for model {spec.name!r} needs column(s) {missing} (the spec's "
            f"id and target columns). The data has {have}. Rename the columns or fix the spec.",
            missing=missing,
        )
    reasons = pd.Series("", index=df.index, dtype=object)
    reasons[df[spec.id_column].isna()] = f"missing id ({spec.id_column})"
    target = df[spec.target]
    reasons[(reasons == "") & target.isna()] = f"missing target ({spec.target})"
    if spec.task == "regression":
        numeric = pd.to_numeric(target, errors="coerce")
        bad = (reasons == "") & (numeric.isna() | ~np.isfinite(numeric.fillna(0.0)))
        reasons[bad] = f"non-numeric target {spec.target!r}: " + target[bad].astype(str).str[:40]
        target = numeric
    else:
        bad = (reasons == "") & target.map(lambda v: isinstance(v, dict | list))
        reasons[bad] = f"target {spec.target!r} must be one label, got " + target[bad].astype(str)
    if spec.time_column in df.columns:
        raw = df[spec.time_column]
        times = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
        bad = (reasons == "") & times.isna() & raw.notna()
        reasons[bad] = f"unparseable time in {spec.time_column!r}: " + raw[bad].astype(str).str[:40]
        event = [None if pd.isna(x) else x.tz_localize(None).to_pydatetime() for x in times]
    else:
        event = [None] * len(df)
    ok = (reasons == "").to_numpy()
    lines = df[LINE].to_numpy()
    rejects = [Reject(int(lines[i]), str(reasons.iloc[i])) for i in np.flatnonzero(~ok)]
    ids, values = df[spec.id_column].to_numpy(), target.to_numpy()
    rows = [
        {"entity_id": _id_text(ids[i]), "event_time": event[i], "value": _scalar(values[i])}
        for i in np.flatnonzero(ok)
    ]
    return rows, rejects


def _dedupe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One actual per (entity id, event time); the last one in the data wins."""
    return list({(r["entity_id"], r["event_time"]): r for r in rows}.values())


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
    spec = ws.model_spec(model)
    now = now or utcnow()
    since = now - parse_duration(spec.monitor.late_join, what="monitor.late_join")
    waiting = ws.store.unmatched_actuals(model, since)
    if not waiting:
        return 0
    refs = ws.store.predictions_for(model, [w.entity_id for w in waiting])
    found = []
    for w in waiting:
        m = _match([p for p in refs.get(w.entity_id, []) if p.created_at <= w.received_at],
                   w.event_time)  # fmt: skip
        if m is not None:
            found.append((w, m))
    if not found:
        return 0
    feats = ws.store.prediction_features([m.id for _, m in found])
    training = {
        w.id: _training_row(spec, w.entity_id, w.event_time, w.value, m, feats, now)
        for w, m in found
        if m.id in feats
    }
    return ws.store.link_actuals(model, [(w.id, m.id) for w, m in found], training, fold_pairs)


def _match(preds: list[PredictionRef], when: Any) -> PredictionRef | None:
    if not preds:
        return None
    served = [p for p in preds if p.arm != "shadow"] or preds
    if when is None:
        return served[-1]
    before = [p for p in served if p.created_at <= when]
    return before[-1] if before else served[0]


def _unseen_labels(ws: Workspace, spec: ModelSpec, values: list[Any]) -> list[str]:
    if spec.task != "classification" or not values:
        return []
    champion = ws.store.roles(spec.name).champion
    if champion is None:
        return []
    try:
        classes = {label_key(c) for c in ws.load(spec.name, champion).classes_}
    except RetrainerError:
        return []
    return sorted({label_key(v) for v in values} - classes)

"""Feedback from JSONL: complete lines read from a byte offset, and a log followed across
restarts (its offset and identity stored with the rows it added, in one transaction)."""

from __future__ import annotations

import hashlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError
from ..plumbing.tables import LINE, file_format
from ..plumbing.workspace import Workspace
from ..store.feedback import FeedbackOffset
from .feedback_fields import FieldMap
from .feedback_record import record_feedback
from .feedback_result import EMPTY, FeedbackResult
from .ingest import Reject

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JsonlChunk", "follow_feedback", "jsonl_chunks", "read_jsonl"]


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


def jsonl_chunks(p: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, list[Reject]]]:
    """A whole JSONL file as frames of at most ``chunk_rows`` lines, each with its rejects."""
    pos, line = 0, 0
    while True:
        chunk = read_jsonl(p, pos, line, max_lines=chunk_rows, final=True)
        if chunk.line == line:
            return
        yield chunk.frame, chunk.rejects
        pos, line = chunk.offset, chunk.line


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
    SIGTERM, ``stop`` or ``max_seconds``. A rotated or truncated file is read from its start.
    A fleet's actuals go to their members (:mod:`.fleet_feedback`), its position kept under
    the fleet's name."""
    p = Path(path).resolve()
    if not p.exists():
        raise InputError(f"File {str(p)!r} does not exist.", path=str(p))
    if file_format(p) != "jsonl" or p.suffix.lower() == ".gz":
        raise InputError(
            f"{p}: --follow tails plain JSONL files (one JSON object per line, not gzipped). "
            "Record other files without --follow."
        )
    stop = stop or threading.Event()
    record: Any = record_feedback
    if ws.model_spec(model).is_fleet:  # each actual to its member by ``fleet.by``
        from .fleet_feedback import fleet_feedback_frame

        record = fleet_feedback_frame
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
                total += record(
                    ws, model, chunk.frame, where=str(p), rejects=chunk.rejects, offset=moved,
                    fields=fields,
                )  # fmt: skip
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

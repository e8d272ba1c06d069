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
predictions, the choice among them is a vectorized as-of join, and the stored inputs the
matches point at are fetched in chunked queries, parsed once and gathered into one table,
never one request at a time.

The parts live in their own modules, all importable from here: recording a frame
(:mod:`~retrainer.lifecycle.feedback_record`), the join (:mod:`~retrainer.lifecycle.feedback_join`),
JSONL files and a followed log (:mod:`~retrainer.lifecycle.feedback_jsonl`), and the result
(:mod:`~retrainer.lifecycle.feedback_result`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.progress import Progress, current
from ..plumbing.tables import CHUNK_ROWS, file_format, iter_table
from ..plumbing.workspace import Workspace
from .feedback_fields import FieldMap
from .feedback_join import candidates, level_column, match, numeric_column, training_rows
from .feedback_jsonl import JsonlChunk, follow_feedback, jsonl_chunks, read_jsonl
from .feedback_record import join_late_predictions, model_classes, record_feedback
from .feedback_result import EMPTY, FeedbackResult
from .ingest import Reject, label_key

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EMPTY",
    "FeedbackResult",
    "JsonlChunk",
    "candidates",
    "feedback_file",
    "follow_feedback",
    "join_late_predictions",
    "label_key",
    "level_column",
    "match",
    "model_classes",
    "numeric_column",
    "read_jsonl",
    "record_feedback",
    "training_rows",
]


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
        chunks: Iterator[tuple[pd.DataFrame, list[Reject]]] = jsonl_chunks(p, chunk_rows)
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

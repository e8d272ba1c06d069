"""Deleting stored training rows: by source, by id, by event time; a dry run by default.

Bad rows that reached the store (a file ingested by mistake, labels that block every
training) are removed here, not by hand in the database: the rows and their keys go in one
transaction with an event in the model's history, so ``retrainer history`` shows who removed
what and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.fleet import check_single
from ..plumbing.workspace import Workspace


@dataclass(frozen=True)
class RowsDeleteResult:
    """What ``rows delete`` removed (or would remove, in a dry run)."""

    model: str
    dry_run: bool
    rows: int
    by_source: dict[str, int]
    segments: int
    filters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "by_source": self.by_source,
            "segments": self.segments,
            "filters": self.filters,
        }


def delete_rows(
    ws: Workspace,
    model: str,
    *,
    source: str | None = None,
    ids: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = True,
    triggered_by: str = "manual",
) -> RowsDeleteResult:
    """Delete the training rows of ``model`` that meet every filter given (at least one).

    ``source`` is where rows came from (``file``, ``api``, ``feedback``, ...); ``ids`` are
    entity ids; ``since``/``until`` bound the event time, [since, until). A dry run (the
    default) counts and changes nothing.
    """
    check_single(ws.model_spec(model), "rows")
    if source is None and ids is None and since is None and until is None:
        raise InputError(
            f"Say which rows of {model!r} to delete: --source, --ids FILE, --since or --until "
            "(rows must meet every filter given). Nothing was deleted."
        )
    if since is not None and until is not None and since >= until:
        raise InputError(
            f"--since {since:%Y-%m-%d %H:%M:%S} is not before --until "
            f"{until:%Y-%m-%d %H:%M:%S}; no row can be in between. Swap or widen them."
        )
    if source is not None:
        known = ws.store.row_sources(model)
        if source not in known:
            listed = ", ".join(f"{k} ({v} rows)" for k, v in known.items()) or "none"
            raise InputError(
                f"Model {model!r} has no training rows from source {source!r}. Sources: {listed}.",
                source=source,
            )
    filters = {
        k: v
        for k, v in {
            "source": source,
            "ids": None if ids is None else len(ids),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }.items()
        if v is not None
    }
    words = ", ".join(f"{k}={v}" for k, v in filters.items())
    done = ws.store.delete_rows(
        model,
        source=source,
        ids=ids,
        since=since,
        until=until,
        dry_run=dry_run,
        reason=f"training rows deleted ({words})",
        by=triggered_by,
    )
    return RowsDeleteResult(model, dry_run, done.rows, done.by_source, done.segments, filters)


def read_ids(ws: Workspace, model: str, path: str | Path) -> list[str]:
    """Entity ids from a file: a text file of one id per line (``.txt``, or no suffix), or a
    CSV, Parquet or JSONL file with the spec's id column."""
    from ..plumbing.tables import FORMATS, iter_table
    from .ingest import id_texts

    p = Path(path)
    if not p.exists():
        raise InputError(f"File {str(p)!r} does not exist.", path=str(p))
    suffixes = [s.lower() for s in p.suffixes if s.lower() != ".gz"]
    if not suffixes or suffixes[-1] not in FORMATS:
        lines = p.read_text(encoding="utf-8").splitlines()
        found = [line.strip() for line in lines if line.strip()]
        if not found:
            raise InputError(f"{p}: holds no ids (one per line expected).")
        return list(dict.fromkeys(found))
    column = ws.model_spec(model).id_column
    out: list[str] = []
    for chunk in iter_table(p):
        if column not in chunk.columns:
            have = [c for c in chunk.columns if not c.startswith("__")]
            raise InputError(
                f"{p}: has no column {column!r} (the spec's id column of {model!r}); it has "
                f"{have}. Rename the column, or give a text file of one id per line."
            )
        out += id_texts(chunk[column].dropna()).tolist()
    return list(dict.fromkeys(out))

"""Ingest labelled rows: validate, reject with line numbers, de-duplicate by id, one
transaction per file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.clock import utcnow
from ..core.errors import InputError
from ..core.spec import ModelSpec
from .tables import LINE, read_table
from .workspace import Workspace

MAX_REPORTED = 5


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str


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
    ws: Workspace, model: str, path: str | Path, *, source: str = "file"
) -> IngestResult:
    """Ingest a CSV, Parquet or JSONL file of labelled rows for ``model``."""
    spec = ws.model_spec(model)
    df = read_table(path)
    return ingest_frame(ws, model, df, source=source, where=str(path), spec=spec)


def ingest_frame(
    ws: Workspace,
    model: str,
    df: pd.DataFrame,
    *,
    source: str = "api",
    where: str = "data",
    spec: ModelSpec | None = None,
) -> IngestResult:
    spec = spec or ws.model_spec(model)
    if LINE not in df.columns:
        df = df.assign(**{LINE: range(1, len(df) + 1)})
    rows, rejects = prepare_rows(spec, df, where)
    if not rows:
        return IngestResult(0, 0, len(rejects), rejects[:MAX_REPORTED])
    inserted = ws.store.add_training_rows(model, rows)
    return IngestResult(inserted, len(rows) - inserted, len(rejects), rejects[:MAX_REPORTED])


def prepare_rows(
    spec: ModelSpec, df: pd.DataFrame, where: str
) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Validate a frame against the spec; returns storable rows and the rejected lines."""
    needed = [spec.id_column, spec.time_column, spec.target, *spec.feature_names]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        have = [c for c in df.columns if c != LINE]
        raise InputError(
            f"{where}: column(s) {missing} named in the spec for model {spec.name!r} are not in "
            f"the data. The data has {have}. Rename the columns or fix the spec.",
            missing=missing,
        )
    lines = df[LINE].to_numpy()
    times = pd.to_datetime(df[spec.time_column], errors="coerce", utc=True)
    reasons = pd.Series("", index=df.index, dtype=object)
    reasons[df[spec.id_column].isna()] = f"missing id ({spec.id_column})"
    reasons[(reasons == "") & times.isna()] = f"unparseable time in {spec.time_column!r}: " + df[
        spec.time_column
    ].astype(str).str.slice(0, 40)
    reasons[(reasons == "") & df[spec.target].isna()] = f"missing target ({spec.target})"
    target = df[spec.target]
    if spec.task == "regression":
        numeric_target = pd.to_numeric(target, errors="coerce")
        bad = (reasons == "") & numeric_target.isna()
        reasons[bad] = f"non-numeric target {spec.target!r}: " + target[bad].astype(str)
        target = numeric_target
    for col in spec.features.numeric:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = (reasons == "") & num.isna() & raw.notna()
        reasons[bad] = f"non-numeric value in feature {col!r}: " + raw[bad].astype(str)
    ok = (reasons == "").to_numpy()
    rejects = [Reject(int(lines[i]), str(reasons.iloc[i])) for i in np.flatnonzero(~ok)]
    good = df[ok]
    ids = good[spec.id_column].map(_id_text)
    keep = ~ids.duplicated(keep="last").to_numpy()
    good, ids = good[keep], ids[keep]
    event_times = times[ok][keep].dt.tz_localize(None)
    feats = good[spec.feature_names].astype(object).where(good[spec.feature_names].notna(), None)
    now = utcnow()
    rows = [
        {
            "entity_id": eid,
            "event_time": t.to_pydatetime(),
            "target": _scalar(y),
            "features": {k: _scalar(v) for k, v in f.items()},
            "source": "file" if where != "data" else "api",
            "ingested_at": now,
        }
        for eid, t, y, f in zip(
            ids, event_times, target[ok][keep], feats.to_dict("records"), strict=True
        )
    ]
    return rows, rejects


def _id_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v

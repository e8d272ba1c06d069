"""Batch prediction from a file with the champion (or a chosen version)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.clock import utcnow
from ..core.errors import NoChampion
from ..store.convert import jsonsafe
from .predictor import Predictor, load_predictor
from .tables import LINE, read_table
from .workspace import Workspace


@dataclass(frozen=True)
class BatchResult:
    version: str
    rows: int
    out: str
    request_id: str


def resolve_predictor(ws: Workspace, model: str, version: str | None = None) -> Predictor:
    ws.model_spec(model)
    if version is None:
        version = ws.store.roles(model).champion
        if version is None:
            raise NoChampion(
                f"Model {model!r} has no champion yet. Train and deploy one: "
                f"`retrainer train {model} --deploy`."
            )
    return load_predictor(ws, ws.store.get_version(model, version))


def predict_frame(predictor: Predictor, df: pd.DataFrame) -> pd.DataFrame:
    """The input with ``prediction`` (and ``proba_<class>`` columns for classifiers)."""
    labels, proba = predictor.predict(df)
    out = df.drop(columns=[LINE], errors="ignore").copy()
    out["prediction"] = labels
    if proba is not None:
        for j, cls in enumerate(predictor.model.classes_):
            out[f"proba_{cls}"] = proba[:, j]
    return out


def prediction_records(
    ws: Workspace,
    model: str,
    predictor: Predictor,
    df: pd.DataFrame,
    result: pd.DataFrame,
    request_id: str,
    arm: str = "champion",
) -> list[dict[str, Any]]:
    spec = ws.model_spec(model)
    ids = df[spec.id_column].astype(str).tolist() if spec.id_column in df else [None] * len(df)
    feats = df[spec.feature_names].astype(object).where(df[spec.feature_names].notna(), None)
    proba_col = None
    if predictor.task == "classification" and len(predictor.model.classes_) == 2:
        proba_col = f"proba_{predictor.model.classes_[1]}"
    now = utcnow()
    return [
        {
            "model": model,
            "request_id": request_id,
            "entity_id": eid,
            "version": predictor.version.version,
            "arm": arm,
            "features": json.dumps(f, default=str),
            "output": jsonsafe(out),
            "proba": float(p) if p is not None else None,
            "created_at": now,
        }
        for eid, f, out, p in zip(
            ids,
            feats.to_dict("records"),
            result["prediction"],
            result[proba_col] if proba_col else [None] * len(df),
            strict=True,
        )
    ]


def predict_file(
    ws: Workspace,
    model: str,
    input_path: str | Path,
    out_path: str | Path,
    *,
    version: str | None = None,
) -> BatchResult:
    predictor = resolve_predictor(ws, model, version)
    df = read_table(input_path)
    result = predict_frame(predictor, df)
    out = Path(out_path)
    if out.suffix.lower() in (".parquet", ".pq"):
        result.to_parquet(out, index=False)
    elif out.suffix.lower() in (".jsonl", ".ndjson"):
        result.to_json(out, orient="records", lines=True)
    else:
        result.to_csv(out, index=False)
    request_id = uuid.uuid4().hex
    ws.store.log_predictions(prediction_records(ws, model, predictor, df, result, request_id))
    return BatchResult(predictor.version.version, len(result), str(out), request_id)

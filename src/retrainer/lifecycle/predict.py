"""Batch prediction from a file with the champion (or a chosen version)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.clock import utcnow
from ..core.errors import NoChampion
from ..core.spec import ModelSpec
from ..store.convert import jsonsafe
from ..store.predlog import request_record
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
    *,
    created_at: datetime | None = None,
    input_key: str | None = None,
    inputs: str | bool = True,
    input_rows: list[int] | None = None,
) -> dict[str, Any]:
    """One prediction record (``store.predlog``) for a frame scored by ``predictor``.

    By default the record stores ``df``'s feature values as its input. To share one stored
    input between records (arms scoring rows of the same request), give the input's text to
    one of them (``inputs=text``), ``inputs=False`` to the others, the same ``input_key`` to
    all, and each one's row positions in that input (``input_rows``)."""
    spec = ws.model_spec(model)
    ids = df[spec.id_column].astype(str).tolist() if spec.id_column in df else [None] * len(df)
    text = inputs_text(spec, df) if inputs is True else inputs or None
    proba_col = None
    if predictor.task == "classification" and len(predictor.model.classes_) == 2:
        proba_col = f"proba_{predictor.model.classes_[1]}"
    return request_record(
        model,
        request_id,
        predictor.version.version,
        arm,
        created_at or utcnow(),
        text,
        ids,
        [jsonsafe(out) for out in result["prediction"]],
        [float(p) if p is not None else None for p in result[proba_col]] if proba_col else None,
        input_key=input_key,
        input_rows=input_rows,
    )


def inputs_text(spec: ModelSpec, df: pd.DataFrame) -> str:
    """The stored input text of a frame's feature values (missing values as null)."""
    feats = df[spec.feature_names].astype(object).where(df[spec.feature_names].notna(), None)
    return json.dumps({"rows": feats.to_dict("records")}, default=str)


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
    ws.store.log_predictions([prediction_records(ws, model, predictor, df, result, request_id)])
    return BatchResult(predictor.version.version, len(result), str(out), request_id)

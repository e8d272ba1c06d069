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
    outputs, probas = record_outputs(predictor, result)
    return request_record(
        model,
        request_id,
        predictor.version.version,
        arm,
        created_at or utcnow(),
        text,
        ids,
        outputs,
        probas,
        input_key=input_key,
        input_rows=input_rows,
    )


def record_outputs(
    predictor: Predictor, result: pd.DataFrame
) -> tuple[list[Any], list[float | None] | None]:
    """What a prediction record stores of ``predict_frame``'s result: the JSON-safe outputs
    and, for a binary classifier, the positive class's probability per row."""
    outputs = [jsonsafe(out) for out in result["prediction"]]
    if predictor.task != "classification" or len(predictor.model.classes_) != 2:
        return outputs, None
    col = result[f"proba_{predictor.model.classes_[1]}"]
    return outputs, [float(p) if p is not None else None for p in col]


def input_dicts(spec: ModelSpec, df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's feature values as one dict per row, missing values as ``None``.

    >>> from retrainer.core.spec import ModelSpec
    >>> spec = ModelSpec(task="classification", target="y", id_column="id",
    ...     time_column="t", features={"numeric": ["a"]})
    >>> input_dicts(spec, pd.DataFrame({"a": [1.5, None]}))
    [{'a': 1.5}, {'a': None}]
    """
    feats = df[spec.feature_names].astype(object).where(df[spec.feature_names].notna(), None)
    return feats.to_dict("records")  # type: ignore[return-value]


def inputs_text(spec: ModelSpec, df: pd.DataFrame | list[dict[str, Any]]) -> str:
    """The stored input text of a frame's feature values (missing values as null), or of
    rows already taken out with :func:`input_dicts`."""
    rows = input_dicts(spec, df) if isinstance(df, pd.DataFrame) else df
    return json.dumps({"rows": rows}, default=str)


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

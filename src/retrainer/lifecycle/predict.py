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
from ..core.errors import InputError, NoChampion
from ..core.files import atomic_output
from ..core.spec import ModelSpec
from ..plumbing.tables import CHUNK_ROWS, LINE, iter_table
from ..plumbing.workspace import Workspace
from ..store.convert import jsonsafe
from ..store.predlog import PredictionRecord, request_record
from .history import SequenceInput, as_sequence, sequence_input
from .predictor import Predictor, load_predictor
from .time_inputs import fill_inputs, of_model


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


def _fleet(ws: Workspace, model: str, version: str | None) -> bool:
    """Whether ``model`` is a fleet (whose rows go to its members); a version is a member's."""
    if not ws.model_spec(model).is_fleet:
        return False
    if version is not None:
        raise InputError(
            f"Model {model!r} is a fleet: each row is scored by its member's champion, so "
            f"--version does not apply. Score one member's version with `{model}.<key>`."
        )
    return True


def predict_frame(
    predictor: Predictor, df: pd.DataFrame, seq: SequenceInput | None = None
) -> pd.DataFrame:
    """The input with ``prediction`` (and ``proba_<class>`` columns for classifiers;
    ``lower`` and ``upper`` bounds for a regression with a calibrated interval). A sequence
    model scores ``seq`` (its entities' history, then ``df``'s rows: :mod:`.history`) and
    adds a ``cold_start`` column.

    It only scores: nothing is logged, so no actual will ever join these predictions. To
    score traffic whose outcomes come back, use :func:`predict_rows` (logged by default)."""
    made = of_model(predictor.model).columns  # inputs made from time: not outputs
    missing = [c for c in made if c not in df.columns]
    if missing:
        v = predictor.version
        raise InputError(
            f"Version {v.model} {v.version} learnt inputs made from time ({', '.join(missing)}), "
            "which retrainer fills from its store and each row's time; predict_frame scores a "
            "frame as given. Score with predict_rows(ws, model, frame, log=False) or "
            "`retrainer predict`, which fill them, or add the columns yourself.",
            missing=missing,
        )
    if seq is None:
        labels, proba = predictor.predict(df)
    else:
        labels, proba = seq.pick(*predictor.predict(seq.frame))
    out = df.drop(columns=[LINE, *made], errors="ignore").copy()
    out["prediction"] = labels
    if seq is not None:
        out["cold_start"] = seq.cold_start
    if predictor.interval is not None:
        out["lower"], out["upper"] = predictor.interval.bounds(labels)
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
    inputs: str | bytes | bool = True,
    input_rows: list[int] | None = None,
) -> PredictionRecord:
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
    said = result["prediction"]
    if pd.api.types.is_numeric_dtype(said) and not pd.api.types.is_bool_dtype(said):
        outputs = said.tolist()  # numbers as Python numbers; the log writes NaN as null
    else:
        safe = {u: jsonsafe(u) for u in said.unique()}  # class labels: a few distinct values
        outputs = said.map(safe).tolist()
    if predictor.task != "classification" or len(predictor.model.classes_) != 2:
        return outputs, None
    col = result[f"proba_{predictor.model.classes_[1]}"]
    return outputs, pd.to_numeric(col, errors="coerce").astype(float).tolist()


def input_dicts(spec: ModelSpec, df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's feature values (and its time column, when sent: a row's identity) as one
    dict per row, missing values as ``None``.

    >>> from retrainer.core.spec import ModelSpec
    >>> spec = ModelSpec(task="classification", target="y", id_column="id",
    ...     time_column="t", features={"numeric": ["a"]})
    >>> input_dicts(spec, pd.DataFrame({"a": [1.5, None]}))
    [{'a': 1.5}, {'a': None}]
    """
    cols = [c for c in spec.stored_features.all if c in df.columns]  # every set's columns
    cols += [spec.time_column] if spec.time_column in df.columns else []  # the row's identity
    feats = df[cols].astype(object).where(df[cols].notna(), None)
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
    chunk_rows: int = CHUNK_ROWS,
) -> BatchResult:
    """Score a file with the champion (or ``version``), ``chunk_rows`` at a time, and log the
    predictions: one request, each chunk's feature columns stored once as Parquet. The output
    file appears whole when every row is scored (written to a temporary name, then renamed).
    A fleet's rows are routed to its members by ``fleet.by`` (:mod:`.fleet_predict`)."""
    if _fleet(ws, model, version):
        from .fleet_predict import fleet_predict_file

        return fleet_predict_file(ws, model, input_path, out_path, chunk_rows=chunk_rows)
    predictor = resolve_predictor(ws, model, version)
    request_id = uuid.uuid4().hex
    out = Path(out_path)
    rows = 0
    with _OutputFile(out) as sink:
        for df in iter_table(input_path, chunk_rows):
            result = score_chunk(ws, model, predictor, df, request_id)
            sink.write(result)
            rows += len(result)
    return BatchResult(predictor.version.version, rows, str(out), request_id)


def score_chunk(
    ws: Workspace, model: str, predictor: Predictor, df: pd.DataFrame, request_id: str | None
) -> pd.DataFrame:
    """``predict_frame`` of one chunk, logged as part of request ``request_id`` (its feature
    columns stored once as Parquet) so that feedback joins it; ``None``: not logged."""
    sequence = as_sequence(predictor.model)
    seq = None if sequence is None else sequence_input(ws, model, sequence, df)
    inputs = fill_inputs(ws, ws.model_spec(model), predictor.model, df)  # any it learnt
    result = predict_frame(predictor, inputs, seq)
    if request_id is not None:
        inputs = batch_inputs(ws.model_spec(model), df)
        record = prediction_records(ws, model, predictor, df, result, request_id, inputs=inputs)
        ws.store.log_predictions([record])
    return result


@dataclass(frozen=True)
class ScoredFrame:
    """A frame scored by :func:`predict_rows`: the rows with their predictions, the version
    that scored them and the logged request's id (None when not logged)."""

    frame: pd.DataFrame
    version: str
    request_id: str | None


def predict_rows(
    ws: Workspace,
    model: str,
    df: pd.DataFrame,
    *,
    version: str | None = None,
    log: bool = True,
    chunk_rows: int = CHUNK_ROWS,
) -> ScoredFrame:
    """Score a frame with the champion (or ``version``) and, unless ``log`` is false, log the
    predictions as one request (as ``predict_file`` and the server do), so that the actuals
    recorded later by feedback join them. Rows are logged ``chunk_rows`` at a time. A
    fleet's rows are routed to its members by ``fleet.by`` (:mod:`.fleet_predict`)."""
    if _fleet(ws, model, version):
        from .fleet_predict import fleet_predict_rows

        return fleet_predict_rows(ws, model, df, log=log, chunk_rows=chunk_rows)
    predictor = resolve_predictor(ws, model, version)
    if df.empty:
        raise InputError(
            f"Nothing to predict for model {model!r}: the frame has no rows. Pass the rows to "
            f"score with the spec's feature columns."
        )
    request_id = uuid.uuid4().hex if log else None
    parts = [
        score_chunk(ws, model, predictor, df.iloc[i : i + chunk_rows], request_id)
        for i in range(0, len(df), chunk_rows)
    ]
    return ScoredFrame(pd.concat(parts), predictor.version.version, request_id)


def batch_inputs(spec: ModelSpec, df: pd.DataFrame) -> bytes:
    """A batch's feature columns as the Parquet bytes its stored input holds."""
    import pyarrow as pa

    from ..store.segments import encode

    present = [c for c in spec.stored_features.all if c in df.columns]
    present += [spec.time_column] if spec.time_column in df.columns else []  # the row's identity
    return encode(pa.Table.from_pandas(df[present], preserve_index=False))


class _OutputFile:
    """Scored chunks appended to a CSV, Parquet or JSONL file under a temporary name, renamed
    into place on success and removed on failure (see ``core.files.atomic_output``: a device
    such as /dev/stdout is written in place)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._target = atomic_output(path, what="predict --out")
        self.tmp = path
        suffix = path.suffix.lower()
        self.kind = (
            "parquet" if suffix in (".parquet", ".pq") else
            "jsonl" if suffix in (".jsonl", ".ndjson") else "csv"
        )  # fmt: skip
        self._writer: Any = None
        self._schema: Any = None

    def __enter__(self) -> _OutputFile:
        self.tmp = self._target.__enter__()
        return self

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        if self.kind == "jsonl":
            with self.tmp.open("a") as fh:
                frame.to_json(fh, orient="records", lines=True)
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.tmp, self._schema)
            else:
                import pyarrow.csv as pcsv

                self._writer = pcsv.CSVWriter(self.tmp, self._schema)
        elif table.schema != self._schema:
            table = _conform(table, self._schema)
        self._writer.write_table(table)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._target.__exit__(exc_type, exc, tb)


def _conform(table: Any, schema: Any) -> Any:
    """A chunk's table in the first chunk's schema (a column all missing in one chunk, or read
    as integers in one and as floats in another)."""
    import pyarrow as pa

    columns = []
    for f in schema:
        col = table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows)
        try:
            columns.append(col.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"Column {f.name!r} holds {col.type} values in a later part of the input but "
                f"{f.type} values in its first rows. Give the column one type throughout."
            ) from None
    return pa.table(columns, schema=schema)

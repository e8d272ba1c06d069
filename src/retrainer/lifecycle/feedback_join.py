"""The join of actuals to logged predictions: which prediction each actual labels, and the
training row (the input that prediction scored, labelled) it adds.

An actual joins the prediction of its entity id. When an id was scored more than once, it joins
the prediction of its own row, the one scored with the same id and time column value (a row's
identity is its id and time: a forecast of many hours of one place joins hour by hour); else
the prediction nearest before the actual's event time (the earliest one when all are after it,
the newest one when the feedback has no time). Served predictions are preferred over shadow
ones.

All of it is set-based and linear in the batch: one query per chunk of entity ids finds their
predictions (``FeedbackStore.prediction_candidates``), the choice among them is a vectorized
as-of join, and the logged inputs the matches point at are read in chunked queries, each parsed
once, and gathered into one Arrow table (``FeedbackStore.input_table``): nothing per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.spec import ModelSpec
from ..plumbing.workspace import Workspace
from .ingest import level_texts, parse_times

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["candidates", "level_column", "match", "numeric_column", "training_rows"]


def training_rows(
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

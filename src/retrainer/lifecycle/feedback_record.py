"""Recording actuals: validated, joined to the logged predictions (see
:mod:`retrainer.lifecycle.feedback_join`) and stored with the training rows they add, in one
transaction; and the late join of actuals stored before their prediction was logged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.clock import utcnow
from ..core.durations import parse_duration
from ..core.errors import InputError, RetrainerError
from ..core.spec import ModelSpec
from ..plumbing.tables import LINE
from ..plumbing.workspace import Workspace
from ..store.feedback import FeedbackOffset
from ..store.monitor_store import Folder
from .feedback_fields import FieldMap
from .feedback_join import candidates, match, training_rows
from .feedback_result import FeedbackResult
from .ingest import MAX_REPORTED, Reasons, Reject, check_labels, id_texts, parse_times

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

__all__ = ["join_late_predictions", "model_classes", "record_feedback"]


def record_feedback(
    ws: Workspace,
    model: str,
    frame: pd.DataFrame,
    *,
    where: str = "data",
    rejects: Sequence[Reject] = (),
    offset: FeedbackOffset | None = None,
    conn: Connection | None = None,
    fields: FieldMap | None = None,
) -> FeedbackResult:
    """Join actual outcomes (the spec's id and target columns, optionally its time column) to
    the logged predictions and store them in one transaction; bad rows are rejected with their
    line numbers and the rest goes in. Calling it twice with the same rows changes nothing.

    ``rejects`` are lines already refused while reading (e.g. invalid JSON); ``offset`` moves a
    followed source's position in the same transaction; ``conn``: a write transaction of the
    caller's (holding the model's lock) to store in, e.g. one for a whole file; ``fields``:
    the source's names for the spec's id, target and time columns.
    """
    import numpy as np
    import pandas as pd

    spec = ws.model_spec(model)
    if fields is not None:
        frame = fields.apply(frame, spec, where)
    if LINE not in frame.columns:
        frame = frame.assign(**{LINE: range(1, len(frame) + 1)})
    actuals, bad = _validate(spec, frame, where, model_classes(ws, spec))
    bad = [*rejects, *bad]
    received = len(frame) + len(rejects)
    unique = actuals.drop_duplicates(["entity_id", "event_time"], keep="last")
    unique = unique.reset_index(drop=True)
    codes, entities = pd.factorize(unique["entity_id"])
    decoded: dict[str, Any] = {}  # the logged inputs parsed in this call, by key: each once
    chosen = match(candidates(ws, model, entities.tolist(), decoded), unique, codes)
    stored = unique.assign(prediction_id=chosen["id"].astype("Int64"))
    training = training_rows(ws, spec, unique, chosen, decoded)
    recorded = ws.store.record_actuals(model, stored, training, offset, conn=conn)
    fresh = recorded.inserted
    matched = int((fresh & chosen["id"].notna().to_numpy()).sum())
    n_stored = int(np.count_nonzero(fresh))
    return FeedbackResult(
        received=received,
        matched=matched,
        unmatched=n_stored - matched,
        duplicates=len(actuals) - n_stored,
        rejected=len(bad),
        first_rejects=sorted(bad, key=lambda r: r.line)[:MAX_REPORTED],
        training_rows_added=recorded.training_rows_added,
    )


def model_classes(ws: Workspace, spec: ModelSpec) -> list[Any] | None:
    """The class labels a classifier's feedback must use: the champion's (or the newest
    version's when none serves); None for a regression or a model with no version yet."""
    if spec.task != "classification":
        return None
    name = ws.store.roles(spec.name).champion
    if name is None:
        versions = ws.store.list_versions(spec.name, include_deleted=False)
        if not versions:
            return None
        name = versions[-1].version
    try:
        return ws.classes(spec.name, name) or None
    except RetrainerError:
        return None


def _validate(
    spec: ModelSpec, df: pd.DataFrame, where: str, classes: list[Any] | None
) -> tuple[pd.DataFrame, list[Reject]]:
    """The valid actuals (``entity_id``, ``event_time`` or NaT, ``value``) and the rejects."""
    import pandas as pd

    missing = [c for c in (spec.id_column, spec.target) if c not in df.columns]
    if missing:
        have = [c for c in df.columns if c != LINE]
        raise InputError(
            f"{where}: feedback for model {spec.name!r} needs column(s) {missing} (the spec's "
            f"id and target columns). The data has {have}. Rename the columns or fix the spec.",
            missing=missing,
        )
    rs = Reasons(df.index)
    rs.flag_ids(df[spec.id_column], spec.id_column)
    target = df[spec.target]
    rs.flag(target.isna(), f"missing target ({spec.target})")
    values, why = check_labels(spec, target, classes)
    rs.flag(df.index.isin(why.index), why)
    if spec.time_column in df.columns:
        raw = df[spec.time_column]
        times = parse_times(raw)
        unparsed = times.isna() & raw.notna()
        if unparsed.any():
            rs.flag(
                unparsed, f"unparseable time in {spec.time_column!r}: " + raw.astype(str).str[:40]
            )
        event = times.dt.tz_localize(None).astype("datetime64[us]")
    else:
        event = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us]")
    ok = rs.ok
    rejects = rs.rejects(df[LINE].to_numpy())
    actuals = pd.DataFrame(
        {
            "entity_id": id_texts(df[spec.id_column][ok]),
            "event_time": event[ok],
            "value": values[ok],
        }
    ).reset_index(drop=True)
    return actuals, rejects


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
    import pandas as pd

    spec = ws.model_spec(model)
    now = now or utcnow()
    since = now - parse_duration(spec.monitor.late_join, what="monitor.late_join")
    waiting = ws.store.unmatched_actuals(model, since)
    if not waiting:
        return 0
    actuals = pd.DataFrame(
        {
            "entity_id": [w.entity_id for w in waiting],
            "event_time": pd.to_datetime([w.event_time for w in waiting]).astype("datetime64[us]"),
            "value": [w.value for w in waiting],
            "received_at": pd.to_datetime([w.received_at for w in waiting]),
        }
    )
    codes, entities = pd.factorize(actuals["entity_id"])
    decoded: dict[str, Any] = {}  # each logged input parsed once, for times and rows
    cands = candidates(ws, model, entities.tolist(), decoded)
    parts = [
        match(cands[cands["created_at"] <= received], group, codes[group.index.to_numpy()])
        for received, group in actuals.groupby("received_at", sort=False)
    ]
    chosen = pd.concat(parts).reindex(actuals.index)
    hit = chosen["id"].notna().to_numpy()
    if not hit.any():
        return 0
    links = [
        (waiting[i].segment, waiting[i].row, int(chosen["id"].iloc[i]))
        for i in range(len(waiting))
        if hit[i]
    ]
    found = actuals[hit].reset_index(drop=True)
    training = training_rows(ws, spec, found, chosen[hit].reset_index(drop=True), decoded)
    return ws.store.link_actuals(model, links, training, fold_pairs)

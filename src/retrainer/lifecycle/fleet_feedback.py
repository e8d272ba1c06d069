"""Feedback for a fleet: actuals that carry the fleet's ``by`` column, routed to each member's
:func:`~retrainer.lifecycle.feedback.record_feedback` (joined to that member's logged
predictions, stored as its training rows).

All of a call's valid actuals go in, for every member, or none: one write transaction holding
the registry locks of the members named (a file is read twice: once for the members it
names, once to record). An actual whose ``by`` value is missing, or names an entity with no
member (no rows ingested for it, so no prediction of it can exist), is rejected with its line.
A followed JSONL log's position and an HTTP feed's since-cursor are kept under the fleet's
name, moved in the same transaction as the actuals read up to them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.fleet import member_names, require_by
from ..core.spec import ModelSpec
from ..plumbing.tables import CHUNK_ROWS, LINE, iter_table
from ..plumbing.workspace import Workspace
from .feedback import EMPTY, FeedbackResult, record_feedback
from .feedback_fields import FieldMap
from .ingest import MAX_REPORTED, Reject, id_texts

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

    from ..store.feedback import FeedbackOffset


def fleet_feedback_frame(
    ws: Workspace,
    fleet: str,
    frame: pd.DataFrame,
    *,
    where: str = "data",
    rejects: Sequence[Reject] = (),
    fields: FieldMap | None = None,
    offset: FeedbackOffset | None = None,
    state: tuple[str, dict[str, Any]] | None = None,
) -> FeedbackResult:
    """Record the actuals of ``frame`` for fleet ``fleet``'s members, all or none.

    ``rejects``: lines already refused while reading (invalid JSON); ``fields``: the source's
    names for the spec's id, target and time columns; ``offset`` (a followed log's position)
    and ``state`` (a model-state key and value: an HTTP feed's cursor) are stored under the
    fleet's name in the same transaction as the actuals."""
    spec = ws.model_spec(fleet)
    if fields is not None:
        frame = fields.apply(frame, spec, where)
    if LINE not in frame.columns:
        frame = frame.assign(**{LINE: range(1, len(frame) + 1)})
    members = _members(spec, frame, where)
    known = set(ws.members(fleet))
    read = FeedbackResult(len(rejects), 0, 0, 0, len(rejects), _first(list(rejects)))
    with ws.store.write_models(sorted(set(members.dropna()) & known)) as conn:
        total = read + _record(ws, spec, frame, members, known, where, conn)
        if offset is not None:
            ws.store.save_offset(conn, fleet, offset)
        if state is not None:
            ws.store.put_state(fleet, state[0], None, state[1], conn=conn)
    return total


def fleet_feedback_file(
    ws: Workspace, fleet: str, path: str | Path, *, chunk_rows: int = CHUNK_ROWS,
    fields: FieldMap | None = None,
) -> FeedbackResult:  # fmt: skip
    """Record the actuals of a CSV, Parquet or JSONL file for fleet ``fleet``'s members, all
    or none, ``chunk_rows`` at a time; ``fields`` maps the file's names onto the spec's id,
    target and time columns."""
    spec = ws.model_spec(fleet)
    p = Path(path)

    def chunks() -> Iterator[pd.DataFrame]:
        for df in iter_table(p, chunk_rows):
            yield df if fields is None else fields.apply(df, spec, str(p))

    named: set[str] = set()
    for df in chunks():  # which members' locks the transaction needs
        named.update(_members(spec, df, str(p)).dropna().unique().tolist())
    known = set(ws.members(fleet))
    total = EMPTY
    with ws.store.write_models(sorted(named & known)) as conn:
        for df in chunks():
            total += _record(ws, spec, df, _members(spec, df, str(p)), known, str(p), conn)
    return total


def _members(spec: ModelSpec, frame: pd.DataFrame, where: str) -> pd.Series:
    """Each actual's member name (None where the ``by`` value is missing)."""
    fix = f"Add the column, or send one member's actuals to `{spec.name}.<key>`."
    columns = frame.columns.drop(LINE, errors="ignore")
    by = require_by(spec, columns, where, "names the member each actual belongs to", fix)
    return member_names(spec.name, id_texts(frame[by]))


def _record(
    ws: Workspace,
    spec: ModelSpec,
    frame: pd.DataFrame,
    members: pd.Series,
    known: set[str],
    where: str,
    conn: Connection,
) -> FeedbackResult:
    assert spec.fleet is not None
    by = spec.fleet.by
    lines = frame[LINE].to_numpy()
    missing = members.isna().to_numpy()
    unknown = ~missing & ~members.isin(known).to_numpy()
    rejects = [Reject(int(x), f"missing fleet member ({by})") for x in lines[missing]]
    rejects += [
        Reject(int(x), f"no member {m!r} for this {by!r} (no rows of it were ingested)")
        for x, m in zip(lines[unknown], members[unknown], strict=True)
    ]
    total = FeedbackResult(len(rejects), 0, 0, 0, len(rejects), _first(rejects))
    ok = ~(missing | unknown)
    for member, rows in frame[ok].groupby(members[ok], sort=True):
        total += record_feedback(ws, str(member), rows.drop(columns=[by]), where=where, conn=conn)
    return total


def _first(rejects: list[Reject]) -> list[Reject]:
    return sorted(rejects, key=lambda r: r.line)[:MAX_REPORTED]

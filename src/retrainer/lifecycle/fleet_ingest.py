"""Ingest for a fleet: each chunk validated once, split by the ``by`` column, and staged for
the members it names; the run becomes visible for every member in one transaction.

One run covers the whole file, as for a single model: all of its valid rows (of every
member) or none. A chunk costs one validation and one write transaction whatever the number
of members; a member is created by its first rows (see :mod:`retrainer.core.fleet`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..core.fleet import member_name, require_by
from ..core.progress import Progress
from ..core.spec import ModelSpec
from ..plumbing.workspace import Workspace
from ..store.rows import ROWS
from .ingest import (
    MAX_REPORTED,
    MEMBER,
    IngestResult,
    Reject,
    _Run,
    labels_kind,
    prepare_frame,
    repeated,
    stored_labels_kind,
)

if TYPE_CHECKING:
    import pandas as pd


def ingest_fleet(
    ws: Workspace,
    spec: ModelSpec,
    chunks: Iterable[pd.DataFrame],
    where: str,
    source: str,
    progress: Progress,
) -> IngestResult:
    """Store the labelled rows of ``chunks`` for fleet ``spec``'s members, all or none."""
    assert spec.fleet is not None
    by, fleet = spec.fleet.by, spec.name
    known_members = ws.members(fleet)
    kind = stored_labels_kind(ws, known_members[0]) if known_members else None
    inserted = duplicates = rejected = 0
    rejects: list[Reject] = []
    staged: dict[str, int] = defaultdict(int)
    known: dict[str, set[int]] = {}
    with _Run(ws, fleet, fleet=True) as run:
        for df in chunks:
            require_by(spec, df.columns, where, "names the member each row belongs to",
                       "Add the column, or ingest one member's rows with "
                       f"`retrainer ingest {fleet}.<key> FILE`.")  # fmt: skip
            if kind is None and spec.target in df.columns:
                kind = labels_kind(spec, df[spec.target])
            frame, bad = prepare_frame(spec, df, where, labels=kind, member_column=by)
            duplicates += repeated(df, frame, bad)
            rejected += len(bad)
            rejects = (rejects + bad)[:MAX_REPORTED]
            with ws.store.write() as conn:  # no model lock: staged rows are the run's own
                for entity, rows in frame.groupby(MEMBER, sort=False):
                    member = member_name(fleet, str(entity))
                    if member not in known:
                        known[member] = {s.id for s in ws.store.segments(member, ROWS, conn=conn)}
                    added = ws.store.append_rows(
                        conn, member, rows.drop(columns=MEMBER), source, stage=run.id, unique=True
                    )
                    staged[member] += added.inserted
                    inserted += added.inserted
                    duplicates += added.duplicates
            run.alive()
            progress.advance(len(df))
        progress.stage("publish")
        late = 0
        with ws.store.write_models(list(staged)) as conn:
            for member in sorted(staged):
                late += ws.store.publish_rows(
                    conn, member, run.id, source, known[member], staged[member]
                )
        run.published = True
    progress.done()
    return IngestResult(inserted - late, duplicates + late, rejected, rejects)

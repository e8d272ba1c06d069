"""Batch predict for a fleet: rows that carry the fleet's ``by`` column, each scored by its
member's champion and logged under the member's name (so its feedback joins per member).

Each chunk is grouped by member once (one factorize of the column); the output keeps the
input's row order and adds ``member`` and ``member_version`` columns. Every member a chunk
names must have a champion before any of the chunk is scored: else a NoChampion names the
entities and the fix (a row that cannot be scored is no prediction to hand back).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InputError, NoChampion
from ..core.fleet import member_name, require_by
from ..core.spec import ModelSpec
from ..plumbing.tables import CHUNK_ROWS, iter_table
from ..plumbing.workspace import Workspace
from .ingest import id_texts
from .predictor import Predictor

if TYPE_CHECKING:
    import pandas as pd

    from .predict import BatchResult, ScoredFrame

MAX_NAMED = 10
MEMBER, MEMBER_VERSION = "member", "member_version"


class Members:
    """The champions of a fleet's members, each resolved (and loaded) once per call."""

    def __init__(self, ws: Workspace, spec: ModelSpec) -> None:
        self.ws, self.spec = ws, spec
        self.known = set(ws.members(spec.name))
        self.loaded: dict[str, Predictor] = {}

    def resolve(self, names: list[str], entities: list[str]) -> None:
        """Load the champions of ``names``; NoChampion naming every entity without one."""
        from .predict import resolve_predictor

        problems = []
        for name, entity in zip(names, entities, strict=True):
            if name in self.loaded:
                continue
            if name not in self.known:
                problems.append(f"{entity!r}: no member {name!r} (no rows of it were ingested)")
                continue
            try:
                self.loaded[name] = resolve_predictor(self.ws, name)
            except NoChampion:
                problems.append(f"{entity!r}: member {name!r} has no champion")
        if problems:
            more = f" and {len(problems) - MAX_NAMED} more" if len(problems) > MAX_NAMED else ""
            raise NoChampion(
                f"Fleet {self.spec.name!r} cannot score every row: "
                f"{'; '.join(problems[:MAX_NAMED])}{more}. Ingest an entity's rows "
                f"(`retrainer ingest {self.spec.name} FILE`) and train its member "
                f"(`retrainer train {self.spec.name}.<key> --deploy`), or leave its rows out.",
                count=len(problems),
            )


def score_fleet_chunk(
    ws: Workspace, members: Members, df: pd.DataFrame, request_id: str | None
) -> pd.DataFrame:
    """One chunk scored member by member (each group logged under its member), in the
    chunk's row order, with ``member`` and ``member_version`` columns."""
    import numpy as np
    import pandas as pd

    from .predict import score_chunk

    spec = members.spec
    assert spec.fleet is not None
    by = require_by(spec, df.columns, "data", "names the member that scores each row",
                    f"Add it, or predict with one member, `{spec.name}.<key>`.")  # fmt: skip
    keys = id_texts(df[by])
    if keys.isna().any():
        first = int(np.flatnonzero(keys.isna().to_numpy())[0])
        raise InputError(
            f"Row {first + 1} of the chunk has no {by!r} value: a fleet routes each row by it. "
            "Fill it in or leave the row out."
        )
    df = df.reset_index(drop=True)
    codes, entities = pd.factorize(keys.to_numpy(dtype=object))
    names = [member_name(spec.name, str(e)) for e in entities]
    members.resolve(names, [str(e) for e in entities])
    parts = []
    for j, name in enumerate(names):
        rows = df[codes == j]
        predictor = members.loaded[name]
        part = score_chunk(ws, name, predictor, rows, request_id)
        parts.append(part.assign(**{MEMBER: name, MEMBER_VERSION: predictor.version.version}))
    return pd.concat(parts).sort_index(kind="stable")


def fleet_predict_file(
    ws: Workspace, fleet: str, input_path: str | Path, out_path: str | Path, *,
    chunk_rows: int = CHUNK_ROWS,
) -> BatchResult:  # fmt: skip
    """``predict_file`` for a fleet: one output file in input order, one logged request."""
    from .predict import BatchResult, _OutputFile

    members = Members(ws, ws.model_spec(fleet))
    request_id = uuid.uuid4().hex
    out = Path(out_path)
    rows = 0
    with _OutputFile(out) as sink:
        for df in iter_table(input_path, chunk_rows):
            result = score_fleet_chunk(ws, members, df, request_id)
            sink.write(result)
            rows += len(result)
    return BatchResult(_versions(members), rows, str(out), request_id)


def fleet_predict_rows(
    ws: Workspace, fleet: str, df: pd.DataFrame, *, log: bool = True,
    chunk_rows: int = CHUNK_ROWS,
) -> ScoredFrame:  # fmt: skip
    """``predict_rows`` for a fleet (see :func:`score_fleet_chunk`)."""
    import pandas as pd

    from .predict import ScoredFrame

    if df.empty:
        raise InputError(f"Nothing to predict for fleet {fleet!r}: the frame has no rows.")
    members = Members(ws, ws.model_spec(fleet))
    request_id = uuid.uuid4().hex if log else None
    parts = [
        score_fleet_chunk(ws, members, df.iloc[i : i + chunk_rows], request_id).set_axis(
            df.index[i : i + chunk_rows]
        )
        for i in range(0, len(df), chunk_rows)
    ]
    return ScoredFrame(pd.concat(parts), _versions(members), request_id)


def _versions(members: Members) -> str:
    """The versions that scored, e.g. ``1.0.0`` (every member's champion) or ``1.0.0, 1.1.0``."""
    return ", ".join(sorted({p.version.version for p in members.loaded.values()}))

"""How a team's feedback names the spec's columns: ``--id-field``, ``--label-field`` and
``--time-field`` (or the spec's ``feedback`` section) map fields of a log line or an API record
(e.g. a shadow model's log: ``task_id``, ``actual_outcome``, ``logged_at``) onto the spec's id,
target and time columns before the actuals are validated and stored.

>>> import pandas as pd
>>> from retrainer.core.spec import parse_spec
>>> spec = parse_spec({"models": {"m": {"task": "classification", "target": "ok",
...     "id_column": "id", "time_column": "t", "features": {"numeric": ["x"]}}}}, environ={})
>>> frame = pd.DataFrame({"task_id": [7], "outcome": [1], "ok": [0]})
>>> FieldMap(id="task_id", label="outcome").apply(frame, spec.model("m"), "log.jsonl")
   id  ok
0   7   1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import InputError
from ..core.spec import ModelSpec
from ..plumbing.tables import LINE

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FieldMap:
    """The source's field for the spec's id, target and time column; None: the spec's name."""

    id: str | None = None
    label: str | None = None
    time: str | None = None

    def source_name(self, spec: ModelSpec, column: str) -> str:
        """The name the source gives the spec's ``column`` (id, target or time column)."""
        mapped = {spec.id_column: self.id, spec.target: self.label, spec.time_column: self.time}
        return mapped.get(column) or column

    def apply(self, frame: pd.DataFrame, spec: ModelSpec, where: str) -> pd.DataFrame:
        """``frame`` with the mapped fields renamed to the spec's columns. A mapped field wins
        over a field that already has the spec's name (that one is dropped). A mapped field
        the data lacks is an error naming the field, the option and the fields there are."""
        pairs = (
            (self.id, spec.id_column, "--id-field"),
            (self.label, spec.target, "--label-field"),
            (self.time, spec.time_column, "--time-field"),
        )
        rename: dict[str, str] = {}
        for src, dst, option in pairs:
            if src is None or src == dst:
                continue
            if src not in frame.columns:
                have = [c for c in frame.columns if c != LINE]
                raise InputError(
                    f"{where}: {option} {src!r} (the field holding {spec.name!r}'s "
                    f"{dst!r}) is not in the data, which has {have}. Name one of those fields.",
                    field=src,
                    have=have,
                )
            rename[src] = dst
        if not rename:
            return frame
        shadowed = [c for c in rename.values() if c in frame.columns and c not in rename]
        return frame.drop(columns=shadowed).rename(columns=rename)

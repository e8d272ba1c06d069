"""The predict hot path: raw bytes → ``json.loads`` → a check of the rows against the served
version's feature schema, building the float matrix directly (no pandas, no per-row pydantic;
in bulk when every row is clean, row by row only to name a bad request's problems) → route →
score inline → JSON bytes. Logging happens off the request path.

A batch is routed as a whole by its first row's entity id (else the request id): every row of
one request is scored by the same version.

>>> from retrainer.families.schema import FeatureSchema
>>> codec = RowCodec(FeatureSchema(("age",), ("plan",), {"plan": ("basic", "gold")}),
...                  handles_missing=True, extra="forbid", unknown_category="reject",
...                  id_column="member_id", time_column="t")
>>> X, ids = codec.encode([{"age": 3, "plan": "gold", "member_id": 7}])
>>> X.tolist(), ids
([[3.0, 1.0]], ['7'])
>>> try:
...     codec.encode([{"age": "x", "plan": "platinum"}])
... except InputError as e:
...     [(p["row"], p["field"]) for p in e.details["errors"]]
[(0, 'age'), (0, 'plan')]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import InputError
from ..core.names import MAX_ID, text_problem
from ..families.schema import FeatureSchema
from .errors import MAX_REPORTED, TooLarge, row_errors

if TYPE_CHECKING:
    from .registry import Loaded


def _level(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _kind(v: Any) -> str:
    return {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}.get(
        type(v), type(v).__name__
    )


class RowCodec:
    """Validates request rows for one version's schema and encodes them as its float matrix."""

    def __init__(
        self,
        schema: FeatureSchema,
        *,
        handles_missing: bool,
        extra: str,
        unknown_category: str,
        id_column: str,
        time_column: str,
    ) -> None:
        self.numeric = schema.numeric
        self.categorical = tuple(
            (c, {v: float(i) for i, v in enumerate(schema.categories.get(c, ()))})
            for c in schema.categorical
        )
        self.columns = schema.columns
        self.handles_missing = handles_missing
        self.forbid_extra = extra == "forbid"
        self.reject_unknown = unknown_category == "reject"
        self.id_column = id_column
        self.allowed = frozenset((*self.columns, "entity_id", id_column, time_column))
        numeric = self.numeric
        self._get_numeric: Any = (
            itemgetter(*numeric) if len(numeric) != 1 else lambda r: (r[numeric[0]],)
        )

    def encode(self, rows: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        """The (n, p) float matrix and the entity ids; InputError naming row/field/problem."""
        fast = self._encode_clean(rows)
        return fast if fast is not None else self._encode_checked(rows)

    def _encode_clean(self, rows: Sequence[Any]) -> tuple[np.ndarray, list[str | None]] | None:
        """The common case in bulk: every row an object with every feature, numbers as JSON
        numbers, known categories as strings, no extra keys where they are forbidden. None
        when any row is otherwise: the checked path then finds and names each problem."""
        if not all(type(r) is dict for r in rows):
            return None
        try:
            numbers = list(map(self._get_numeric, rows)) if self.numeric else None
            columns = [[r[c] for r in rows] for c, _ in self.categorical]
        except KeyError:
            return None
        if self.forbid_extra and not all(map(self.allowed.issuperset, rows)):
            return None
        X = np.empty((len(rows), len(self.columns)), dtype=np.float64)
        k = len(self.numeric)
        if numbers is not None:
            if not _NUMBER.issuperset(map(type, chain.from_iterable(numbers))):
                return None
            try:
                X[:, :k] = np.array(numbers, dtype=np.float64).reshape(len(rows), k)
            except (OverflowError, ValueError, TypeError):
                return None
            if not np.isfinite(X[:, :k]).all():
                return None  # NaN or infinity: the checked path names it
        for j, ((_, lookup), values) in enumerate(zip(self.categorical, columns, strict=True)):
            if not _TEXT.issuperset(map(type, values)):
                return None
            codes = list(map(lookup.get, values))
            if None in codes:
                return None
            X[:, k + j] = codes
        ids = self._ids(rows)
        return None if ids is None else (X, ids)

    def _ids(self, rows: Sequence[dict[str, Any]]) -> list[str | None] | None:
        idc = self.id_column
        raw = [r.get("entity_id", r.get(idc)) for r in rows]
        kinds = set(map(type, raw))
        if kinds == {type(None)}:
            return raw
        if not _ID.issuperset(kinds):
            return None
        ids = [None if e is None else str(e) for e in raw]
        if max(len(e) for e in ids if e is not None) > MAX_ID:
            return None
        joined = "".join(e for e in ids if e is not None)
        if "\x00" in joined or (not joined.isascii() and _unencodable(joined)):
            return None  # the checked path names the row
        return ids

    def _encode_checked(self, rows: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        problems: list[dict[str, Any]] = []
        total = 0
        out: list[list[float]] = []
        ids: list[str | None] = []
        nan = math.nan
        for i, row in enumerate(rows):
            if type(row) is not dict:
                total += 1
                if len(problems) < MAX_REPORTED:
                    problems.append(
                        {
                            "row": i,
                            "field": None,
                            "problem": f"a row must be an object, got {_kind(row)}",
                        }
                    )
                continue
            vec: list[float] = []
            bad: list[tuple[str | None, str]] = []
            for col in self.numeric:
                v = row.get(col, _ABSENT)
                t = type(v)
                if t is float:
                    if v != v or v in (math.inf, -math.inf):
                        bad.append((col, _NOT_FINITE.format("infinity" if v == v else "NaN")))
                    vec.append(v)
                elif t is int:
                    try:
                        vec.append(float(v))
                    except OverflowError:
                        bad.append((col, "number too large"))
                elif v is None:
                    if not self.handles_missing:
                        bad.append((col, self._no_missing("null")))
                    vec.append(nan)
                elif v is _ABSENT:
                    bad.append((col, "missing: every feature must be present (null if unknown)"))
                else:
                    bad.append((col, f"must be a number, got {_kind(v)}"))
            for col, lookup in self.categorical:
                v = row.get(col, _ABSENT)
                t = type(v)
                if t is str or t is int or (t is float and math.isfinite(v)):
                    code = lookup.get(v if t is str else _level(v))
                    if code is None:
                        if self.reject_unknown:
                            known = ", ".join(list(lookup)[:10]) or "(none)"
                            bad.append((col, f"unknown category {str(v)[:40]!r}; known: {known}"))
                        code = nan
                    vec.append(code)
                elif t is float:
                    bad.append((col, _NOT_FINITE.format("infinity" if v == v else "NaN")))
                elif v is None:
                    if not self.handles_missing:
                        bad.append((col, self._no_missing("null")))
                    vec.append(nan)
                elif v is _ABSENT:
                    bad.append((col, "missing: every feature must be present (null if unknown)"))
                else:
                    bad.append((col, f"must be a string or a number, got {_kind(v)}"))
            if self.forbid_extra and not self.allowed.issuperset(row):
                for key in sorted(set(row) - self.allowed)[:MAX_REPORTED]:
                    bad.append((key, "unknown field (serving.extra is forbid)"))
            eid = row.get("entity_id", row.get(self.id_column))
            if eid is not None:
                if type(eid) is str or (type(eid) is int):
                    eid = str(eid)
                    problem = text_problem(eid, MAX_ID)
                    if problem is not None:
                        bad.append(("entity_id", problem))
                else:
                    bad.append(("entity_id", f"must be a string or an integer, got {_kind(eid)}"))
            if bad:
                total += len(bad)
                for field, problem in bad:
                    if len(problems) < MAX_REPORTED:
                        problems.append({"row": i, "field": field, "problem": problem})
                continue
            out.append(vec)
            ids.append(eid)
        if total:
            raise row_errors(problems, total)
        return np.array(out, dtype=np.float64).reshape(len(out), len(self.columns)), ids

    def _no_missing(self, what: str) -> str:
        return f"{what} is not accepted: this model's family cannot score missing values"


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_NOT_FINITE = "must be a finite number, got {} (send null for a missing value)"
_ABSENT: Any = object()
_NUMBER = frozenset((float, int))
_TEXT = frozenset((str,))
_ID = frozenset((str, int, type(None)))


def parse_rows(body: Any, max_rows: int) -> list[Any]:
    """The rows of a predict body ``{"rows": [...]}`` or ``{"row": {...}}``."""
    if type(body) is not dict:
        raise InputError(
            'Invalid request: the body must be a JSON object {"rows": [...]} or {"row": {...}}.',
            errors=[{"row": None, "field": None, "problem": "not an object"}],
        )
    if "rows" in body:
        rows = body["rows"]
        if type(rows) is not list or not rows:
            raise InputError(
                "Invalid request: 'rows' must be a non-empty array of objects.",
                errors=[{"row": None, "field": "rows", "problem": "not a non-empty array"}],
            )
        extra = set(body) - {"rows"}
    elif "row" in body:
        rows = [body["row"]]
        extra = set(body) - {"row"}
    else:
        raise InputError(
            'Invalid request: the body needs "rows" (an array) or "row" (an object).',
            errors=[{"row": None, "field": "rows", "problem": "missing"}],
        )
    if len(rows) > max_rows:
        raise TooLarge(
            f"The request holds {len(rows)} rows; serving.max_batch_rows is {max_rows}. "
            "Split it into smaller batches."
        )
    if extra:
        key = sorted(map(str, extra))[0]
        raise InputError(
            f"Invalid request: unknown top-level key {key!r}; expected 'rows' or 'row'.",
            errors=[{"row": None, "field": key, "problem": "unknown top-level key"}],
        )
    return rows


def score(
    loaded: Loaded, X: np.ndarray
) -> tuple[list[Any], list[dict[str, float]] | None, list[float | None] | None]:
    """Outputs, per-row class probabilities (classifiers) and the logged probability (the
    positive class of a binary classifier)."""
    raw = loaded.predictor.raw(X)
    if not np.isfinite(raw).all():
        raw = np.where(np.isfinite(raw), raw, np.nan)
    if not loaded.classes:
        values = raw.reshape(len(X)).tolist()
        return [None if v != v else v for v in values], None, None
    classes, keys = loaded.classes, loaded.class_keys
    probs = raw.tolist()
    labels = [classes[i] for i in raw.argmax(axis=1).tolist()]
    dicts = [dict(zip(keys, p, strict=True)) for p in probs]
    positive = [p[1] for p in probs] if len(keys) == 2 else None
    return labels, dicts, positive

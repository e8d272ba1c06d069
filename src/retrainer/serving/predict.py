"""The predict hot path: raw bytes → ``json.loads`` → a check of the rows against the served
version's feature schema, building the float matrix directly (no pandas, no per-row pydantic;
in bulk when every row is clean, row by row only to name a bad request's problems) → route →
score inline → JSON bytes. Logging happens off the request path.

A batch is routed as a whole by its first row's entity id (else the request id): every row of
one request is scored by the same version.

A category the version never saw is scored as a missing value (NaN, as in batch predict) and
returned by ``encode`` as an ``Unknown`` (row, feature, value); with ``serving.unknown_category:
reject`` it is a 422 instead. JSON ``true``/``false`` is taken where the feature is boolean-like
(``FeatureSchema.boolean_like``) and refused elsewhere.

>>> from retrainer.families.schema import FeatureSchema
>>> codec = RowCodec(FeatureSchema(("age",), ("plan",), {"plan": ("basic", "gold")}),
...                  handles_missing=True, extra="forbid", unknown_category="reject",
...                  id_column="member_id", time_column="t")
>>> X, ids, unknown = codec.encode([{"age": 3, "plan": "gold", "member_id": 7}])
>>> X.tolist(), ids, unknown
([[3.0, 1.0]], ['7'], [])
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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..core.errors import InputError
from ..core.names import MAX_ID, text_problem
from ..families.schema import FeatureSchema, level
from .errors import MAX_REPORTED, TooLarge, row_errors

if TYPE_CHECKING:
    from .model_holder import Loaded


class Unknown(NamedTuple):
    """A category the served version never saw, scored as missing."""

    row: int
    feature: str
    value: Any


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
        member_column: str | None = None,
    ) -> None:
        self.schema = schema
        self.numeric = schema.numeric
        self.flags = frozenset(c for c in schema.numeric if schema.boolean_like(c))
        self.categorical = tuple(
            (c, _lookup(schema, c), schema.boolean_like(c)) for c in schema.categorical
        )
        self.columns = schema.columns
        self.handles_missing = handles_missing
        self.forbid_extra = extra == "forbid"
        self.reject_unknown = unknown_category == "reject"
        self.id_column = id_column
        self.allowed = frozenset(
            (*self.columns, "entity_id", id_column, time_column, *filter(None, [member_column]))
        )  # a fleet member's rows carry the column that routes them (fleet.by)
        plain = [j for j, c in enumerate(self.numeric) if c not in self.flags]
        self._plain: Any = slice(0, len(plain)) if len(plain) == len(self.numeric) else plain
        names = [self.numeric[j] for j in plain]
        self._get_plain: Any = (
            itemgetter(*names) if len(names) != 1 else lambda r: (r[names[0]],)
        ) if names else None  # fmt: skip
        self._flag_columns = [(j, c) for j, c in enumerate(self.numeric) if c in self.flags]

    def encode(self, rows: Sequence[Any]) -> tuple[np.ndarray, list[str | None], list[Unknown]]:
        """The (n, p) float matrix, the entity ids and the unknown categories (scored as
        missing; sorted by row, then feature); InputError naming row/field/problem."""
        fast = self._encode_clean(rows)
        return fast if fast is not None else self._encode_checked(rows)

    def _encode_clean(
        self, rows: Sequence[Any]
    ) -> tuple[np.ndarray, list[str | None], list[Unknown]] | None:
        """The common case in bulk: every row an object with every feature, numbers as JSON
        numbers (booleans too for a boolean-like feature), categories as strings (or
        booleans for a boolean-like one), no extra keys where they are forbidden. An unknown
        category costs a scan of its column only when the column holds one. None when any
        row is otherwise: the checked path then finds and names each problem."""
        if not all(type(r) is dict for r in rows):
            return None
        n = len(rows)
        try:
            numbers = list(map(self._get_plain, rows)) if self._get_plain is not None else None
            flags = [[r[c] for r in rows] for _, c in self._flag_columns]
            columns = [[r[c] for r in rows] for c, _, _ in self.categorical]
        except KeyError:
            return None
        if self.forbid_extra and not all(map(self.allowed.issuperset, rows)):
            return None
        X = np.empty((n, len(self.columns)), dtype=np.float64)
        k = len(self.numeric)
        if numbers is not None:
            if not _NUMBER.issuperset(map(type, chain.from_iterable(numbers))):
                return None
            width = len(numbers[0]) if n else 0
            try:
                X[:, self._plain] = np.array(numbers, dtype=np.float64).reshape(n, width)
            except (OverflowError, ValueError, TypeError):
                return None
        for (j, _), values in zip(self._flag_columns, flags, strict=True):
            if not _FLAG.issuperset(map(type, values)):
                return None
            try:
                X[:, j] = np.array(values, dtype=np.float64)
            except (OverflowError, ValueError, TypeError):
                return None
        if k and not np.isfinite(X[:, :k]).all():
            return None  # NaN or infinity: the checked path names it
        unknown: list[Unknown] = []
        for j, ((col, lookup, flag), values) in enumerate(
            zip(self.categorical, columns, strict=True)
        ):
            if not (_TEXT_FLAG if flag else _TEXT).issuperset(map(type, values)):
                return None
            codes = list(map(lookup.get, values))
            if None in codes:
                if self.reject_unknown:
                    return None
                for i, code in enumerate(codes):
                    if code is None:
                        codes[i] = math.nan
                        unknown.append(Unknown(i, col, values[i]))
            X[:, k + j] = codes
        ids = self._ids(rows)
        if ids is None:
            return None
        if unknown and len(self.categorical) > 1:
            unknown.sort(key=lambda u: u.row)  # stable: features stay in schema order
        return X, ids, unknown

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

    def _encode_checked(
        self, rows: Sequence[Any]
    ) -> tuple[np.ndarray, list[str | None], list[Unknown]]:
        problems: list[dict[str, Any]] = []
        total = 0
        out: list[list[float]] = []
        ids: list[str | None] = []
        unknown: list[Unknown] = []
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
            unseen: list[Unknown] = []
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
                elif t is bool and col in self.flags:
                    vec.append(float(v))
                elif v is None:
                    if not self.handles_missing:
                        bad.append((col, self._no_missing("null")))
                    vec.append(nan)
                elif v is _ABSENT:
                    bad.append((col, "missing: every feature must be present (null if unknown)"))
                else:
                    bad.append((col, f"must be a number, got {_kind(v)}"))
            for col, lookup, flag in self.categorical:
                v = row.get(col, _ABSENT)
                t = type(v)
                if (
                    t is str
                    or t is int
                    or (t is float and math.isfinite(v))
                    or (t is bool and flag)
                ):
                    code = lookup.get(v if t is str else level(v))
                    if code is None:
                        if self.reject_unknown:
                            known = ", ".join(self.schema.categories.get(col, ())[:10]) or "(none)"
                            bad.append((col, f"unknown category {str(v)[:40]!r}; known: {known}"))
                        unseen.append(Unknown(i, col, v))
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
                    what = "a string, a boolean" if flag else "a string"
                    bad.append((col, f"must be {what} or a number, got {_kind(v)}"))
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
            unknown += unseen
        if total:
            raise row_errors(problems, total)
        X = np.array(out, dtype=np.float64).reshape(len(out), len(self.columns))
        return X, ids, unknown

    def _no_missing(self, what: str) -> str:
        return f"{what} is not accepted: this model's family cannot score missing values"


def _lookup(schema: FeatureSchema, col: str) -> dict[Any, float]:
    """A categorical feature's codes by level; for a boolean-like one ``True``/``False`` are
    keys too (only str and bool values are ever looked up directly, so the bool keys never
    meet an equal int)."""
    out: dict[Any, float] = {v: float(i) for i, v in enumerate(schema.categories.get(col, ()))}
    if schema.boolean_like(col):
        for flag in (False, True):
            if str(flag) in out:
                out[flag] = out[str(flag)]
    return out


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
_TEXT_FLAG = frozenset((str, bool))
_FLAG = frozenset((bool, int, float))
_ID = frozenset((str, int, type(None)))


MAX_WARNINGS = 100  # the response names this many unknown categories; /metrics counts all
UNKNOWN_REASON = "unknown category, scored as missing"


def warnings(unknown: Sequence[Unknown]) -> dict[str, Any]:
    """The response's ``warnings`` (at most ``MAX_WARNINGS``; ``warnings_omitted`` counts the
    rest) for the unknown categories of a request.

    >>> warnings([Unknown(3, "city", "Atlantis")])["warnings"][0]["reason"]
    'unknown category, scored as missing'
    >>> warnings([Unknown(i, "city", "x") for i in range(150)])["warnings_omitted"]
    50
    """
    out: dict[str, Any] = {
        "warnings": [
            {
                "row": u.row,
                "feature": u.feature,
                "value": u.value[:200] if type(u.value) is str else u.value,
                "reason": UNKNOWN_REASON,
            }
            for u in unknown[:MAX_WARNINGS]
        ]
    }
    if len(unknown) > MAX_WARNINGS:
        out["warnings_omitted"] = len(unknown) - MAX_WARNINGS
    return out


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
    return outputs(loaded, loaded.predictor.raw(X))


def outputs(
    loaded: Loaded, raw: np.ndarray
) -> tuple[list[Any], list[dict[str, float]] | None, list[float | None] | None]:
    """``score``'s answer from the version's raw output (values, or class probabilities)."""
    if not np.isfinite(raw).all():
        raw = np.where(np.isfinite(raw), raw, np.nan)
    if not loaded.classes:
        values = raw.reshape(len(raw)).tolist()
        return [None if v != v else v for v in values], None, None
    classes, keys = loaded.classes, loaded.class_keys
    probs = raw.tolist()
    labels = [classes[i] for i in raw.argmax(axis=1).tolist()]
    dicts = [dict(zip(keys, p, strict=True)) for p in probs]
    positive = [p[1] for p in probs] if len(keys) == 2 else None
    return labels, dicts, positive

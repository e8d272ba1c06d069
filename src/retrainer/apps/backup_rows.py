"""One table line of a backup, parsed and checked against its table before it is stored.

A line must be a JSON object (no NaN or Infinity) whose keys are columns of the table, with
every required column given and each value of the column's type: text within the column's
length (no NUL, no lone surrogate), whole numbers within the column's range, ISO datetimes,
booleans. Model names and versions go through :mod:`retrainer.core.names`, the one check for
names that reach a path; an artifact's SHA-256 must be 64 hex digits. Binary columns are not
in a line (they are members of their own). Errors name the backup, the member and the line.

>>> from retrainer.store import schema as t
>>> row = parse_row(t.models, b'{"name": "churn", "created_at": "2024-05-01T00:00:00"}',
...     where="Backup 'b.tar.gz': tables/models.jsonl line 1")
>>> row["name"], row["created_at"].year
('churn', 2024)
>>> try:
...     parse_row(t.models, b'{"name": "../x", "created_at": "2024-05-01T00:00:00"}',
...         where="Backup 'b.tar.gz': tables/models.jsonl line 1")
... except InputError as err:
...     print(err.message[:67])
Backup 'b.tar.gz': tables/models.jsonl line 1: model name '../x' is
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, LargeBinary, Table
from sqlalchemy.sql.sqltypes import String

from ..core.errors import InputError
from ..core.names import check_model_name, check_version
from ..store import schema as t

NOTHING = "Nothing was restored."
_SHA256 = re.compile(r"[0-9a-f]{64}")
# columns naming a model or a version, by table (the values that reach paths and URLs)
_MODEL_COLUMNS = {"model"}
_VERSION_COLUMNS = {
    "versions": ("version", "parent"),
    "roles": ("champion", "challenger"),
    "deployments": ("from_version", "to_version"),
    "predictions": ("version",),
}
_RANGES = {Integer: 1 << 31, BigInteger: 1 << 63}
# tables of formats 1 and 2 (converted to segments): the columns a restore reads
LEGACY_COLUMNS = {
    "training_rows": {"model": True, "entity_id": True, "event_time": True, "target": True,
                      "features": True},
    "actuals": {"model": True, "entity_id": True, "event_time": False, "value": True,
                "prediction_id": False},
}  # fmt: skip


def reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not a JSON number")


def finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent, refused when it overflows (``1e999``)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def load_object(line: bytes, where: str) -> dict[str, Any]:
    """A line as a JSON object, or an InputError naming ``where``."""
    try:
        row = json.loads(
            line.decode("utf-8"), parse_constant=reject_constant, parse_float=finite_float
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{where} is not valid JSON ({exc}). {NOTHING}") from None
    if not isinstance(row, dict):
        raise InputError(f"{where} is a JSON {type(row).__name__}, expected an object. {NOTHING}")
    return row


def parse_row(table: Table, line: bytes, *, where: str, format_1: bool = False) -> dict[str, Any]:
    """The row of ``table`` on ``line``, every column present (None or its default when left
    out), ready to insert. ``format_1``: a prediction of format 1, whose features (kept as
    they are) become a one-row input keyed ``p<id>``, as the 0004 migration does."""
    row = load_object(line, where)
    extra: frozenset[str] = frozenset()
    if format_1 and table is t.predictions:
        extra = frozenset({"features"})
        if not isinstance(row.get("features"), str):
            raise InputError(f"{where}: key 'features' is missing or not text. {NOTHING}")
        row.setdefault("input_key", f"p{row.get('id')}")
        row.setdefault("input_row", 0)
    unknown = sorted(set(row) - set(table.c.keys()) - extra)
    if unknown:
        raise InputError(
            f"{where}: {unknown[0]!r} is not a column of table {table.name} (columns: "
            f"{', '.join(table.c.keys())}). {NOTHING}"
        )
    out: dict[str, Any] = {k: row[k] for k in extra if k in row}
    for col in table.columns:
        if isinstance(col.type, LargeBinary):
            if col.name in row:
                raise InputError(
                    f"{where}: binary column {col.name!r} is written as a member of its own, "
                    f"not in the line. {NOTHING}"
                )
            continue
        if col.name not in row:
            default = col.default.arg if col.default is not None else None  # type: ignore[attr-defined]
            if default is None and not col.nullable and not col.primary_key:
                raise InputError(
                    f"{where}: required column {col.name!r} of table {table.name} is missing. "
                    f"{NOTHING}"
                )
            out[col.name] = default
            continue
        out[col.name] = _value(col, row[col.name], f"{where}: column {col.name!r}")
    _check_names(table, out, where)
    return out


def _value(col: Any, value: Any, where: str) -> Any:
    if value is None:
        if not col.nullable:
            raise InputError(f"{where} is null, but the column requires a value. {NOTHING}")
        return None
    kind = col.type
    if isinstance(kind, JSON):
        return value
    if isinstance(kind, DateTime):
        return parse_datetime(value, where)
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise InputError(f"{where} is {_show(value)}, expected true or false. {NOTHING}")
        return value
    if isinstance(kind, Integer | BigInteger):
        bound = _RANGES[BigInteger if isinstance(kind, BigInteger) else Integer]
        if not isinstance(value, int) or isinstance(value, bool) or not -bound <= value < bound:
            raise InputError(f"{where} is {_show(value)}, expected a whole number. {NOTHING}")
        return value
    if isinstance(kind, Float):
        if not isinstance(value, int | float) or isinstance(value, bool) or abs(value) > 1e300:
            raise InputError(f"{where} is {_show(value)}, expected a number. {NOTHING}")
        return float(value)
    if isinstance(kind, String):  # String(n) and Text
        return check_text(value, getattr(kind, "length", None), where)
    return value


def check_text(value: Any, length: int | None, where: str) -> str:
    """``value`` if it is storable text of at most ``length`` characters."""
    if not isinstance(value, str):
        raise InputError(f"{where} is {_show(value)}, expected text. {NOTHING}")
    if length is not None and len(value) > length:
        raise InputError(
            f"{where} is {len(value)} characters long, at most {length} fit. {NOTHING}"
        )
    if "\x00" in value or not _encodes(value):
        raise InputError(
            f"{where} holds a NUL or a lone surrogate, which no store keeps as text. {NOTHING}"
        )
    return value


def _show(value: Any) -> str:
    """A value for a message: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:40] + "…"


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_datetime(value: Any, where: str) -> datetime:
    """An ISO datetime (naive UTC; an offset is converted to UTC)."""
    if not isinstance(value, str):
        raise InputError(f"{where} is {_show(value)}, expected an ISO datetime. {NOTHING}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{where} is {_show(value)}, not an ISO datetime such as 2024-05-01T12:00:00. {NOTHING}"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _check_names(table: Table, row: dict[str, Any], where: str) -> None:
    try:
        for col in _MODEL_COLUMNS & row.keys():
            if row[col] is not None:
                check_model_name(row[col], where=where)
        if table is t.models:
            check_model_name(row["name"], where=where)
        for col in _VERSION_COLUMNS.get(table.name, ()):
            if row[col] is not None:
                check_version(row[col], where=where)
    except InputError as exc:
        raise InputError(f"{exc.message} {NOTHING}") from None
    if table is t.versions and not _SHA256.fullmatch(row["sha256"]):
        raise InputError(
            f"{where}: column 'sha256' is {row['sha256']!r}, expected 64 lowercase hex "
            f"digits. {NOTHING}"
        )


def parse_legacy(name: str, line: bytes, *, where: str) -> dict[str, Any]:
    """A training row or an actual of a format 1 or 2 backup: the keys a restore reads."""
    row = load_object(line, where)
    for key, required in LEGACY_COLUMNS[name].items():
        if required and row.get(key) is None and key != "event_time":
            raise InputError(f"{where}: required key {key!r} is missing. {NOTHING}")
    try:
        check_model_name(row["model"], where=where)
    except InputError as exc:
        raise InputError(f"{exc.message} {NOTHING}") from None
    check_text(row["entity_id"], 128, f"{where}: key 'entity_id'")
    if row.get("event_time") is not None:
        row["event_time"] = parse_datetime(row["event_time"], f"{where}: key 'event_time'")
    if name == "training_rows" and not isinstance(row["features"], dict):
        raise InputError(f"{where}: key 'features' is not a JSON object. {NOTHING}")
    return row

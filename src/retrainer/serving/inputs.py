"""The one check of request inputs before they are stored or used: texts (ids, reasons,
versions), numbers and durations from a path, a query or a body.

A text that reaches the store must fit its column and be storable in both back-ends: no NUL
(PostgreSQL refuses it) and no lone surrogate (UTF-8 cannot encode one; JSON can spell one as
``"\\udc80"``). Numbers and durations are bounded, so date arithmetic never overflows.

>>> text_problem("c-42", MAX_ID) is None
True
>>> text_problem("a\\x00b", MAX_ID)
'holds a NUL character (U+0000)'
>>> text_problem("\\udc80", MAX_ID)
'holds a lone surrogate (U+DC80), which UTF-8 cannot encode'
>>> query_duration("30d", "window").days
30
>>> try:
...     query_duration("900000d", "window")
... except InputError as e:
...     print(e.message)
The query parameter window '900000d' is too long: at most 36500d (100 years).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..core.durations import MAX_DAYS, parse_duration
from ..core.errors import InputError
from ..core.names import MAX_ID, check_version, text_problem
from .errors import MAX_REPORTED, row_errors

MAX_TEXT = 1000  # any other text a request may carry (a reason, a label, a time)


def _text(limit: int) -> Any:
    def check(value: str) -> str:
        problem = text_problem(value, limit)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _version(value: str) -> str:
    try:
        return check_version(value, where="request body")
    except InputError as exc:
        raise ValueError(exc.message) from None


# Body fields (pydantic): a bounded, storable text; a version; a bounded count of days.
Text = Annotated[str, Field(max_length=MAX_TEXT), _text(MAX_TEXT)]
Version = Annotated[str, Field(max_length=32), AfterValidator(_version)]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]


def check_rows(rows: Sequence[dict[str, Any]], *, ids: Sequence[str], what: str = "row") -> None:
    """Every text of every row storable; the ``ids`` fields at most ``MAX_ID`` characters.
    One InputError names each bad row, field and problem.

    >>> try:
    ...     check_rows([{"entity_id": "a"}, {"entity_id": "x" * 200}], ids=["entity_id"])
    ... except InputError as e:
    ...     print(e.details["errors"])
    [{'row': 1, 'field': 'entity_id', 'problem': 'longer than 128 characters (200)'}]
    """
    problems: list[dict[str, Any]] = []
    total = 0
    for i, row in enumerate(rows):
        for key, value in row.items():
            bad = text_problem(key, MAX_TEXT)
            field = key if bad is None else repr(key)[:40]
            if bad is None and isinstance(value, str):
                bad = text_problem(value, MAX_ID if key in ids else MAX_TEXT)
            elif bad is None and key in ids and type(value) is int:  # stored as its digits
                bad = text_problem(str(value), MAX_ID)
            if bad is not None:
                total += 1
                if len(problems) < MAX_REPORTED:
                    problems.append({"row": i, "field": field, "problem": bad})
    if total:
        raise row_errors(problems, total)


def query_duration(text: str | None, name: str) -> timedelta | None:
    """A positive duration from a query parameter, at most ``core.durations.MAX_DAYS`` days
    (None when absent)."""
    if text is None:
        return None
    span = parse_duration(text, what=f"query parameter {name}")
    if span <= timedelta(0):
        raise InputError(f"The query parameter {name} {text[:40]!r} must be longer than 0.")
    return span

"""Durations written as ``30s``, ``15m``, ``6h``, ``7d`` or ``2w``, at most :data:`MAX_DAYS`.

>>> parse_duration("7d").days, parse_duration("90m").total_seconds()
(7, 5400.0)
>>> parse_duration("900000d", what="window")
Traceback (most recent call last):
...
retrainer.core.errors.InputError: The window '900000d' is too long: at most 36500d (100 years).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from .errors import InputError

MAX_DAYS = 36_500  # a hundred years: the longest window, age or day count any setting takes
MAX_SECONDS = MAX_DAYS * 86_400
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_RX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str | int | float, *, what: str = "duration") -> timedelta:
    """Parse a duration; a bare number is a count of days. A duration longer than
    :data:`MAX_DAYS` (whose timestamps would overflow) is an InputError naming ``what``."""
    if isinstance(text, int | float):
        return timedelta(days=check_days(text, what=what))
    m = _RX.match(str(text))
    if not m:
        raise InputError(
            f"The {what} {str(text)[:40]!r} is not a duration. Expected a number and a unit "
            "(s, m, h, d, w), e.g. '7d' or '6h'."
        )
    value = float(m[1])
    if value * _SECONDS[m[2]] > MAX_SECONDS:
        raise InputError(
            f"The {what} {str(text).strip()[:40]!r} is too long: at most {MAX_DAYS}d (100 years)."
        )
    return timedelta(**{_UNITS[m[2]]: value})


def check_days(days: float, *, what: str = "number of days") -> float:
    """A count of days between 0 and :data:`MAX_DAYS`, or an InputError naming ``what``.

    >>> check_days(30)
    30
    >>> check_days(900_000, what="window_days")
    Traceback (most recent call last):
    ...
    retrainer.core.errors.InputError: window_days 900000 is too large: at most 36500 (100 years).
    """
    if isinstance(days, bool) or not isinstance(days, int | float) or math.isnan(days):
        raise InputError(f"{what} {days!r} is not a number of days.")
    if days < 0:
        raise InputError(f"{what} {days!r} is negative; give a number of days from 0 up.")
    if days > MAX_DAYS:
        raise InputError(f"{what} {days!r} is too large: at most {MAX_DAYS} (100 years).")
    return days


def duration_text(span: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``span``.

    >>> duration_text(timedelta(days=14)), duration_text(timedelta(minutes=90))
    ('14d', '90m')
    """
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

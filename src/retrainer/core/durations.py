"""Durations written as ``30s``, ``15m``, ``6h``, ``7d`` or ``2w``.

>>> parse_duration("7d").days, parse_duration("90m").total_seconds()
(7, 5400.0)
"""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import InputError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str | int | float, *, what: str = "duration") -> timedelta:
    """Parse a duration; a bare number is a count of days."""
    if isinstance(text, int | float):
        return timedelta(days=float(text))
    m = _RX.match(str(text))
    if not m:
        raise InputError(
            f"The {what} {text!r} is not a duration. Expected a number and a unit "
            "(s, m, h, d, w), e.g. '7d' or '6h'."
        )
    return timedelta(**{_UNITS[m[2]]: float(m[1])})

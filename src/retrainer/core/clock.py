"""Time in one convention: naive UTC datetimes (SQLite has no time zones)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as a naive UTC datetime.

    >>> utcnow().tzinfo is None
    True
    """
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    """Drop the zone after converting to UTC; naive values are taken as UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value

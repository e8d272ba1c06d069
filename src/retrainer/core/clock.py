"""Time in one convention: naive UTC datetimes (SQLite has no time zones).

Every timestamp retrainer writes comes from :func:`utcnow`. A replay or a test can run the
whole loop on a simulated clock with :func:`use_clock`; the override is a context variable,
so it holds for the current thread (and tasks started from it) only.

>>> from datetime import datetime
>>> clock = SimClock(datetime(1970, 1, 1))
>>> with use_clock(clock):
...     before = utcnow()
...     clock.advance(days=2)
...     after = utcnow()
>>> before.isoformat(), after.isoformat(), utcnow().year > 2000
('1970-01-01T00:00:00', '1970-01-03T00:00:00', True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

_clock: ContextVar[Callable[[], datetime] | None] = ContextVar("retrainer_clock", default=None)


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the simulated time inside :func:`use_clock`).

    >>> utcnow().tzinfo is None
    True
    """
    override = _clock.get()
    if override is not None:
        return override()
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    """Drop the zone after converting to UTC; naive values are taken as UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


class SimClock:
    """A settable clock for replays and tests."""

    def __init__(self, start: datetime) -> None:
        self.now = to_naive_utc(start)

    def __call__(self) -> datetime:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = to_naive_utc(at)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    token = _clock.set(clock)
    try:
        yield
    finally:
        _clock.reset(token)

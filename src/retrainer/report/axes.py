"""Axes chosen from the data: value ticks on a 1/2/5 x 10^k step with just enough decimals that
no two labels repeat, a flat series padded to a sensible range, time ticks spanning the data
only (minutes to centuries, picked by the span), and the time buckets a chart pools its points
into (hours for a day-old model, days for a month, months or years for decades).

Times are naive UTC datetimes (as the store keeps them).

>>> value_axis([0.93, 0.93, 0.93]).labels
['0.91', '0.92', '0.93', '0.94', '0.95']
>>> [label for _, label in time_ticks(datetime(2024, 1, 1), datetime(2024, 1, 1, 12))]
['00:00', '02:00', '04:00', '06:00', '08:00', '10:00', '12:00']
>>> choose_bucket(datetime(2024, 1, 1), datetime(2024, 1, 2)).name
'hour'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

STEPS = (1, 2, 5)


def nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at least ``raw`` (``raw`` > 0).

    >>> nice_step(0.0074), nice_step(3), nice_step(120)
    (0.01, 5, 200)
    """
    if not (math.isfinite(raw) and raw > 0):
        return 1
    k = math.floor(math.log10(raw))
    for m in (*STEPS, 10):
        step = m * 10.0**k
        if step >= raw * (1 - 1e-9):
            return round(step, max(0, -k)) if k < 0 else int(step)
    return 10 ** (k + 1)  # pragma: no cover - the loop always returns


def decimals(step: float) -> int:
    """Decimals that tell ticks ``step`` apart.

    >>> decimals(0.05), decimals(0.1), decimals(20)
    (2, 1, 0)
    """
    return max(0, -math.floor(math.log10(step) + 1e-9))


@dataclass(frozen=True)
class ValueAxis:
    """A value range snapped to its ticks, and each tick's label."""

    lo: float
    hi: float
    ticks: list[float]
    labels: list[str]


def value_axis(
    values: Iterable[float | None],
    n: int = 5,
    pad: float = 0.05,
    bounds: tuple[float | None, float | None] = (None, None),
) -> ValueAxis:
    """Ticks for ``values`` on a nice step, about ``n`` of them, labels never repeating. A flat
    series gets a range of +-2% around its value (+-0.5 around zero); no value at all, 0 to 1.
    The padded range stays inside ``bounds`` (an accuracy never shows 1.2).

    >>> value_axis([0.61, 0.87]).labels
    ['0.5', '0.6', '0.7', '0.8', '0.9']
    >>> value_axis([]).labels
    ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']
    >>> value_axis([0.5, 1.0], bounds=(0, 1)).labels
    ['0.4', '0.6', '0.8', '1.0']
    >>> value_axis([1200, 1800, 4000]).labels
    ['1000', '2000', '3000', '4000', '5000']
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = min(finite), max(finite)
        if hi == lo:
            half = abs(lo) * 0.02 or 0.5
            lo, hi = lo - half, hi + half
        else:
            lo, hi = lo - (hi - lo) * pad, hi + (hi - lo) * pad
        floor, ceiling = bounds
        if floor is not None and lo < floor <= min(finite):
            lo = floor
        if ceiling is not None and hi > ceiling >= max(finite):
            hi = ceiling
    step = nice_step((hi - lo) / n)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    d = decimals(step)
    ticks = [round(i * step, d + 1) for i in range(first, last + 1)]
    labels = [f"{0.0 if abs(t) < step / 2 else t:.{d}f}" for t in ticks]
    return ValueAxis(ticks[0], ticks[-1], ticks, labels)


# time ticks: (unit, count) from the finest up
TIME_STEPS: tuple[tuple[str, int], ...] = (
    *(("minute", k) for k in (1, 5, 10, 15, 30)),
    *(("hour", k) for k in (1, 2, 3, 6, 12)),
    *(("day", k) for k in (1, 2, 7, 14)),
    *(("month", k) for k in (1, 2, 3, 6)),
    *(("year", k) for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)),
)


def _floor(d: datetime, unit: str, k: int) -> datetime:
    if unit == "minute":
        return d.replace(minute=d.minute - d.minute % k, second=0, microsecond=0)
    if unit == "hour":
        return d.replace(hour=d.hour - d.hour % k, minute=0, second=0, microsecond=0)
    day = d.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day - timedelta(days=(day - datetime(1970, 1, 5)).days % k)  # weeks on Monday
    if unit == "month":
        return day.replace(day=1, month=d.month - (d.month - 1) % k)
    return day.replace(day=1, month=1, year=max(1, d.year - d.year % k))


def _add(d: datetime, unit: str, k: int) -> datetime:
    if unit in ("minute", "hour", "day"):
        return d + timedelta(**{unit + "s": k})
    months = k if unit == "month" else 12 * k
    m = d.month - 1 + months
    return d.replace(year=d.year + m // 12, month=m % 12 + 1)


def _ticks(lo: datetime, hi: datetime, unit: str, k: int, limit: int) -> list[datetime]:
    out: list[datetime] = []
    t = _floor(lo, unit, k)
    while t <= hi and len(out) <= limit:
        if t >= lo:
            out.append(t)
        t = _add(t, unit, k)
    return out


def _label(ticks: list[datetime], unit: str) -> list[str]:
    if unit in ("minute", "hour"):
        same_day = len({t.date() for t in ticks}) <= 1
        return [t.strftime("%H:%M" if same_day else "%b %d %H:%M") for t in ticks]
    if unit == "day":
        same_year = len({t.year for t in ticks}) <= 1
        return [t.strftime("%b %d" if same_year else "%Y-%m-%d") for t in ticks]
    if unit == "month":
        return [t.strftime("%b %Y") for t in ticks]
    return [str(t.year) for t in ticks]


def time_ticks(lo: datetime, hi: datetime, max_ticks: int = 9) -> list[tuple[datetime, str]]:
    """Ticks inside [lo, hi] on the finest calendar step giving at least two and at most
    ``max_ticks`` of them, each with a label that names it uniquely (hours, days, months or
    years as the span calls for). A span too short for two minute ticks gives its two ends.

    >>> [s for _, s in time_ticks(datetime(1959, 3, 1), datetime(1998, 12, 31))]
    ['1960', '1965', '1970', '1975', '1980', '1985', '1990', '1995']
    >>> [s for _, s in time_ticks(datetime(2024, 5, 3), datetime(2024, 6, 2))]
    ['May 06', 'May 13', 'May 20', 'May 27']
    """
    for unit, k in TIME_STEPS:
        ticks = _ticks(lo, hi, unit, k, max_ticks)
        if len(ticks) <= max_ticks:
            if len(ticks) >= 2 or unit != "minute" or k != 1:
                return list(zip(ticks, _label(ticks, unit), strict=True))
            break
    ends = [lo, hi] if hi > lo else [lo]
    return [(t, t.strftime("%H:%M:%S")) for t in ends]


@dataclass(frozen=True)
class Bucket:
    """A time bucket: ``name`` (hour | day | week | month | year), how many of them the
    smoothed line pools (``roll``), and how each is labelled."""

    name: str
    roll: int

    def floor(self, d: datetime) -> datetime:
        """The start of the bucket holding ``d``.

        >>> Bucket("week", 4).floor(datetime(2024, 5, 8, 13))
        datetime.datetime(2024, 5, 6, 0, 0)
        """
        if self.name == "week":
            return _floor(d, "day", 7)
        return _floor(d, self.name, 1)

    def next(self, d: datetime) -> datetime:
        """The start of the bucket after the one starting at ``d``."""
        if self.name == "week":
            return d + timedelta(days=7)
        return _add(d, self.name, 1)

    def starts(self, first: datetime, last: datetime) -> list[datetime]:
        """Every bucket start from the one holding ``first`` to the one holding ``last``.

        >>> len(Bucket("hour", 6).starts(datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 2)))
        25
        """
        out, t = [], self.floor(first)
        while t <= last:
            out.append(t)
            t = self.next(t)
        return out

    def mid(self, start: datetime) -> datetime:
        """The middle of the bucket starting at ``start`` (where its point is drawn)."""
        return start + (self.next(start) - start) / 2

    def label(self, start: datetime) -> str:
        """A unique label for the bucket starting at ``start``.

        >>> Bucket("month", 6).label(datetime(1990, 3, 1))
        '1990-03'
        """
        fmt = {
            "hour": "%Y-%m-%d %H:00",
            "day": "%Y-%m-%d",
            "week": "week of %Y-%m-%d",
            "month": "%Y-%m",
            "year": "%Y",
        }[self.name]
        return start.strftime(fmt)

    @property
    def pooled(self) -> str:
        """How the smoothed line is pooled, in words: ``6-month pooled``."""
        return f"{self.roll}-{self.name} pooled"


BUCKETS = {
    "hour": Bucket("hour", 6),
    "day": Bucket("day", 7),
    "week": Bucket("week", 4),
    "month": Bucket("month", 6),
    "year": Bucket("year", 2),
}


def choose_bucket(first: datetime, last: datetime) -> Bucket:
    """Buckets for data from ``first`` to ``last``: hours up to three days, days up to four
    months, weeks up to two years, months up to sixty years, years beyond.

    >>> [choose_bucket(datetime(2000, 1, 1), datetime(2000 + y, 1, 2)).name for y in (0, 1, 40, 90)]
    ['hour', 'week', 'month', 'year']
    """
    span = last - first
    if span <= timedelta(days=3):
        return BUCKETS["hour"]
    if span <= timedelta(days=122):
        return BUCKETS["day"]
    if span <= timedelta(days=2 * 366):
        return BUCKETS["week"]
    if span <= timedelta(days=60 * 366):
        return BUCKETS["month"]
    return BUCKETS["year"]


def time_domain(
    times: Iterable[datetime], bucket: Bucket | None = None
) -> tuple[datetime, datetime]:
    """The first and last of ``times``; one instant is widened by half a bucket (half an hour
    without one) on each side so it sits mid-axis.

    >>> time_domain([datetime(2024, 1, 1, 12)])
    (datetime.datetime(2024, 1, 1, 11, 30), datetime.datetime(2024, 1, 1, 12, 30))
    """
    ts = list(times)
    lo, hi = min(ts), max(ts)
    if hi <= lo:
        half = (bucket.next(bucket.floor(lo)) - bucket.floor(lo)) / 2 if bucket else None
        half = half or timedelta(minutes=30)
        lo, hi = lo - half, hi + half
    return lo, hi

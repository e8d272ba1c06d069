"""Crontab expressions as APScheduler triggers, in UTC or a named time zone
(``schedule.timezone``), with standard crontab meaning.

APScheduler 3 reads a numeric day of week with 0 = Monday; crontab means 0 (and 7) =
Sunday. :func:`cron_trigger` rewrites the day-of-week field to names so ``0 3 * * 0`` runs
on Sundays, as anyone reading the spec expects. Crontab ORs a restricted day of month with a
restricted day of week while APScheduler ANDs them, so restricting both is refused.

>>> from datetime import datetime
>>> trigger = cron_trigger("0 3 * * 0")
>>> next_fire(trigger, datetime(2024, 1, 1)).strftime("%A %H:%M")  # 2024-01-01 is a Monday
'Sunday 03:00'
>>> last_fire(cron_trigger("0 */6 * * *"), datetime(2024, 1, 1, 7, 30), grace_seconds=7200)
datetime.datetime(2024, 1, 1, 6, 0)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import to_naive_utc

if TYPE_CHECKING:  # APScheduler is imported when a trigger is made, not with the spec
    from apscheduler.triggers.base import BaseTrigger
    from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
FORMAT_HINT = (
    "Expected five fields 'minute hour day-of-month month day-of-week' (in UTC, or in "
    "schedule.timezone), "
    "e.g. '0 */6 * * *' (every 6 hours) or '0 2 1 */3 *' (02:00 on the 1st, quarterly)."
)


def _day(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in DAY_NAMES and len(token) == 3:
        return DAY_NAMES.index(token)
    raise ValueError(f"day of week {token!r} is not 0-7 or one of {', '.join(DAY_NAMES)}")


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as APScheduler day names.

    >>> crontab_day_of_week("1-5"), crontab_day_of_week("0,6"), crontab_day_of_week("*")
    ('mon,tue,wed,thu,fri', 'sun,sat', '*')
    """
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f"day of week {item!r} is not a value, a range or a step")
        span, step = m.group(1), int(m.group(2) or 1)
        if step < 1:
            raise ValueError(f"day-of-week step in {item!r} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-")
            first, last = _day(a), _day(b)
            if first > last:
                raise ValueError(f"day-of-week range {item!r} runs backwards")
        else:
            first = last = _day(span)
            if m.group(2):
                last = 6
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (ValueError naming it when unknown).

    >>> zone("America/New_York").key
    'America/New_York'
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not an IANA time zone; use a name such as 'UTC', "
            "'America/New_York' or 'Europe/Berlin'"
        ) from None


def cron_trigger(expr: str, timezone: str = "UTC") -> CronTrigger:
    """A CronTrigger for a five-field crontab expression read in ``timezone`` (wall-clock
    times there, across daylight-saving changes); ValueError when either is invalid.

    >>> from datetime import datetime
    >>> nightly = cron_trigger("0 22 * * *", "America/New_York")
    >>> next_fire(nightly, datetime(2024, 1, 15)), next_fire(nightly, datetime(2024, 7, 15))
    (datetime.datetime(2024, 1, 15, 3, 0), datetime.datetime(2024, 7, 15, 2, 0))
    """
    tz = zone(timezone)
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields: got {len(fields)}, expected 5")
    if fields[2] != "*" and fields[4] != "*":
        raise ValueError(
            "both day of month and day of week are restricted; crontab runs on either, "
            "APScheduler only on both, so restrict one of them"
        )
    fields[4] = crontab_day_of_week(fields[4])
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(" ".join(fields), timezone=tz)


def _aware(value: datetime) -> datetime:
    return to_naive_utc(value).replace(tzinfo=UTC)


def next_fire(trigger: BaseTrigger, after: datetime) -> datetime | None:
    """The first fire time at or after ``after`` (naive UTC), None when it never fires."""
    t: Any = trigger.get_next_fire_time(None, _aware(after))
    return None if t is None else to_naive_utc(t)


def last_fire(trigger: BaseTrigger, now: datetime, grace_seconds: float) -> datetime | None:
    """The newest fire time in ``[now - grace_seconds, now]`` (naive UTC), or None.

    With coalescing this is the one run a late or missed job still owes."""
    now_a = _aware(now)
    grace = max(0.0, grace_seconds)
    window = min(60.0, grace)
    while True:
        t: Any = trigger.get_next_fire_time(None, now_a - timedelta(seconds=window))
        if t is not None and t <= now_a:
            while True:  # walk forward to the newest one not after now
                n: Any = trigger.get_next_fire_time(t, t + timedelta(microseconds=1))
                if n is None or n > now_a:
                    return to_naive_utc(t)
                t = n
        if window >= grace:
            return None
        window = min(window * 2, grace)

"""Cron in a named time zone: wall-clock times there, the right UTC instant across DST."""

from __future__ import annotations

from datetime import datetime

import pytest

from retrainer.core.cron import cron_trigger, last_fire, next_fire
from retrainer.core.errors import ConfigError
from retrainer.core.spec import parse_spec
from retrainer.scheduler.jobs import build_jobs

BASE = {
    "task": "regression",
    "target": "y",
    "id_column": "id",
    "time_column": "t",
    "features": {"numeric": ["a"]},
}


def _spec(schedule: dict[str, object]) -> object:
    return parse_spec(
        {
            "store": "sqlite://",
            "artifacts": "memory://c",
            "models": {"m": {**BASE, "schedule": schedule}},
        },
        source="r.yaml",
        environ={},
    )


@pytest.mark.parametrize(
    ("after", "fires_utc"),
    [
        # spring forward on 2024-03-10: 22:00 EST (UTC-5) the night before, 22:00 EDT (UTC-4) after
        (datetime(2024, 3, 9, 12), datetime(2024, 3, 10, 3)),
        (datetime(2024, 3, 10, 12), datetime(2024, 3, 11, 2)),
        # fall back on 2024-11-03: 22:00 EDT the night before, 22:00 EST after
        (datetime(2024, 11, 2, 12), datetime(2024, 11, 3, 2)),
        (datetime(2024, 11, 3, 12), datetime(2024, 11, 4, 3)),
    ],
)
def test_nightly_22_in_new_york_fires_at_the_right_utc_instant_across_dst(
    after: datetime, fires_utc: datetime
) -> None:
    spec = _spec({"maintain": "0 22 * * *", "timezone": "America/New_York"})
    (job,) = build_jobs(spec)  # type: ignore[arg-type]
    assert job.timezone == "America/New_York"
    assert next_fire(job.trigger(), after) == fires_utc
    assert last_fire(job.trigger(), fires_utc, grace_seconds=60) == fires_utc


def test_default_zone_is_utc() -> None:
    (job,) = build_jobs(_spec({"maintain": "0 22 * * *"}))  # type: ignore[arg-type]
    assert next_fire(job.trigger(), datetime(2024, 3, 10, 12)) == datetime(2024, 3, 10, 22)
    assert next_fire(cron_trigger("0 22 * * *"), datetime(2024, 7, 1)) == datetime(2024, 7, 1, 22)


def test_unknown_time_zone_is_a_spec_error() -> None:
    with pytest.raises(ConfigError) as info:
        _spec({"maintain": "0 22 * * *", "timezone": "America/Gotham"})
    msg = str(info.value)
    assert "r.yaml: models.m.schedule.timezone" in msg
    assert "'America/Gotham' is not an IANA time zone" in msg and "America/New_York" in msg

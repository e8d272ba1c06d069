"""The scheduled feedback pull (schedule.feedback): the spec's feedback API pulled on a cron,
resumed from its since-cursor on the next run, recorded like every job; an API that is down
is a failed run and a job_failed alert; a schedule without feedback.url is a spec error."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from jsonapi import JsonApi
from retrainer.core.clock import SimClock, use_clock
from retrainer.core.errors import ConfigError
from retrainer.plumbing.workspace import Workspace
from retrainer.scheduler import build_jobs, run_once
from webhooks import Webhook

Make = Callable[..., Workspace]


class Outcomes(JsonApi):
    """A JSON API of weather outcomes on loopback: ``{"data": [...]}``, ``?since=`` inclusive."""

    def __init__(self) -> None:
        self.days: list[dict[str, Any]] = []
        super().__init__(self.answer)
        self.url += "/outcomes"

    def answer(self, path: str, auth: str | None) -> tuple[int, str, bytes]:
        since = parse_qs(urlsplit(path).query).get("since", [""])[0]
        rows = [d for d in self.days if d["date"] >= since]
        return 200, "application/json", json.dumps({"data": rows}).encode()


@pytest.fixture
def api() -> Iterator[Outcomes]:
    with Outcomes() as a:
        yield a


def _day(i: int) -> dict[str, Any]:
    return {"day_id": f"d{i}", "date": f"2024-01-{i:02d}T00:00:00", "rain": i % 2}


def _feed(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "records": "data", "since_param": "since", **extra}


def test_a_scheduled_pull_takes_new_outcomes_from_the_cursor(
    make_workspace: Make, api: Outcomes
) -> None:
    ws = make_workspace(schedule={"feedback": "0 * * * *"}, feedback=_feed(api.url))
    assert [(j.id, j.cron) for j in build_jobs(ws.spec)] == [("weather:feedback", "0 * * * *")]
    api.days = [_day(i) for i in (1, 2, 3)]
    clock = SimClock(datetime(2024, 1, 5, 10, 1))
    with use_clock(clock):
        (run,) = run_once(ws, owner="sched")
        assert (run.job, run.outcome) == ("feedback", "ok"), run.detail
        assert run.detail.startswith("3 received, 0 matched, 3 unmatched, 0 duplicates")
        assert "since-cursor none -> 2024-01-03T00:00:00" in run.detail
        assert run_once(ws, owner="sched") == []  # that hour ran
        api.days.append(_day(4))
        clock.advance(hours=1)
        (run,) = run_once(ws, owner="sched")
    # the second pull asked from the cursor: day 3 again (inclusive, a duplicate), day 4 new
    assert parse_qs(urlsplit(api.asked[-1]).query) == {"since": ["2024-01-03T00:00:00"]}
    assert run.outcome == "ok" and run.detail.startswith(
        "2 received, 0 matched, 1 unmatched, 1 dup"
    )
    assert [r.outcome for r in ws.store.job_runs("feedback")] == ["ok", "ok"]


def test_an_api_that_is_down_fails_the_job_and_alerts(
    make_workspace: Make,
    webhook: Webhook,
) -> None:
    down = "http://127.0.0.1:9/outcomes"  # the discard port: nothing listens
    ws = make_workspace(
        schedule={"feedback": "0 6 * * *"},
        feedback=_feed(down, retries=0, timeout_seconds=2),
        alerts={"webhooks": [webhook.url], "retries": 0},
    )
    with use_clock(SimClock(datetime(2024, 1, 5, 6, 0))):
        (run,) = run_once(ws, owner="sched")
    assert run.outcome == "failed" and run.detail.startswith("source_unavailable: GET ")
    assert "failed after 1 attempt(s)" in run.detail
    assert [b["text"] for b in webhook.bodies] == [
        "[weather] job_failed: scheduled feedback failed"
    ]


def test_a_feedback_schedule_needs_the_feedback_url(make_workspace: Make) -> None:
    ws = make_workspace(schedule={"feedback": "0 * * * *"})
    with pytest.raises(ConfigError) as caught:
        build_jobs(ws.spec)
    msg = caught.value.message
    assert "schedule.feedback: '0 * * * *'" in msg and "no feedback.url" in msg
    assert "Set feedback.url" in msg and "remove schedule.feedback" in msg

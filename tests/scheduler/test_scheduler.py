"""The scheduler: jobs from the spec, one leader among many, the model lease, grace periods,
every run recorded, failures alerted, and `retrainer scheduler --once`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.date import DateTrigger
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.errors import ConfigError
from retrainer.core.spec_sections import Schedule
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.plumbing.lease import held_lease
from retrainer.plumbing.workspace import Workspace
from retrainer.scheduler import (
    LEADER_LEASE,
    SchedulerService,
    build_jobs,
    cron_trigger,
    last_fire,
    next_fire,
    run_job,
    run_once,
)
from waits import CATCH_UP, SUBPROCESS, wait_until
from webhooks import Webhook

SCHEDULE = {"maintain": "0 */6 * * *", "full_retrain": "0 2 1 */3 *", "grace_seconds": 600}
Make = Callable[..., Workspace]


def wait_for(cond: Callable[[], bool], timeout: float = CATCH_UP) -> None:
    wait_until(cond, "the scheduler", timeout)


# ---- the job list and cron ----------------------------------------------------------------
def test_job_list_from_the_spec(make_workspace: Make) -> None:
    ws = make_workspace(schedule=SCHEDULE)
    jobs = build_jobs(ws.spec)
    assert [(j.id, j.kind, j.cron, j.grace_seconds) for j in jobs] == [
        ("weather:maintain", "maintain", "0 */6 * * *", 600),
        ("weather:full_retrain", "full_retrain", "0 2 1 */3 *", 600),
    ]
    maintain, full = (j.trigger() for j in jobs)
    assert next_fire(maintain, datetime(2024, 1, 1, 0, 30)) == datetime(2024, 1, 1, 6)
    assert next_fire(full, datetime(2024, 1, 15)) == datetime(2024, 4, 1, 2)
    assert build_jobs(make_workspace().spec) == []  # no schedule, no jobs


def test_cron_weekdays_mean_what_crontab_means() -> None:
    monday = datetime(2024, 1, 1)
    assert next_fire(cron_trigger("0 3 * * 0"), monday).strftime("%a") == "Sun"  # type: ignore[union-attr]
    assert next_fire(cron_trigger("0 3 * * 7"), monday).strftime("%a") == "Sun"  # type: ignore[union-attr]
    assert next_fire(cron_trigger("0 3 * * 5-7"), monday) == datetime(2024, 1, 5, 3)


def test_last_fire_respects_the_grace_period() -> None:
    six_hourly = cron_trigger("0 */6 * * *")
    assert last_fire(six_hourly, datetime(2024, 1, 1, 12, 30), 3600) == datetime(2024, 1, 1, 12)
    assert last_fire(six_hourly, datetime(2024, 1, 1, 13, 30), 3600) is None  # missed for good
    # several missed runs coalesce into the newest one
    assert last_fire(six_hourly, datetime(2024, 1, 2, 1), 86400) == datetime(2024, 1, 2)


def _unchecked_schedule(ws: Workspace, **schedule: Any) -> None:
    """Put a schedule into the workspace's spec past the spec loader's own cron check, so
    the scheduler's check is what is tested."""
    model = ws.spec.models["weather"]
    raw = Schedule.model_construct(**{**Schedule().model_dump(), **schedule})
    ws.spec = ws.spec.model_copy(
        update={"models": {"weather": model.model_copy(update={"schedule": raw})}}
    )


@pytest.mark.parametrize(
    ("key", "expr", "says"),
    [
        ("maintain", "0 */6 * *", "wrong number of fields"),
        ("full_retrain", "61 * * * *", "61"),
        ("fine_tune", "0 3 * * funday", "funday"),
        ("maintain", "0 3 1 * 1", "both day of month and day of week"),
        ("maintain", "0 0 31 2 *", "never fires"),
    ],
)
def test_invalid_cron_is_a_config_error_naming_model_and_key(
    make_workspace: Make, key: str, expr: str, says: str
) -> None:
    ws = make_workspace()
    _unchecked_schedule(ws, **{key: expr})
    with pytest.raises(ConfigError) as caught:
        SchedulerService(ws).start()
    msg = caught.value.message
    assert f"Model 'weather' has an invalid cron expression in schedule.{key}: {expr!r}" in msg
    assert says in msg and "e.g. '0 */6 * * *'" in msg
    assert caught.value.details == {"model": "weather", "key": f"schedule.{key}", "value": expr}


# ---- one leader -----------------------------------------------------------------------------
def test_two_schedulers_on_one_store_run_a_job_once(make_workspace: Make) -> None:
    ws_a, ws_b = make_workspace(schedule=SCHEDULE), make_workspace(schedule=SCHEDULE)
    a, b = SchedulerService(ws_a, ttl=5, owner="a"), SchedulerService(ws_b, ttl=5, owner="b")
    with a, b:
        assert (a.is_leader, b.is_leader) == (True, False)
        at = datetime.now(UTC) + timedelta(seconds=1)
        for service in (a, b):  # both fire at the same instant through APScheduler
            service.reschedule("weather:maintain", DateTrigger(at))
        wait_for(lambda: sum(r.outcome != "running" for r in ws_a.store.job_runs()) == 2)
    runs = {r.owner: r for r in ws_a.store.job_runs()}
    assert (runs["a"].job, runs["a"].outcome) == ("maintain", "ok")
    assert runs["b"].outcome == "skipped"
    assert (
        runs["b"].detail
        == f"not leader: lease {LEADER_LEASE!r} is held by a until "
        + (runs["b"].detail or "").split(" until ")[1]
    )
    assert runs["a"].scheduled_for == runs["b"].scheduled_for == at.replace(tzinfo=None)
    assert len(ws_a.store.decisions("weather")) == 1  # maintain ran once
    assert ws_a.store.lease_holder(LEADER_LEASE) is None  # released on stop


def test_a_scheduled_time_runs_once_even_across_leaders(make_workspace: Make) -> None:
    ws = make_workspace(schedule=SCHEDULE)
    at = datetime(2024, 1, 1, 6)
    first = run_job(ws, "maintain", "weather", at, owner="a")
    again = run_job(ws, "maintain", "weather", at, owner="b")
    assert (first.outcome, again.outcome) == ("ok", "skipped")
    assert again.detail == f"already ran: run {first.run_id} by a (ok)"
    assert len(ws.store.decisions("weather")) == 1


def test_a_crashed_leader_is_replaced_after_its_lease_expires(make_workspace: Make) -> None:
    ws_a, ws_b = make_workspace(schedule=SCHEDULE), make_workspace(schedule=SCHEDULE)
    a, b = SchedulerService(ws_a, ttl=1, owner="a"), SchedulerService(ws_b, ttl=1, owner="b")
    with a, b:
        assert a.is_leader and not b.is_leader
        a.leader.stop(release=False)  # a crash: no more heartbeats, the lease stays behind
        at = datetime(2024, 1, 1, 6)
        early = b.run_now("weather:maintain", at)
        assert early.outcome == "skipped" and "held by a" in early.detail
        wait_until(lambda: b.is_leader, "b to take the expired lease over")
        assert ws_b.store.lease_holder(LEADER_LEASE)[0] == "b"  # type: ignore[index]
        late = b.run_now("weather:maintain", at)
        assert late.outcome == "ok"
        assert b.status()["leader"] and b.status()["leader_owner"] == "b"
    assert [r.outcome for r in ws_b.store.job_runs("maintain")] == ["ok", "skipped"]


# ---- the model lease, failures, run_once ------------------------------------------------------
def test_a_manual_run_holding_the_model_lease_makes_the_job_skip(make_workspace: Make) -> None:
    ws = make_workspace(schedule={"full_retrain": "0 * * * *", "maintain": "0 * * * *"})
    with held_lease(ws, "model:weather", owner="manual:1:x"):
        runs = run_once(ws, owner="sched")
    assert [(r.job, r.outcome) for r in runs] == [
        ("maintain", "skipped"),
        ("full_retrain", "skipped"),
    ]
    held = "model lease held: Lease 'model:weather' is held by 'manual:1:x'"
    assert all(r.detail.startswith(held) for r in runs)
    assert ws.store.decisions("weather") == []  # nothing trained, nothing decided
    assert len(run_once(ws, owner="sched")) == 2  # skipped times are retried while due


def test_a_failing_job_is_recorded_and_alerted(make_workspace: Make, webhook: Webhook) -> None:
    ws = make_workspace(
        schedule={"fine_tune": "0 * * * *"}, alerts={"webhooks": [webhook.url], "retries": 0}
    )
    runs = run_once(ws, owner="sched")  # no champion to fine-tune
    assert [(r.job, r.outcome) for r in runs] == [("fine_tune", "failed")]
    assert runs[0].detail.startswith("no_champion: Model 'weather' has no champion")
    row = ws.store.job_runs("fine_tune")[0]
    assert (row.outcome, row.owner, row.finished_at is not None) == ("failed", "sched", True)
    assert [b["text"] for b in webhook.bodies] == [
        "[weather] job_failed: scheduled fine_tune failed"
    ]
    fields = {f["title"]: f["value"] for f in webhook.bodies[0]["attachments"][0]["fields"]}
    assert fields["job"] == "fine_tune" and fields["run"] == str(row.id)
    assert run_once(ws, owner="sched") == []  # that time ran (and failed): not due again


def test_run_once_when_another_scheduler_leads_records_skips(make_workspace: Make) -> None:
    ws = make_workspace(schedule={"maintain": "0 * * * *"})
    ws.store.acquire_lease(LEADER_LEASE, "other:1:x", 30)
    runs = run_once(ws, owner="me")
    assert [(r.outcome, r.detail.split(" until ")[0]) for r in runs] == [
        ("skipped", f"not leader: lease {LEADER_LEASE!r} is held by other:1:x")
    ]
    assert ws.store.decisions("weather") == []


def test_run_once_skips_a_run_missed_beyond_the_grace(make_workspace: Make) -> None:
    ws = make_workspace(schedule={"maintain": "0 */6 * * *", "grace_seconds": 600})
    assert run_once(ws, now=datetime(2024, 1, 1, 6, 20)) == []
    [r] = run_once(ws, now=datetime(2024, 1, 1, 6, 5))
    assert (r.scheduled_for, r.outcome) == (datetime(2024, 1, 1, 6), "ok")


# ---- the CLI --------------------------------------------------------------------------------
runner = CliRunner()


def _once(path: Path) -> tuple[int, Any]:
    res = runner.invoke(app, ["-c", str(path), "scheduler", "--once", "--json"])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, json.loads(res.stdout)


def test_cli_once_json_exit_codes(config_file: Callable[..., Path]) -> None:
    code, body = _once(config_file(schedule={"maintain": "0 * * * *"}))
    assert code == 0
    [run] = body["runs"]
    assert set(run) == {"run_id", "job", "model", "scheduled_for", "outcome", "detail"}
    assert (run["job"], run["model"], run["outcome"]) == ("maintain", "weather", "ok")
    code, body = _once(config_file(schedule={"maintain": "0 * * * *"}))
    assert (code, body) == (0, {"runs": []})  # nothing due any more

    code, body = _once(config_file(schedule={"fine_tune": "0 * * * *"}))
    assert code == 1 and body["runs"][0]["outcome"] == "failed"

    code, body = _once(config_file(schedule={"fine_tune": "0 0 31 2 *"}))
    assert (code, body["error"]) == (2, "config_invalid")
    assert "Model 'weather' has an invalid cron expression in schedule.fine_tune" in body["message"]


def test_scheduled_training_takes_the_model_lease_and_records_the_version(
    make_workspace: Make, weather_df: Any
) -> None:
    ws = make_workspace(
        schedule={"full_retrain": "0 * * * *", "fine_tune": "0 * * * *"},
        params={"n_estimators": 20, "num_threads": 1},
    )
    ingest_frame(ws, "weather", weather_df[weather_df["date"] < "1952-01-01"])
    full, tune = run_once(ws, owner="sched")
    assert (full.job, full.outcome, full.detail) == (
        "full_retrain",
        "ok",
        "first version: deployed 1.0.0",
    )
    [version] = ws.store.list_versions("weather")
    assert version.created_by == "schedule"
    # the champion's window holds every row: nothing new to fine-tune on yet
    assert (tune.job, tune.outcome) == ("fine_tune", "skipped")
    assert tune.detail.startswith("not enough new rows: Model 'weather' has 0 new rows")
    assert ws.store.lease_holder("model:weather") is None


def test_cli_runs_in_the_foreground_until_sigterm(config_file: Callable[..., Path]) -> None:
    path = config_file(schedule={"maintain": "0 */6 * * *"})
    exe = Path(sys.executable).with_name("retrainer")
    proc = subprocess.Popen(
        [str(exe), "-c", str(path), "scheduler", "--json", "--ttl", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "}\n":  # the status document, printed once started
            line = proc.stdout.readline()
            assert line, f"exited early: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
        status = json.loads("".join(lines))
        assert status["leader"] and [j["id"] for j in status["jobs"]] == ["weather:maintain"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=SUBPROCESS) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with Workspace.open(path) as ws:
        assert ws.store.lease_holder(LEADER_LEASE) is None  # released on the way out

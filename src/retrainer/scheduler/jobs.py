"""Scheduled jobs: the list built from each model's ``schedule``, and one run of one job.

A run is recorded in ``job_runs`` with its outcome: ``ok``, ``failed`` (and a ``job_failed``
alert) or ``skipped`` (not the leader, the model's lease is held by a manual run, the same
scheduled time already ran, too few new rows to fine-tune). Training jobs hold the model's
lease ``model:<name>``, the one ``maintain`` takes, so a manual run and the scheduler never
both train one model. A fleet entry's job runs for every member and is recorded as the
fleet's one run (:mod:`.fleet_jobs`).

>>> from retrainer.core.spec import parse_spec
>>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://jobs", "models": {"m": {
...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
...     "features": {"numeric": ["x"]}, "schedule": {"maintain": "0 */6 * * *"}}}}, environ={})
>>> [(j.id, j.cron, j.grace_seconds) for j in build_jobs(spec)]
[('m:maintain', '0 */6 * * *', 3600)]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from apscheduler.triggers.cron import CronTrigger

from ..alerts import Alert, Alerter
from ..core.clock import utcnow
from ..core.cron import FORMAT_HINT, cron_trigger, next_fire
from ..core.errors import CapabilityError, ConfigError, InputError, LeaseHeld, RetrainerError
from ..core.spec import Spec
from ..plumbing.lease import default_owner, held_lease, model_lease
from ..plumbing.workspace import Workspace
from .leader import LEADER_LEASE

log = logging.getLogger("retrainer.scheduler")

KINDS: Final = ("maintain", "full_retrain", "fine_tune", "feedback")
DONE: Final = ("running", "ok", "failed")  # outcomes that count as "this time already ran"


@dataclass(frozen=True)
class ScheduledJob:
    """One cron job of one model: ``kind`` is maintain, full_retrain, fine_tune or feedback."""

    model: str
    kind: str
    cron: str
    grace_seconds: int
    timezone: str = "UTC"  # the zone the cron expression is read in (schedule.timezone)

    @property
    def id(self) -> str:
        return f"{self.model}:{self.kind}"

    def trigger(self) -> CronTrigger:
        return cron_trigger(self.cron, self.timezone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "job": self.kind,
            "cron": self.cron,
            "grace_seconds": self.grace_seconds,
        }


@dataclass(frozen=True)
class JobOutcome:
    """What one run did; ``run_id`` is its row in ``job_runs``."""

    run_id: int
    job: str
    model: str
    scheduled_for: datetime | None
    outcome: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        at = None if self.scheduled_for is None else self.scheduled_for.isoformat()
        return {
            "run_id": self.run_id,
            "job": self.job,
            "model": self.model,
            "scheduled_for": at,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def validate_schedules(spec: Spec) -> None:
    """Raise ConfigError naming the model and key of the first cron expression that is
    invalid or never fires.

    >>> from retrainer.core.spec import parse_spec
    >>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://v", "models": {"m": {
    ...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
    ...     "features": {"numeric": ["x"]}, "schedule": {"fine_tune": "0 0 31 2 *"}}}},
    ...     environ={})
    >>> validate_schedules(spec)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    retrainer.core.errors.ConfigError: Model 'm' has an invalid cron expression in \
schedule.fine_tune: '0 0 31 2 *' (it never fires). ...
    """
    for name, model in spec.models.items():
        if model.schedule.feedback is not None and model.feedback.url is None:
            raise ConfigError(
                f"Model {name!r} schedules a feedback pull (schedule.feedback: "
                f"{model.schedule.feedback!r}) but has no feedback.url to pull from. Set "
                "feedback.url (and feedback.records, next, since_param as the API needs) or "
                "remove schedule.feedback.",
                model=name,
                key="schedule.feedback",
                value=model.schedule.feedback,
            )
        for kind in KINDS:
            expr = getattr(model.schedule, kind)
            if expr is None:
                continue
            try:
                trigger = cron_trigger(expr, model.schedule.timezone)
                problem = None if next_fire(trigger, utcnow()) else "it never fires"
            except ValueError as exc:
                problem = str(exc)
            if problem:
                raise ConfigError(
                    f"Model {name!r} has an invalid cron expression in schedule.{kind}: "
                    f"{expr!r} ({problem}). {FORMAT_HINT} Fix it in the spec or set "
                    f"RETRAINER_{name.upper()}__SCHEDULE__{kind.upper()}.",
                    model=name,
                    key=f"schedule.{kind}",
                    value=expr,
                )


def build_jobs(spec: Spec) -> list[ScheduledJob]:
    """Every scheduled job of the spec, by model then kind (maintain, full_retrain,
    fine_tune, feedback). Validates the cron expressions first."""
    validate_schedules(spec)
    return [
        ScheduledJob(name, kind, expr, model.schedule.grace_seconds, model.schedule.timezone)
        for name, model in sorted(spec.models.items())
        for kind in KINDS
        if (expr := getattr(model.schedule, kind)) is not None
    ]


class Alerters:
    """One Alerter per model, created on first use; ``close`` flushes them all."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._by_model: dict[str, Alerter] = {}
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        with self._lock:
            if alert.model not in self._by_model:
                self._by_model[alert.model] = Alerter(self._ws.model_spec(alert.model).alerts)
            alerter = self._by_model[alert.model]
        alerter.send(alert)

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            alerters, self._by_model = list(self._by_model.values()), {}
        for alerter in alerters:
            alerter.close(timeout)


def previous_run(ws: Workspace, job: str, model: str, scheduled_for: datetime) -> Any:
    """The run (running, ok or failed) already recorded for this job and time, or None."""
    for run in ws.store.job_runs(job, limit=200):
        if run.model == model and run.scheduled_for == scheduled_for and run.outcome in DONE:
            return run
    return None


def run_job(
    ws: Workspace,
    job: str,
    model: str,
    scheduled_for: datetime | None,
    *,
    owner: str | None = None,
    is_leader: Callable[[], bool] | None = None,
    alert: Callable[[Alert], object] | None = None,
) -> JobOutcome:
    """Run job ``job`` (maintain, full_retrain, fine_tune, feedback) of ``model`` once and
    record it. A feedback job pulls the spec's ``feedback`` API from its since-cursor.

    ``is_leader`` is asked right before the work (a non-leader records ``skipped``);
    ``alert`` receives the ``job_failed`` alert (default: the model's webhooks, flushed
    before returning). Never raises for a failed job: the outcome says what happened.
    """
    if job not in KINDS:
        raise InputError(
            f"Scheduled job {job!r} is not known. Expected one of: {', '.join(KINDS)}.", job=job
        )
    fleet = ws.model_spec(model).is_fleet  # ModelNotFound for an unknown model
    owner = owner or default_owner()

    def skipped(detail: str) -> JobOutcome:
        run_id = ws.store.record_skipped_job_run(job, model, scheduled_for, owner, detail)
        log.info("Scheduled %s of %r skipped: %s", job, model, detail)
        return JobOutcome(run_id, job, model, scheduled_for, "skipped", detail)

    if is_leader is not None and not is_leader():
        holder = ws.store.lease_holder(LEADER_LEASE)
        who = f"{holder[0]} until {holder[1]:%H:%M:%S} UTC" if holder else "nobody right now"
        return skipped(f"not leader: lease {LEADER_LEASE!r} is held by {who}")
    if scheduled_for is not None and (prev := previous_run(ws, job, model, scheduled_for)):
        return skipped(f"already ran: run {prev.id} by {prev.owner} ({prev.outcome})")
    run_id = ws.store.record_job_run(job, model, scheduled_for, owner)
    if fleet and job != "feedback":  # every member, recorded as the fleet's one run
        outcome, detail = _execute_fleet(ws, job, model, owner)
    else:
        outcome, detail = _execute(ws, job, model, owner)
    ws.store.finish_job_run(run_id, outcome, detail)
    result = JobOutcome(run_id, job, model, scheduled_for, outcome, detail)
    log.log(
        logging.WARNING if outcome == "failed" else logging.INFO,
        "Scheduled %s of %r: %s: %s",
        job,
        model,
        outcome,
        detail,
    )
    if outcome == "failed":
        _alert_failure(ws, result, owner, alert)
    return result


def _execute(ws: Workspace, job: str, model: str, owner: str) -> tuple[str, str]:
    # the operations are imported when a job runs: a server that only schedules (and every
    # `retrainer serve`) starts without the training stack (scipy.stats, sklearn: seconds)
    from ..lifecycle.fine_tune import fine_tune
    from ..lifecycle.maintain import maintain, resume_pending
    from ..lifecycle.rollout import outcome
    from ..lifecycle.train import train

    try:
        if job == "maintain":
            r = maintain(ws, model, triggered_by="schedule")
            d, said = r.decision, r.decision.outcome or ""
            return ("failed" if r.failed else "ok"), f"{d.action}: {said}"
        if job == "feedback":
            return "ok", _pull_feedback(ws, model)
        with held_lease(ws, model_lease(model), owner=owner):
            resume_pending(ws, model)  # a killed maintain's decision, before training anew
            job, reason = _what_to_train(ws, job, model)
            version = None
            if job == "fine_tune":
                try:
                    version = fine_tune(
                        ws,
                        model,
                        deploy=True,
                        require_pass=True,
                        created_by="schedule",
                        reason=reason,
                    ).version
                except CapabilityError as exc:  # a family or feature change: as maintain does
                    reason = (
                        f"{exc.message.split('. ')[0]}: this scheduled fine-tune is a full retrain"
                    )
                except InputError as exc:  # too few new rows: nothing to learn from yet
                    return "skipped", f"not enough new rows: {exc.message}"
            if version is None:
                version = train(
                    ws, model, created_by="schedule", deploy=True, require_pass=True, reason=reason
                ).version
            said = outcome(version, ws.store.roles(model))
            return "ok", said if reason.startswith("scheduled") else f"{reason}; {said}"
    except LeaseHeld as exc:
        return "skipped", f"model lease held: {exc.message}"
    except RetrainerError as exc:
        return "failed", f"{exc.code}: {exc.message}"
    except Exception as exc:  # a bug must not kill the scheduler; it is recorded and alerted
        log.exception("Scheduled %s of %r raised.", job, model)
        return "failed", f"{type(exc).__name__}: {exc}"


def _execute_fleet(ws: Workspace, job: str, fleet: str, owner: str) -> tuple[str, str]:
    from .fleet_jobs import run_fleet_job

    try:
        return run_fleet_job(ws, job, fleet, owner, _execute)
    except RetrainerError as exc:  # the fleet's Dask scheduler cannot be reached
        return "failed", f"{exc.code}: {exc.message}"


def _pull_feedback(ws: Workspace, model: str) -> str:
    """Pull the spec's feedback API once (as ``retrainer feedback MODEL``) and say what came."""
    from ..lifecycle.feedback_http import feedback_from_url, http_source

    source, fields = http_source(ws.model_spec(model).feedback, model)
    pulled = feedback_from_url(ws, model, source, fields)
    r = pulled.result
    since = "none" if pulled.since is None else pulled.since
    return (
        f"{r.received} received, {r.matched} matched, {r.unmatched} unmatched, "
        f"{r.duplicates} duplicates, {r.rejected} rejected; {r.training_rows_added} training "
        f"rows added from {pulled.source} ({pulled.pages} page(s), since-cursor "
        f"{since} -> {pulled.cursor})"
    )


def _what_to_train(ws: Workspace, job: str, model: str) -> tuple[str, str]:
    """The job to run and its reason: a scheduled fine-tune once ``policy.max_fine_tunes``
    fine-tunes were made since the last full retrain is a full retrain, as with maintain."""
    limit = ws.model_spec(model).policy.max_fine_tunes
    if job == "fine_tune" and limit is not None:
        from ..lifecycle.maintain import fine_tunes_since_full_retrain

        made = len(fine_tunes_since_full_retrain(ws.store.list_versions(model)))
        if made >= limit:
            return "full_retrain", (
                f"{made} fine-tunes since the last full retrain reach policy.max_fine_tunes "
                f"({limit}): this scheduled fine-tune is a full retrain"
            )
    return job, {"full_retrain": "scheduled full retrain", "fine_tune": "scheduled fine-tune"}[job]


def _alert_failure(
    ws: Workspace, r: JobOutcome, owner: str, alert: Callable[[Alert], object] | None
) -> None:
    when = "now" if r.scheduled_for is None else f"{r.scheduled_for:%Y-%m-%d %H:%M} UTC"
    a = Alert(
        "job_failed",
        r.model,
        f"scheduled {r.job} failed",
        r.detail.splitlines()[0] if r.detail else "",
        {"job": r.job, "scheduled_for": when, "run": r.run_id, "owner": owner},
    )
    if alert is not None:
        alert(a)
        return
    with Alerter(ws.model_spec(r.model).alerts) as alerter:
        alerter.send(a)

"""Run the scheduled jobs: in the background of a process (``SchedulerService``, used by
``retrainer serve`` and ``retrainer scheduler``) or once, now (``run_once``).

Any number of schedulers may run against one store: only the holder of the
``scheduler-leader`` lease runs jobs, the others record ``skipped: not leader``. A run late
by up to the model's ``schedule.grace_seconds`` still happens; several missed runs of one job
coalesce into one; a run later than that is recorded as skipped.

>>> from retrainer.core.spec import parse_spec
>>> from retrainer.plumbing.workspace import Workspace
>>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://svc", "models": {"m": {
...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
...     "features": {"numeric": ["x"]}, "schedule": {"maintain": "0 */6 * * *"}}}}, environ={})
>>> with Workspace(spec) as ws, SchedulerService(ws, ttl=5) as service:
...     [job["id"] for job in service.status()["jobs"]], service.is_leader
(['m:maintain'], True)
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from ..core.clock import to_naive_utc, utcnow
from ..core.cron import last_fire
from ..core.errors import ConflictError, InputError, LeaseHeld
from ..plumbing.lease import default_owner, held_lease
from ..plumbing.workspace import Workspace
from .jobs import Alerters, JobOutcome, ScheduledJob, build_jobs, previous_run, run_job
from .leader import LEADER_LEASE, LeaderElector

log = logging.getLogger("retrainer.scheduler")


class SchedulerService:
    """APScheduler cron jobs for every model's ``schedule``, gated by the leader lease.

    ``start()`` validates the schedules (ConfigError naming model and key), starts the
    leader heartbeat and the background scheduler, and returns; ``stop()`` waits for a
    running job (unless ``wait=False``), releases the leader lease and flushes alerts.
    Jobs run one at a time (``max_workers``) on the scheduler's threads with ``ws``.
    """

    def __init__(
        self, ws: Workspace, *, ttl: float = 30.0, owner: str | None = None, max_workers: int = 1
    ) -> None:
        self.ws = ws
        self.owner = owner or default_owner()
        self.leader = LeaderElector(ws.store, owner=self.owner, ttl=ttl)
        self.max_workers = max_workers
        self.jobs: list[ScheduledJob] = []
        self.scheduler: BackgroundScheduler | None = None
        self._alerters = Alerters(ws)
        self._triggers: dict[str, BaseTrigger] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SchedulerService(owner={self.owner!r}, jobs={len(self.jobs)}, running={self.running})"
        )

    def __enter__(self) -> SchedulerService:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.scheduler is not None

    @property
    def is_leader(self) -> bool:
        return self.leader.is_leader

    def start(self) -> None:
        with self._lock:
            if self.scheduler is not None:
                return
            self.jobs = build_jobs(self.ws.spec)
            sched = BackgroundScheduler(
                timezone=UTC,
                executors={"default": ThreadPoolExecutor(self.max_workers)},
                job_defaults={"coalesce": True, "max_instances": 1},
            )
            self._triggers = {job.id: job.trigger() for job in self.jobs}
            for job in self.jobs:
                sched.add_job(
                    self._fire,
                    trigger=self._triggers[job.id],
                    args=[job],
                    id=job.id,
                    name=f"{job.kind} {job.model}",
                    misfire_grace_time=max(1, job.grace_seconds),  # APScheduler needs >= 1
                )
            sched.add_listener(self._on_skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
            self.leader.start()
            sched.start()
            self.scheduler = sched
        log.info("Scheduler %s started with %d job(s).", self.owner, len(self.jobs))

    def stop(self, *, wait: bool = True) -> None:
        with self._lock:
            sched, self.scheduler = self.scheduler, None
        if sched is not None:
            sched.shutdown(wait=wait)
        self.leader.stop(release=True)
        self._alerters.close()

    def job(self, job_id: str) -> ScheduledJob:
        for job in self.jobs:
            if job.id == job_id:
                return job
        known = ", ".join(j.id for j in self.jobs) or "none (no model has a schedule)"
        raise InputError(f"Scheduled job {job_id!r} is not known. Known jobs: {known}.", job=job_id)

    def reschedule(self, job_id: str, trigger: BaseTrigger) -> None:
        """Give a running job another APScheduler trigger (e.g. a DateTrigger in a test)."""
        job, sched = self.job(job_id), self.scheduler
        if sched is None:
            raise ConflictError(
                f"The scheduler is not running; start it before rescheduling {job_id!r}."
            )
        self._triggers[job.id] = trigger
        sched.reschedule_job(job.id, trigger=trigger)

    def run_now(self, job_id: str, scheduled_for: datetime | None = None) -> JobOutcome:
        """Run one job now on the calling thread, as the leader would (a non-leader records
        ``skipped``). Used by an admin route and tests."""
        job = self.job(job_id)
        return run_job(
            self.ws,
            job.kind,
            job.model,
            scheduled_for,
            owner=self.owner,
            is_leader=self.leader.confirm,
            alert=self._alerters.send,
        )

    def status(self) -> dict[str, Any]:
        """Owner, leadership, the current leader and every job with its next run time."""
        holder = self.ws.store.lease_holder(LEADER_LEASE)
        sched = self.scheduler
        jobs = []
        for job in self.jobs:
            aps = sched.get_job(job.id) if sched is not None else None
            nxt = getattr(aps, "next_run_time", None)
            jobs.append(
                {
                    **job.to_dict(),
                    "next_run": None if nxt is None else to_naive_utc(nxt).isoformat(),
                }
            )
        return {
            "owner": self.owner,
            "running": sched is not None,
            "leader": self.is_leader,
            "leader_owner": holder[0] if holder else None,
            "jobs": jobs,
        }

    # ---- APScheduler callbacks ----------------------------------------------------------
    def _fire(self, job: ScheduledJob) -> None:
        trigger = self._triggers.get(job.id) or job.trigger()
        scheduled_for = last_fire(trigger, utcnow(), job.grace_seconds + 60) or utcnow()
        try:
            run_job(
                self.ws,
                job.kind,
                job.model,
                scheduled_for,
                owner=self.owner,
                is_leader=self.leader.confirm,
                alert=self._alerters.send,
            )
        except Exception:  # e.g. the store went away while recording; the next run retries
            log.exception("Scheduled %s of %r could not be recorded.", job.kind, job.model)

    def _on_skipped(self, event: JobEvent) -> None:
        job = next((j for j in self.jobs if j.id == event.job_id), None)
        if job is None or not self.is_leader:
            return
        if isinstance(event, JobExecutionEvent):
            times = [event.scheduled_run_time]
            detail = f"missed: started more than grace_seconds ({job.grace_seconds}s) late"
        elif isinstance(event, JobSubmissionEvent):
            times = list(event.scheduled_run_times)
            detail = "previous run still going (one run of a job at a time)"
        else:
            return
        try:
            for at in times:
                store = self.ws.store
                store.record_skipped_job_run(
                    job.kind, job.model, to_naive_utc(at), self.owner, detail
                )
        except Exception:
            log.exception("Recording a skipped run of %s failed.", job.id)


def run_once(
    ws: Workspace, *, now: datetime | None = None, owner: str | None = None, ttl: float = 30.0
) -> list[JobOutcome]:
    """Run every due job once, now: a job is due when its newest cron time lies within its
    grace period and that time has not run yet. Holds the leader lease meanwhile; when
    another scheduler leads, every due job is recorded as skipped. Safe to call from cron
    every few minutes: a time that ran is not due again."""
    at = now or utcnow()
    owner = owner or default_owner()
    due: list[tuple[ScheduledJob, datetime]] = []
    for job in build_jobs(ws.spec):
        t = last_fire(job.trigger(), at, job.grace_seconds)
        if t is not None and previous_run(ws, job.kind, job.model, t) is None:
            due.append((job, t))
    if not due:
        return []
    alerters = Alerters(ws)
    results: list[JobOutcome] = []
    try:
        with held_lease(ws, LEADER_LEASE, owner=owner, ttl=ttl) as lease:
            for job, t in due:
                results.append(
                    run_job(
                        ws,
                        job.kind,
                        job.model,
                        t,
                        owner=owner,
                        is_leader=lambda: not lease.lost,
                        alert=alerters.send,
                    )
                )
    except LeaseHeld:
        done = len(results)
        for job, t in due[done:]:
            results.append(
                run_job(ws, job.kind, job.model, t, owner=owner, is_leader=lambda: False)
            )
    finally:
        alerters.close()
    return results

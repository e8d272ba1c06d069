"""Leases (one holder per name, with an expiry) and the job-run log.

A lease is a row in ``locks``. Taking it is one upsert in one write transaction: insert when
absent, take over when expired, renew when the caller already holds it; otherwise the row is
left alone. PostgreSQL row-locks the conflicting row and SQLite serialises writers
(``BEGIN IMMEDIATE``), so two callers never both win.

>>> from datetime import datetime
>>> from retrainer.store import SqlStore
>>> store = SqlStore("sqlite://")
>>> t0 = datetime(2024, 1, 1)
>>> store.acquire_lease("scheduler", "a", 60, now=t0)
True
>>> store.acquire_lease("scheduler", "b", 60, now=t0)
False
>>> store.lease_holder("scheduler", now=t0)
('a', datetime.datetime(2024, 1, 1, 0, 1))
>>> store.acquire_lease("scheduler", "b", 60, now=datetime(2024, 1, 1, 0, 2))  # expired
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..core.clock import utcnow
from ..core.errors import ConflictError, InputError
from . import schema as t
from .base import StoreBase

RUNNING = "running"


@dataclass(frozen=True)
class JobRun:
    """One run of a scheduled job. ``outcome`` is ``running`` until it finishes (by
    convention then ``ok``, ``failed`` or ``skipped``); ``finished_at`` is None until then."""

    id: int
    job: str
    model: str | None
    scheduled_for: datetime | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    detail: str | None
    owner: str


def _check_ttl(ttl_seconds: float) -> timedelta:
    if not ttl_seconds > 0:
        raise InputError(
            f"Lease ttl_seconds must be a positive number of seconds. Got {ttl_seconds!r}.",
            ttl_seconds=ttl_seconds,
        )
    return timedelta(seconds=ttl_seconds)


def _check_name(kind: str, value: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise InputError(
            f"{kind} must be 1 to {limit} characters. Got {value!r} ({len(value)} characters).",
            value=value,
        )


class LeaseStore(StoreBase):
    # ---- leases -------------------------------------------------------------------------
    def acquire_lease(
        self, name: str, owner: str, ttl_seconds: float, *, now: datetime | None = None
    ) -> bool:
        """Take the lease ``name`` for ``owner`` until now + ttl. True when ``owner`` holds
        it afterwards (new, taken over from an expired holder, or renewed); False when
        another owner holds a live lease."""
        _check_name("Lease name", name, 128)
        _check_name("Lease owner", owner, 128)
        ttl = _check_ttl(ttl_seconds)
        now = now or utcnow()
        row = {"name": name, "owner": owner, "expires_at": now + ttl}
        c = t.locks.c
        with self.write() as conn:
            ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
                t.locks
            ).values(**row)
            stmt = ins.on_conflict_do_update(
                index_elements=["name"],
                set_={"owner": ins.excluded.owner, "expires_at": ins.excluded.expires_at},
                where=(c.expires_at <= now) | (c.owner == owner),
            )
            conn.execute(stmt)
            holder = conn.execute(select(c.owner).where(c.name == name)).scalar()
        return bool(holder == owner)

    def renew_lease(
        self, name: str, owner: str, ttl_seconds: float, *, now: datetime | None = None
    ) -> bool:
        """Push the expiry of a lease ``owner`` holds to now + ttl. False when the row is
        gone or another owner has it (the lease was lost)."""
        ttl = _check_ttl(ttl_seconds)
        now = now or utcnow()
        c = t.locks.c
        with self.write() as conn:
            result = conn.execute(
                update(t.locks).where(c.name == name, c.owner == owner).values(expires_at=now + ttl)
            )
        return bool(result.rowcount)

    def release_lease(self, name: str, owner: str) -> bool:
        """Drop the lease if ``owner`` holds it; True when a row was removed."""
        c = t.locks.c
        with self.write() as conn:
            result = conn.execute(delete(t.locks).where(c.name == name, c.owner == owner))
        return bool(result.rowcount)

    def lease_holder(
        self, name: str, *, now: datetime | None = None
    ) -> tuple[str, datetime] | None:
        """(owner, expires_at) of the live lease ``name``; None when free or expired."""
        now = now or utcnow()
        c = t.locks.c
        with self.read() as conn:
            row = conn.execute(select(c.owner, c.expires_at).where(c.name == name)).first()
        if row is None or row.expires_at <= now:
            return None
        return str(row.owner), row.expires_at

    # ---- job runs -----------------------------------------------------------------------
    def record_job_run(
        self,
        job: str,
        model: str | None,
        scheduled_for: datetime | None,
        owner: str,
        *,
        now: datetime | None = None,
    ) -> int:
        """Log that ``owner`` started ``job``; returns the run id for ``finish_job_run``.

        >>> from retrainer.store import SqlStore
        >>> store = SqlStore("sqlite://")
        >>> run = store.record_job_run("maintain", "churn", None, "host:1:ab")
        >>> store.finish_job_run(run, "ok", "nothing to do")
        >>> [(r.job, r.outcome, r.detail) for r in store.job_runs()]
        [('maintain', 'ok', 'nothing to do')]
        """
        return self._insert_run(job, model, scheduled_for, owner, now=now)

    def record_skipped_job_run(
        self,
        job: str,
        model: str | None,
        scheduled_for: datetime | None,
        owner: str,
        detail: str,
        *,
        now: datetime | None = None,
    ) -> int:
        """Log a run ``owner`` skipped, finished as it is written: a skip never shows as a
        running run, which another scheduler would take for the job's run at that time.

        >>> from retrainer.store import SqlStore
        >>> store = SqlStore("sqlite://")
        >>> _ = store.record_skipped_job_run("maintain", "churn", None, "host:1:ab", "not leader")
        >>> [(r.outcome, r.detail, r.finished_at is not None) for r in store.job_runs()]
        [('skipped', 'not leader', True)]
        """
        return self._insert_run(job, model, scheduled_for, owner, now=now, skipped=detail)

    def _insert_run(
        self,
        job: str,
        model: str | None,
        scheduled_for: datetime | None,
        owner: str,
        *,
        now: datetime | None,
        skipped: str | None = None,
    ) -> int:
        _check_name("Job name", job, 128)
        _check_name("Job owner", owner, 128)
        at = now or utcnow()
        values = {
            "job": job,
            "model": model,
            "scheduled_for": scheduled_for,
            "started_at": at,
            "outcome": RUNNING,
            "owner": owner,
        }
        if skipped is not None:
            values.update(outcome="skipped", detail=skipped, finished_at=at)
        with self.write() as conn:
            result = conn.execute(t.job_runs.insert().values(**values).returning(t.job_runs.c.id))
            return int(result.scalar_one())

    def finish_job_run(
        self, run_id: int, outcome: str, detail: str | None = None, *, now: datetime | None = None
    ) -> None:
        """Close a run with its outcome (``ok``, ``failed``, ``skipped``) and a detail."""
        _check_name("Job outcome", outcome, 32)
        c = t.job_runs.c
        with self.write() as conn:
            result = conn.execute(
                update(t.job_runs)
                .where(c.id == run_id)
                .values(outcome=outcome, detail=detail, finished_at=now or utcnow())
            )
        if not result.rowcount:
            raise ConflictError(
                f"Job run {run_id} does not exist, so it cannot be finished. "
                "Use the id that record_job_run returned.",
                run_id=run_id,
            )

    def job_runs(self, job: str | None = None, limit: int = 50) -> list[JobRun]:
        """The newest runs first, of one job or of all."""
        c = t.job_runs.c
        q = select(t.job_runs)
        if job is not None:
            q = q.where(c.job == job)
        q = q.order_by(c.id.desc()).limit(limit)
        with self.read() as conn:
            return [
                JobRun(
                    id=int(r.id),
                    job=r.job,
                    model=r.model,
                    scheduled_for=r.scheduled_for,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    outcome=r.outcome,
                    detail=r.detail,
                    owner=r.owner,
                )
                for r in conn.execute(q)
            ]

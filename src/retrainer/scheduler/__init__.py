"""retrainer.scheduler: cron jobs from each model's ``schedule``, run by the one scheduler
that holds the ``scheduler-leader`` lease in the store.

    service = SchedulerService(ws)   # inside `retrainer serve`: start with the app
    service.start()                  # ConfigError for an invalid cron expression
    ...
    service.stop()

``run_once(ws)`` runs every due job once now (``retrainer scheduler --once``).
"""

from ..core.cron import cron_trigger, last_fire, next_fire
from .jobs import KINDS, JobOutcome, ScheduledJob, build_jobs, run_job, validate_schedules
from .leader import LEADER_LEASE, LeaderElector
from .runner import SchedulerService, run_once

__all__ = [
    "KINDS",
    "LEADER_LEASE",
    "JobOutcome",
    "LeaderElector",
    "ScheduledJob",
    "SchedulerService",
    "build_jobs",
    "cron_trigger",
    "last_fire",
    "next_fire",
    "run_job",
    "run_once",
    "validate_schedules",
]

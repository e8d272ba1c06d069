"""The scheduler: run each model's scheduled jobs (standalone, or once now)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..core.durations import MAX_SECONDS
from .app import JsonFlag, app, emit_json, err, handles_errors, out, workspace

if TYPE_CHECKING:
    from ..scheduler.jobs import JobOutcome


@app.command()
@handles_errors
def scheduler(
    once: Annotated[
        bool,
        typer.Option("--once", help="Run every due job once now, then exit (for cron or CI)."),
    ] = False,
    ttl: Annotated[
        float,
        typer.Option(
            "--ttl",
            min=1,
            max=MAX_SECONDS,
            help="Seconds the leader lease lasts without a heartbeat.",
        ),
    ] = 30.0,
    as_json: JsonFlag = False,
) -> None:
    """Run the models' scheduled maintain / full-retrain / fine-tune / feedback jobs; one
    leader runs."""
    from ..scheduler import SchedulerService, run_once

    with workspace() as ws:
        if once:
            runs = run_once(ws, ttl=ttl)
            _report(runs, as_json)
            if any(r.outcome == "failed" for r in runs):
                raise typer.Exit(1)
            return
        service = SchedulerService(ws, ttl=ttl)
        with _stop_on_sigterm() as stop:
            service.start()
            try:
                status = service.status()
                if as_json:
                    emit_json(status)
                else:
                    _print_status(status)
                _block(stop)
            finally:
                service.stop()


def _report(runs: list[JobOutcome], as_json: bool) -> None:
    if as_json:
        emit_json({"runs": [r.to_dict() for r in runs]})
        return
    if not runs:
        out.print("No job is due.")
    for r in runs:
        at = "-" if r.scheduled_for is None else f"{r.scheduled_for:%Y-%m-%d %H:%M}"
        line = f"{r.model} {r.job} ({at}): {r.outcome} — {r.detail}"
        (err if r.outcome == "failed" else out).print(line, highlight=False, markup=False)


def _print_status(status: dict[str, Any]) -> None:
    role = "leader" if status["leader"] else f"standby (leader: {status['leader_owner']})"
    out.print(f"Scheduler {status['owner']} running as {role}. Ctrl-C stops it.", markup=False)
    if not status["jobs"]:
        err.print("note: no model has a schedule; nothing will run.", markup=False)
    for job in status["jobs"]:
        out.print(f"  {job['id']}: '{job['cron']}' next {job['next_run']}", markup=False)


@contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """An event SIGTERM sets (installed on the main thread only), restored on exit."""
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main else None
    try:
        yield stop
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _block(stop: threading.Event) -> None:
    """Wait for SIGTERM or Ctrl-C."""
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass

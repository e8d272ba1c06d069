"""`retrainer demo`: fifty years of the bundled weather data through the whole loop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ..core.durations import MAX_DAYS
from .app import JsonFlag, app, emit_json, handles_errors, out
from .progress_view import QuietFlag, shown


@app.command()
@handles_errors
def demo(
    folder: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Workspace folder: new, empty, or made by an earlier demo (then recreated).",
        ),
    ] = Path("demo-workspace"),
    store: Annotated[
        str | None, typer.Option("--store", help="Store URL (default SQLite).")
    ] = None,
    delay_days: Annotated[
        float,
        typer.Option("--delay-days", min=0, max=MAX_DAYS, help="Days until each actual arrives."),
    ] = 1.0,
    maintain_every: Annotated[
        int,
        typer.Option(
            "--maintain-every", min=1, max=MAX_DAYS, help="Days between maintenance turns."
        ),
    ] = 28,
    years: Annotated[
        float | None,
        typer.Option(
            "--years", min=0.1, max=100, help="Replay only this many years after the first ten."
        ),
    ] = None,
    report: Annotated[
        Path, typer.Option("--report", help="Where to write the HTML report.")
    ] = Path("demo-report.html"),
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Replay the bundled NOAA weather data through the whole loop on a simulated clock."""
    from ..apps.demo import run_demo

    def say(line: str) -> None:
        if not as_json:
            out.print(line, highlight=False, markup=False, soft_wrap=True)

    # the timeline already tells each gate rejection and rollback: keep the alert log quiet
    alerts = logging.getLogger("retrainer.alerts")
    level = alerts.level
    alerts.setLevel(logging.ERROR)
    try:
        with shown("demo", quiet) as progress:
            r = run_demo(
                folder.resolve(),
                say,
                store,
                delay_days=delay_days,
                maintain_every_days=maintain_every,
                years=years,
                report=report,
                progress=progress,
            )
    finally:
        alerts.setLevel(level)
    if as_json:
        emit_json(
            {
                "folder": r.folder,
                "report": r.report,
                "summary": r.summary.to_dict(),
                "timeline": [e.to_dict() for e in r.timeline if e.action != "nothing" or e.events],
                "versions": r.versions,
                "champion": r.champion,
            }
        )

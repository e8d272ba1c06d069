"""Closing the loop: feedback (actual outcomes) and live monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from .app import (
    AsOf,
    JsonFlag,
    ModelArg,
    app,
    as_of_clock,
    emit_json,
    err,
    handles_errors,
    out,
    workspace,
)

if TYPE_CHECKING:
    from ..lifecycle.feedback import FeedbackResult


def _fmt(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, float) else ("-" if x is None else str(x))


@app.command()
@handles_errors
def feedback(
    model: ModelArg,
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSONL with the id and target columns.")
    ],
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Tail a JSONL file; resume where the last run stopped."),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.01, help="Seconds between polls with --follow.")
    ] = 1.0,
    max_seconds: Annotated[
        float | None,
        typer.Option("--max-seconds", min=0, help="Stop following after this many seconds."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record actual outcomes, joined to the logged predictions by id; idempotent."""
    from ..lifecycle.feedback import feedback_file, follow_feedback

    with workspace() as ws:
        if follow:
            result = follow_feedback(ws, model, file, interval=interval, max_seconds=max_seconds)
        else:
            result = feedback_file(ws, model, file)
    nothing_usable = result.rejected > 0 and result.rejected == result.received
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_feedback(model, file, result, nothing_usable)
    if nothing_usable:
        raise typer.Exit(2)


def _print_feedback(model: str, file: Path, r: FeedbackResult, nothing_usable: bool) -> None:
    out.print(
        f"{model}: {r.received} received, {r.matched} matched, {r.unmatched} unmatched, "
        f"{r.duplicates} duplicates, {r.rejected} rejected; "
        f"{r.training_rows_added} training rows added",
        highlight=False,
    )
    for rej in r.first_rejects:
        err.print(f"  line {rej.line}: {rej.reason}", highlight=False, markup=False)
    if r.unmatched:
        err.print(
            f"warning: {r.unmatched} actual(s) match no logged prediction of {model!r}; they "
            "are stored, and joined if their prediction is logged within monitor.late_join.",
            highlight=False,
            markup=False,
        )
    if nothing_usable:
        err.print(
            f"error: every row of {file} was rejected; fix the rows listed above.",
            highlight=False,
            markup=False,
        )


def change_text(degradation: float | None) -> str:
    """A relative degradation (positive = worse, whatever the metric's direction) in words.

    >>> change_text(0.018), change_text(-0.05), change_text(0.0), change_text(None)
    ('worse by 1.8%', 'better by 5.0%', 'no change', '-')
    """
    if degradation is None:
        return "-"
    if round(degradation, 3) == 0:
        return "no change"
    word = "worse" if degradation > 0 else "better"
    return f"{word} by {abs(degradation):.1%}"


@app.command()
@handles_errors
def monitor(
    model: ModelArg,
    window: Annotated[
        str | None,
        typer.Option("--window", help="Rolling window, e.g. 24h or 7d (default: the spec's)."),
    ] = None,
    as_of: AsOf = None,
    as_json: JsonFlag = False,
) -> None:
    """Live metrics per version over a rolling window, and degradation vs. the baseline."""
    from ..lifecycle.monitor import monitor as monitor_op

    with workspace() as ws, as_of_clock(as_of):
        report = monitor_op(ws, model, window=window)
    if as_json:
        emit_json(report.to_dict())
        return
    primary = report.primary_metric
    table = Table(
        title=f"{model}: live, last {report.window} (since {report.since:%Y-%m-%d %H:00})"
    )
    for col in ("version", "arm", "predictions", "labelled", primary, "baseline",
                "vs baseline", "confidence"):  # fmt: skip
        table.add_column(col)
    for v in report.versions:
        table.add_row(
            v.version,
            v.arm,
            str(v.predictions),
            str(v.labelled),
            _fmt(v.metrics.get(primary)),
            _fmt(v.baseline.get(primary)),
            change_text(v.degradation),
            _fmt(v.mean_confidence),
        )
    if not report.versions:
        out.print(f"{model}: no predictions logged in the last {report.window}.")
    else:
        out.print(table)
    for note in report.notes:
        err.print(f"note: {note}", highlight=False, markup=False)

"""Closing the loop: feedback (actual outcomes) and live monitoring."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..core.durations import MAX_SECONDS
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
from .progress_view import QuietFlag, shown

if TYPE_CHECKING:
    from ..lifecycle.feedback import FeedbackResult


def _fmt(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, float) else ("-" if x is None else str(x))


@app.command()
@handles_errors
def feedback(
    model: ModelArg,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="CSV, Parquet or JSONL with the id and target columns; none: pull from "
            "--from-url or the spec's feedback.url."
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Tail a JSONL file; resume where the last run stopped."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", min=0.01, max=MAX_SECONDS, help="Seconds between polls with --follow."
        ),
    ] = 1.0,
    max_seconds: Annotated[
        float | None,
        typer.Option(
            "--max-seconds", min=0, max=MAX_SECONDS, help="Stop following after this many seconds."
        ),
    ] = None,
    id_field: Annotated[
        str | None, typer.Option("--id-field", help="Field holding the spec's id column.")
    ] = None,
    label_field: Annotated[
        str | None, typer.Option("--label-field", help="Field holding the spec's target.")
    ] = None,
    time_field: Annotated[
        str | None, typer.Option("--time-field", help="Field holding the spec's time column.")
    ] = None,
    from_url: Annotated[
        str | None,
        typer.Option("--from-url", help="Pull from this HTTP JSON API, page by page."),
    ] = None,
    records: Annotated[
        str | None,
        typer.Option("--records", help="Dotted path of the records in a page ('' = the body)."),
    ] = None,
    next_field: Annotated[
        str | None,
        typer.Option("--next", help="Dotted path of the next page's link (or cursor)."),
    ] = None,
    cursor_param: Annotated[
        str | None,
        typer.Option("--cursor-param", help="Query parameter the --next value is a cursor for."),
    ] = None,
    since_param: Annotated[
        str | None,
        typer.Option("--since-param", help="Query parameter the stored since-cursor goes in."),
    ] = None,
    since_field: Annotated[
        str | None,
        typer.Option("--since-field", help="Record field of the cursor (default: time field)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start from this cursor instead of the stored one."),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option("--token-env", help="Environment variable holding a bearer token."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.001, max=MAX_SECONDS, help="Seconds per HTTP request."),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option("--retries", min=0, max=100, help="Retries of a failed page request."),
    ] = None,
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Record actual outcomes, joined to the logged predictions by id; idempotent. From a
    file, a followed JSONL log, or an HTTP JSON API (resumed from its since-cursor)."""
    from ..lifecycle.feedback import feedback_file, follow_feedback
    from ..lifecycle.feedback_fields import FieldMap

    api = {
        "--records": records,
        "--next": next_field,
        "--cursor-param": cursor_param,
        "--since-param": since_param,
        "--since-field": since_field,
        "--since": since,
        "--token-env": token_env,
        "--timeout": timeout,
        "--retries": retries,
    }
    _check_feedback_source(file, from_url, follow, api)
    pulled = None
    with workspace() as ws:
        if file is None:
            from ..lifecycle.feedback_http import feedback_from_url, http_source

            source, fields = http_source(
                ws.model_spec(model).feedback,
                model,
                url=from_url,
                records=records,
                next=next_field,
                cursor_param=cursor_param,
                since_param=since_param,
                since_field=since_field,
                token_env=token_env,
                timeout_seconds=timeout,
                retries=retries,
                id_field=id_field,
                label_field=label_field,
                time_field=time_field,
            )
            pulled = feedback_from_url(ws, model, source, fields, since=since)
            result = pulled.result
        else:
            mapped = (id_field, label_field, time_field)
            names = FieldMap(*mapped) if any(mapped) else None
            if follow:
                result = follow_feedback(
                    ws, model, file, interval=interval, max_seconds=max_seconds, fields=names
                )
            elif ws.model_spec(model).is_fleet:
                from ..lifecycle.fleet_feedback import fleet_feedback_file

                result = fleet_feedback_file(ws, model, file, fields=names)  # by member
            else:
                with shown(f"feedback {model}", quiet) as progress:
                    result = feedback_file(ws, model, file, fields=names, progress=progress)
    nothing_usable = result.rejected > 0 and result.rejected == result.received
    if as_json:
        emit_json(pulled.to_dict() if pulled is not None else result.to_dict())
    else:
        where = pulled.source if pulled is not None else str(file)
        _print_feedback(model, where, result, nothing_usable, "record" if pulled else "line")
        if pulled is not None:
            out.print(
                f"{pulled.source}: {pulled.pages} page(s); since-cursor "
                f"{_fmt(pulled.since)} -> {_fmt(pulled.cursor)}",
                highlight=False,
                markup=False,
            )
    if nothing_usable:
        raise typer.Exit(2)


def _check_feedback_source(
    file: Path | None, url: str | None, follow: bool, api: Mapping[str, object]
) -> None:
    from ..core.errors import InputError

    if file is not None and url is not None:
        raise InputError(
            f"Give either FILE ({file}) or --from-url, not both: one feedback source per run."
        )
    if file is None and follow:
        raise InputError(
            "--follow tails a JSONL FILE; an HTTP API is pulled once per run from its "
            "since-cursor (schedule `retrainer feedback MODEL` to keep pulling)."
        )
    given = [k for k, v in api.items() if v is not None]
    if file is not None and given:
        raise InputError(
            f"{', '.join(given)} apply to an HTTP API pull, not to FILE {file}. Drop them, or "
            "pull with --from-url URL."
        )


def _print_feedback(
    model: str, where: str, r: FeedbackResult, nothing_usable: bool, unit: str = "line"
) -> None:
    out.print(
        f"{model}: {r.received} received, {r.matched} matched, {r.unmatched} unmatched, "
        f"{r.duplicates} duplicates, {r.rejected} rejected; "
        f"{r.training_rows_added} training rows added",
        highlight=False,
    )
    for rej in r.first_rejects:
        err.print(f"  {unit} {rej.line}: {rej.reason}", highlight=False, markup=False)
    if r.unmatched:
        err.print(
            f"warning: {r.unmatched} actual(s) match no logged prediction of {model!r}; they "
            "are stored, and joined if their prediction is logged within monitor.late_join.",
            highlight=False,
            markup=False,
        )
    if nothing_usable:
        err.print(
            f"error: every {unit} of {where} was rejected; fix the {unit}s listed above.",
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
    for b in report.baselines:
        table.add_row(b.version, b.arm, "", str(b.labelled), _fmt(b.metrics.get(primary)),
                      "", "", "")  # fmt: skip
    if not report.versions:
        out.print(f"{model}: no predictions logged in the last {report.window}.")
    else:
        out.print(table)
    from .version_cmds import confusion_text

    for v in report.versions:
        if v.confusion_matrix is not None:
            out.print(f"[bold]{v.version}[/] ({v.arm}) live confusion (rows actual):")
            out.print(confusion_text(v.confusion_matrix), markup=False, highlight=False)
        cov = v.interval_coverage
        if cov is not None and cov["live"] is not None:
            out.print(
                f"{v.version} ({v.arm}) interval coverage: {cov['live']:.0%} of "
                f"{cov['labelled']:.0f} actuals inside (calibrated for {cov['target']:.0%})",
                markup=False,
                highlight=False,
            )
    best = report.best_baseline()
    if best is not None and report.versions:
        out.print(
            f"best naive baseline: {best.version} ({best.description}), {primary} "
            f"{_fmt(best.metrics.get(primary))} on {best.labelled} labelled actuals",
            markup=False,
            highlight=False,
        )
    for note in report.notes:
        err.print(f"note: {note}", highlight=False, markup=False)

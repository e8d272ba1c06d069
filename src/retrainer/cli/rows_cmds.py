"""Stored training rows: ``rows delete`` (a dry run unless --yes)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from .app import JsonFlag, ModelArg, app, emit_json, handles_errors, out, workspace

rows_app = typer.Typer(help="Stored training rows.", no_args_is_help=True)
app.add_typer(rows_app, name="rows")

_WHEN = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


@rows_app.command("delete")
@handles_errors
def delete(
    model: ModelArg,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Only rows from this source (file, api, feedback, ...)."),
    ] = None,
    ids: Annotated[
        Path | None,
        typer.Option(
            "--ids",
            help="Only these ids: a text file of one id per line, or a CSV/Parquet/JSONL "
            "file with the spec's id column.",
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", formats=_WHEN, help="Only rows with event time at or after."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option("--until", formats=_WHEN, help="Only rows with event time before."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Delete; without it, only count what would go.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete stored training rows meeting every filter given; a dry run unless --yes."""
    from ..lifecycle.rows_ops import delete_rows, read_ids

    with workspace() as ws:
        id_list = read_ids(ws, model, ids) if ids is not None else None
        r = delete_rows(
            ws, model, source=source, ids=id_list, since=since, until=until, dry_run=not yes
        )
    if as_json:
        emit_json(r.to_dict())
        return
    parts = ", ".join(f"{n} {src}" for src, n in sorted(r.by_source.items())) or "none"
    if r.dry_run:
        out.print(
            f"{model}: {r.rows} training rows would be deleted ({parts}); nothing changed. "
            "Run again with --yes to delete them."
        )
    else:
        out.print(f"{model}: {r.rows} training rows deleted ({parts}); recorded in history.")

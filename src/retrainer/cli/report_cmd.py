"""`retrainer report`: one model's life as a self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import JsonFlag, ModelArg, app, emit_json, handles_errors, out, workspace


@app.command()
@handles_errors
def report(
    model: ModelArg,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    as_json: JsonFlag = False,
) -> None:
    """Write an HTML report: live metric, estimates, drift, decisions, versions."""
    from ..api.results import ReportResult
    from ..report import write_report

    with workspace() as ws:
        ws.model_spec(model)
        path = write_report(ws, model, out_path).resolve()
    if as_json:
        emit_json(ReportResult(model, str(path), path.stat().st_size).to_dict())
    else:
        out.print(f"wrote {path}", highlight=False)

"""`retrainer demo`: the bundled weather data through the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..lifecycle.demo import run_demo
from .app import JsonFlag, app, emit_json, handles_errors, out


@app.command()
@handles_errors
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Workspace folder (recreated).")] = Path(
        "demo-workspace"
    ),
    store: Annotated[
        str | None, typer.Option("--store", help="Store URL (default SQLite).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the demo on the bundled NOAA weather data."""
    say = (lambda _s: None) if as_json else (lambda s: out.print(s, highlight=False))
    r = run_demo(folder.resolve(), say, store)
    if as_json:
        emit_json({"folder": r.folder, "versions": r.versions, "champion": r.champion})

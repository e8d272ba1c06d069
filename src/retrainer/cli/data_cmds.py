"""Set-up and data commands: init, db upgrade, ingest, predict, backup, restore."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import ConflictError
from .app import (
    JsonFlag,
    ModelArg,
    _state,
    app,
    db_app,
    emit_json,
    err,
    handles_errors,
    out,
    workspace,
)
from .progress_view import QuietFlag, shown


@app.command()
@handles_errors
def init(
    path: Annotated[
        Path | None, typer.Argument(help="Where to write (default retrainer.yaml).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a commented example retrainer.yaml."""
    from ..core.spec import default_config_path, load_spec

    target = path or _state["config"] or default_config_path()
    if target.exists() and not force:
        raise ConflictError(f"{target} already exists. Pass --force to overwrite it.")
    text = resources.files("retrainer.templates").joinpath("retrainer.yaml").read_text()
    target.write_text(text)
    load_spec(target, environ={})  # the template must always be valid
    if as_json:
        emit_json({"path": str(target)})
    else:
        out.print(f"wrote {target}")


@db_app.command("upgrade")
@handles_errors
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Apply every pending schema migration."""
    from ..core.spec import load_spec
    from ..store.engine import make_engine, migrate, safe_url

    spec = load_spec(_state["config"])
    engine = make_engine(spec.store)
    try:
        before, after = migrate(engine)
    finally:
        engine.dispose()
    if as_json:
        emit_json({"store": safe_url(spec.store), "from": before, "to": after})
    else:
        out.print(f"{safe_url(spec.store)}: schema {before or 'empty'} → {after}")


@app.command()
@handles_errors
def ingest(
    model: ModelArg,
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL of labelled rows.")],
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Add labelled rows, all or nothing per file; a row whose id and time are stored already
    or repeat an earlier row of the file is a duplicate (the first one is kept)."""
    from ..lifecycle.ingest import ingest_file

    with workspace() as ws, shown(f"ingest {model}", quiet) as progress:
        result = ingest_file(ws, model, file, progress=progress)
    nothing_usable = result.rejected > 0 and result.inserted + result.duplicates == 0
    if as_json:
        emit_json(result.to_dict())
    else:
        out.print(
            f"{model}: {result.inserted} inserted, {result.duplicates} duplicates, "
            f"{result.rejected} rejected"
        )
        for r in result.rejects:
            err.print(f"  line {r.line}: {r.reason}", highlight=False, markup=False)
        if nothing_usable:
            err.print(
                f"error: every row of {file} was rejected; fix the rows listed above.",
                highlight=False,
                markup=False,
            )
    if nothing_usable:
        raise typer.Exit(2)


@app.command()
@handles_errors
def predict(
    model: ModelArg,
    input: Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL of feature rows.")],
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Output file (.csv/.parquet/.jsonl).")
    ],
    version: Annotated[
        str | None, typer.Option("--version", help="Score with this version.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score a file with the champion (or --version) and log the predictions."""
    from ..api.results import PredictResult
    from ..lifecycle.predict import predict_file

    with workspace() as ws:
        r = predict_file(ws, model, input, out_path, version=version)
    if as_json:
        emit_json(PredictResult(model, r.version, r.rows, r.request_id, r.out).to_dict())
    else:
        out.print(f"{model} {r.version}: {r.rows} predictions → {r.out}")


@app.command("backup")
@handles_errors
def backup_cmd(
    path: Annotated[
        str, typer.Argument(help="Backup file to write (.tar.gz), or a URL: s3://bucket/x.tar.gz.")
    ],
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the store and every kept artifact to one verified archive."""
    from ..apps import backup as backup_ops

    with workspace() as ws, shown("backup", quiet) as progress:
        r = backup_ops.backup(ws, path, progress=progress)
    if as_json:
        emit_json({"path": r.path, "rows": r.rows, "artifacts": r.artifacts})
    else:
        out.print(f"backup {r.path}: {sum(r.rows.values())} rows, {r.artifacts} artifacts")


@app.command("restore")
@handles_errors
def restore_cmd(
    path: Annotated[
        str, typer.Argument(help="Backup file written by `retrainer backup`, or its URL.")
    ],
    max_unpacked: Annotated[
        int | None,
        typer.Option(
            "--max-unpacked",
            min=1,
            help="Most MiB the archive may unpack to (default 256 + 64 x its size; env "
            "RETRAINER_RESTORE_MAX_UNPACKED_MB).",
        ),
    ] = None,
    max_line: Annotated[
        int | None,
        typer.Option(
            "--max-line",
            min=1,
            help="Longest table line in MiB (default 64; env RETRAINER_RESTORE_MAX_LINE_MB).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup into an empty store (every member checked first; all or nothing)."""
    from ..apps import backup as backup_ops
    from ..apps.backup_format import RestoreLimits

    limits = RestoreLimits.from_env(unpacked_mb=max_unpacked, line_mb=max_line)
    with workspace() as ws:
        r = backup_ops.restore(ws, path, limits=limits)
    if as_json:
        emit_json({"path": r.path, "rows": r.rows, "artifacts": r.artifacts})
    else:
        out.print(f"restored {r.path}: {sum(r.rows.values())} rows, {r.artifacts} artifacts")

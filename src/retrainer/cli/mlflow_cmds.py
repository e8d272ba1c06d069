"""MLflow commands: export a version to an MLflow server, import an MLflow model.

MLflow is imported only when one of these runs (``lifecycle/mlflow_io.py``); without it they
exit 2 saying ``pip install 'retrainer[mlflow]'``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .app import JsonFlag, ModelArg, app, emit_json, err, handles_errors, out, workspace

TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        metavar="URI",
        envvar="MLFLOW_TRACKING_URI",
        help="The MLflow tracking server (default $MLFLOW_TRACKING_URI), e.g. "
        "http://127.0.0.1:5000.",
    ),
]


@app.command("export")
@handles_errors
def export(
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="The version to export, e.g. 1.2.0.")],
    mlflow_uri: Annotated[
        str,
        typer.Option(
            "--mlflow",
            metavar="URI",
            envvar="MLFLOW_TRACKING_URI",
            help="The MLflow tracking server to log to (default $MLFLOW_TRACKING_URI), e.g. "
            "http://127.0.0.1:5000.",
        ),
    ],
    registered_name: Annotated[
        str | None,
        typer.Option(
            "--registered-name",
            metavar="NAME",
            help="Register the model under NAME in MLflow's registry (default MODEL).",
        ),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment",
            metavar="NAME",
            help="The MLflow experiment of the run (default retrainer-MODEL).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Log a version to MLflow (model in its flavour, params, metrics, lineage) and
    register it."""
    from ..lifecycle.mlflow_io import export_version

    with workspace() as ws:
        done = export_version(
            ws, model, version, mlflow_uri, registered_name=registered_name, experiment=experiment
        )
    if as_json:
        emit_json(done.to_dict())
        return
    out.print(
        f"{model} {version}: logged to {done.tracking_uri} as {done.flavour} model, run "
        f"{done.run_id} (experiment {done.experiment})",
        highlight=False,
        markup=False,
    )
    out.print(f"model URI {done.model_uri}", highlight=False, markup=False)
    for note in done.notes:
        err.print(f"note: {note}", highlight=False, markup=False)


@app.command("import")
@handles_errors
def import_(
    model: ModelArg,
    mlflow_uri: Annotated[
        str,
        typer.Option(
            "--mlflow",
            metavar="URI",
            help="The MLflow model: models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH.",
        ),
    ],
    tracking_uri: TrackingOpt = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Deploy even when the gate does not pass (recorded)."),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, recorded with the version.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register an MLflow model as a version: checked, gated and rolled out like any
    import; exit 1 when the gate keeps the champion."""
    from ..core.errors import InputError
    from ..lifecycle.mlflow_import import import_from_mlflow
    from .version_cmds import show_imported

    if not tracking_uri:
        raise InputError(
            f"retrainer import {model} --mlflow {mlflow_uri} needs the MLflow tracking server: "
            "give --tracking-uri http://host:5000 or set MLFLOW_TRACKING_URI."
        )
    with workspace() as ws:
        v = import_from_mlflow(
            ws, model, mlflow_uri, tracking_uri, force=force, reason=reason or ""
        )
        roles = ws.store.roles(model)
    run = v.details["import"]["mlflow"]
    source = f"{mlflow_uri} (MLflow run {run['run_id']})"
    show_imported(model, v, roles, source, as_json, mlflow=run)

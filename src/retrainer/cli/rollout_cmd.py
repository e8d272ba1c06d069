"""Rollout commands: start a shadow, A/B or canary for a chosen version, stop it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from .app import JsonFlag, ModelArg, app, emit_json, handles_errors, out, workspace

rollout_app = typer.Typer(
    help="Start or stop a shadow, A/B or canary challenger for a chosen version.",
    no_args_is_help=True,
)
app.add_typer(rollout_app, name="rollout")


class Mode(StrEnum):
    shadow = "shadow"
    ab = "ab"
    canary = "canary"


@rollout_app.command("start")
@handles_errors
def start(
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="The version to put on traffic.")],
    mode: Annotated[
        Mode | None,
        typer.Option("--mode", help="shadow, ab or canary (default: the spec's rollout.mode)."),
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option(
            "--fraction",
            help="Share of traffic in (0, 1): the A/B split, or the canary's first step "
            "(default: rollout.fraction, or rollout.steps[0]).",
        ),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why; stored in the history.")] = "manual rollout",
    as_json: JsonFlag = False,
) -> None:
    """Put VERSION on traffic as a shadow, A/B or canary challenger beside the champion."""
    from ..core.errors import InputError
    from ..core.views import roles_view
    from ..lifecycle import rollout

    with workspace() as ws:
        spec = ws.model_spec(model)
        chosen = mode.value if mode is not None else spec.rollout.mode
        if chosen == "direct":
            raise InputError(
                f"Model {model!r} has rollout.mode 'direct', so there is no challenger mode to "
                "start. Pass --mode shadow, ab or canary (or switch at once with "
                f"`retrainer deploy {model} {version}`)."
            )
        v = ws.store.get_version(model, version)
        what = rollout.start(
            ws, model, v, by="manual", reason=reason, mode=chosen, fraction=fraction
        )
        roles = ws.store.roles(model)
    if as_json:
        emit_json({"result": what.text, **roles_view(roles)})
        return
    out.print(f"{model}: {what}", highlight=False, markup=False)
    out.print(
        f"`retrainer abtest {model}` shows each arm; `maintain` judges it after each "
        f"rollout.watch window; `retrainer rollout stop {model}` takes it off traffic.",
        highlight=False,
        markup=False,
    )


@rollout_app.command("stop")
@handles_errors
def stop(
    model: ModelArg,
    reason: Annotated[str, typer.Option(help="Why; stored in the history.")] = "manual stop",
    as_json: JsonFlag = False,
) -> None:
    """Take the challenger off traffic; the champion keeps serving every request."""
    from ..core.views import roles_view
    from ..lifecycle import rollout

    with workspace() as ws:
        what = rollout.stop(ws, model, by="manual", reason=reason)
        roles = ws.store.roles(model)
    if as_json:
        emit_json({"result": what.text, **roles_view(roles)})
        return
    out.print(f"{model}: {what}", highlight=False, markup=False)

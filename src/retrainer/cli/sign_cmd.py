"""``retrainer sign``: sign the versions made before the signing key was set."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import JsonFlag, ModelArg, app, emit_json, handles_errors, out, workspace


@app.command()
@handles_errors
def sign(
    model: ModelArg,
    versions: Annotated[
        list[str] | None,
        typer.Argument(help="Versions to sign (default: every unsigned live version)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign unsigned versions with RETRAINER_SIGNING_KEY (their files must still match their
    SHA-256 and load); check the signed ones. Exit 1 naming any version not signed."""
    from ..lifecycle.signing import sign_versions

    with workspace() as ws:
        result = sign_versions(ws, model, versions)
    if as_json:
        emit_json(
            {
                "model": model,
                "signed": result.signed,
                "verified": result.verified,
                "refused": result.refused,
            }
        )
        if result.refused:
            raise typer.Exit(1)
        return
    out.print(
        f"{model}: signed {len(result.signed)} version(s)"
        + (f" ({', '.join(result.signed)})" if result.signed else "")
        + f"; {len(result.verified)} already signed with this key"
    )
    result.check()

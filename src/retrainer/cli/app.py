"""The Typer app, its shared options, and the one place errors become messages.

Cheap to import: command modules import the library (lifecycle, store, model families)
inside their functions, so ``retrainer --help`` and light commands load only what they use.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..core.errors import RetrainerError, exit_code

if TYPE_CHECKING:
    from ..lifecycle.workspace import Workspace

app = typer.Typer(
    name="retrainer",
    help="Keep tabular ML models good after they ship.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ModelArg = Annotated[str, typer.Argument(help="Model name from the spec.")]

_state: dict[str, Any] = {"config": None}

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="RETRAINER_CONFIG",
            help="Spec file (default retrainer.yaml).",
        ),
    ] = None,
) -> None:
    """Keep tabular ML models good after they ship."""
    _state["config"] = config


@contextmanager
def workspace() -> Iterator[Workspace]:
    """The workspace of the ``--config`` spec, closed on exit."""
    from ..lifecycle.workspace import Workspace

    ws = Workspace.open(_state["config"])
    try:
        yield ws
    finally:
        ws.close()


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, allow_nan=False) + "\n")


def handles_errors(fn: F) -> F:
    """Turn library errors into a message (or a JSON error body) and the mapped exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RetrainerError as exc:
            if kwargs.get("as_json"):
                emit_json(exc.to_dict())
            else:
                err.print(f"[bold red]error[/]: {escape(exc.message)}", highlight=False)
            raise typer.Exit(exit_code(exc)) from None

    return wrapper  # type: ignore[return-value]

"""The Typer app, its shared options, and the one place errors become messages.

Cheap to import: command modules import the library (lifecycle, store, model families)
inside their functions, so ``retrainer --help`` and light commands load only what they use.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..core.errors import InputError, RetrainerError, exit_code

if TYPE_CHECKING:
    from ..plumbing.workspace import Workspace

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
AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="TIME",
        help="Run as if now were TIME (ISO 8601, e.g. 2024-03-01T06:00; UTC unless it has "
        "an offset), for backfills.",
    ),
]
MAX_LIMIT = 1_000_000  # the most items a --limit asks for (a bigger number overflows SQL)
ModelArg = Annotated[str, typer.Argument(help="Model name from the spec.")]

_state: dict[str, Any] = {"config": None}
log = logging.getLogger("retrainer.cli")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

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
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            envvar="RETRAINER_LOG_LEVEL",
            help="Log to stderr from this level: DEBUG (what each step does), INFO, "
            "WARNING (default) or ERROR.",
        ),
    ] = None,
) -> None:
    """Keep tabular ML models good after they ship."""
    _state["config"] = config
    if log_level is not None:
        setup_logging(log_level)
    else:  # a command without the option logs as by default, whatever ran before in-process
        _drop_handler()
    log.debug("config %s", config or "retrainer.yaml (default)")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stderr`` of the moment (a test runner swaps it per command)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _drop_handler() -> logging.Logger:
    """The ``retrainer`` logger without a handler or level a previous command set."""
    root = logging.getLogger("retrainer")
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.setLevel(logging.NOTSET)
    return root


def setup_logging(level: str) -> None:
    """Send the ``retrainer`` loggers' records from ``level`` on to stderr.

    A bad level is a usage error (exit 2) that lists the valid ones.
    """
    name = level.strip().upper()
    if name not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{level!r} is not a log level; use one of {', '.join(LOG_LEVELS)} "
            "(--log-level or RETRAINER_LOG_LEVEL).",
            param_hint="'--log-level' / RETRAINER_LOG_LEVEL",
        )
    root = _drop_handler()
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(name)


@contextmanager
def workspace() -> Iterator[Workspace]:
    """The workspace of the ``--config`` spec, closed on exit."""
    from ..plumbing.workspace import Workspace

    ws = Workspace.open(_state["config"])
    if log.isEnabledFor(logging.DEBUG):
        from ..store.engine import safe_url

        log.debug(
            "spec %s: models %s; store %s; artifacts %s",
            ws.spec.source,
            ", ".join(sorted(ws.spec.models)),
            safe_url(ws.spec.store),
            ws.spec.artifacts,
        )
    try:
        yield ws
    finally:
        ws.close()
        log.debug("store closed")


def parse_as_of(value: str) -> datetime:
    """An ``--as-of`` value as naive UTC; a bad or future time is a usage error (exit 2).

    >>> parse_as_of("2024-03-01T06:00+01:00").isoformat()
    '2024-03-01T05:00:00'
    """
    from ..core.clock import to_naive_utc, utcnow

    try:
        at = to_naive_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a time; give ISO 8601, e.g. 2024-03-01 or 2024-03-01T06:00 "
            "(UTC) or 2024-03-01T06:00+01:00.",
            param_hint="'--as-of'",
        ) from None
    if at > utcnow():
        raise typer.BadParameter(
            f"{value!r} is in the future; --as-of replays a past moment (a backfill). "
            "Drop it to run as of now.",
            param_hint="'--as-of'",
        )
    return at


@contextmanager
def as_of_clock(value: str | None) -> Iterator[None]:
    """Run the block as if now were ``value`` (the project's clock, so every time the
    operation reads or writes is that moment); a no-op without a value."""
    if value is None:
        yield
        return
    from ..core.clock import use_clock

    at = parse_as_of(value)
    log.debug("as of %s (UTC)", at.isoformat())
    with use_clock(lambda: at):
        yield


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, allow_nan=False) + "\n")


def handles_errors(fn: F) -> F:
    """Turn library errors into a message (or a JSON error body) and the mapped exit code.

    An OverflowError or UnicodeDecodeError that no check caught (a number too large for a
    date or a database integer, bytes that are not text) is bad input too: exit 2 with a
    message, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = fn.__name__.replace("_", "-")
        log.debug("%s: %s", name, ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
        try:
            result = fn(*args, **kwargs)
            log.debug("%s: done", name)
            return result
        except RetrainerError as exc:
            log.debug("%s: failed with %s (exit %d)", name, exc.code, exit_code(exc))
            _fail(exc, kwargs.get("as_json", False))
        except (OverflowError, UnicodeDecodeError) as exc:
            log.debug("%s: unchecked input: %r", name, exc)
            bad = InputError(
                f"A value given to {name} cannot be used ({type(exc).__name__}: "
                f"{str(exc)[:120]}). Check the numbers given (days, windows, limits) and that "
                "the files are UTF-8 text."
            )
            _fail(bad, kwargs.get("as_json", False))

    return wrapper  # type: ignore[return-value]


def _fail(exc: RetrainerError, as_json: bool) -> NoReturn:
    if as_json:
        emit_json(exc.to_dict())
    else:
        err.print(f"[bold red]error[/]: {escape(exc.message)}", highlight=False)
    raise typer.Exit(exit_code(exc)) from None

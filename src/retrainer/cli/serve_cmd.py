"""``retrainer serve``: the REST service under uvicorn.

A server reachable from other machines without ``RETRAINER_API_TOKEN`` would let anyone on the
network (or any web page its users open) deploy, roll back and train: ``serve`` refuses a
non-loopback ``--host`` without a token unless told ``--insecure``.

>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
(True, True, True, False)
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from ..core.errors import InputError
from .app import _state, app, err, handles_errors


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _clean_exit_class() -> type:
    import uvicorn

    class CleanExit(uvicorn.Server):
        """uvicorn's server, exiting 0 after the graceful shutdown SIGTERM or SIGINT asked for
        (uvicorn raises the signal again once it has shut down, so the process would die of
        it: the documented exit code of a clean stop is 0)."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()  # uvicorn 0.54: the signals to raise again

    return CleanExit


@app.command()
@handles_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (each loads the models).")
    ] = 1,
    log_predictions: Annotated[
        bool,
        typer.Option("--log/--no-log", help="Log every prediction (for monitoring, feedback)."),
    ] = True,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Run the spec's schedules in the server (one leader across processes).",
        ),
    ] = True,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve a non-loopback --host without RETRAINER_API_TOKEN (anyone who reaches "
            "it may deploy, roll back and train).",
        ),
    ] = False,
) -> None:
    """Serve the REST API: predict, feedback, admin routes, /health, /ready, /metrics, /docs."""
    import uvicorn

    from ..core.spec import default_config_path
    from ..serving.app import create_app

    if not os.environ.get("RETRAINER_API_TOKEN") and not is_loopback(host):
        if not insecure:
            raise InputError(
                f"Refusing to serve on --host {host} without RETRAINER_API_TOKEN: anyone who "
                "can reach it could deploy, roll back and train. Set RETRAINER_API_TOKEN, bind "
                "--host 127.0.0.1, or pass --insecure to serve it open anyway."
            )
        err.print(
            f"retrainer: warning: serving {host} without RETRAINER_API_TOKEN (--insecure): "
            "every route is open to whoever reaches it.",
            highlight=False,
        )
    config = _state["config"] or default_config_path()
    if workers == 1:
        application = create_app(config, log_predictions=log_predictions, scheduler=scheduler)
        err.print(f"retrainer: serving on http://{host}:{port} (docs at /docs)", highlight=False)
        cfg = uvicorn.Config(
            application, host=host, port=port, log_level="warning", access_log=False
        )
        _clean_exit_class()(cfg).run()
        return
    os.environ["RETRAINER_CONFIG"] = str(os.path.abspath(config))
    os.environ["RETRAINER_PREDICTION_LOG"] = "on" if log_predictions else "off"
    os.environ["RETRAINER_SCHEDULER"] = "on" if scheduler else "off"
    err.print(f"retrainer: serving on http://{host}:{port} with {workers} workers", highlight=False)
    uvicorn.run(
        "retrainer.serving.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )

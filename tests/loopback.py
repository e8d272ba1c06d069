"""A FastAPI app served by uvicorn on a free loopback port, for tests that go over a real
socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from waits import wait_until

SERVER_START = 120.0  # seconds; a server boots in about 2 s on an idle machine


@contextmanager
def served(app: Any) -> Iterator[httpx.Client]:
    """``app`` served by uvicorn on a free loopback port; a client whose base URL is it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started or not thread.is_alive(), "the server to start", SERVER_START)
    assert srv.started, "the server thread ended without starting"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield http
    finally:
        srv.should_exit = True
        thread.join(SERVER_START)

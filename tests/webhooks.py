"""A webhook receiver on loopback for tests that check the alerts a run sends (imported by
name: tests/ has no packages). The ``webhook`` fixture in conftest gives a fresh one."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from waits import CATCH_UP, wait_until


class Webhook:
    """Records the JSON body of every POST it is sent (Slack-compatible alert bodies)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[str]:
        """The event of each body received, in order (from the footer: "retrainer · event")."""
        return [b["attachments"][0]["footer"].rsplit(" · ", 1)[1] for b in self.bodies]

    def wait_for(self, event: str, timeout: float = CATCH_UP) -> dict[str, Any]:
        """The first body of ``event``, waiting up to ``timeout`` seconds for it."""
        wait_until(lambda: event in self.events(), f"a {event!r} alert", timeout)
        return self.bodies[self.events().index(event)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A JSON API on loopback for the tests that pull feedback over HTTP: a real socket served by
a thread. Each GET is answered by ``answer(path, authorization)``, which returns (status,
content type, body bytes); the paths asked are kept in ``asked``. A 429 or 503 carries
``Retry-After: 0``.

>>> import httpx
>>> with JsonApi(lambda path, auth: (200, "application/json", b'{"ok": 1}')) as api:
...     httpx.get(api.url + "/x").json(), api.asked
({'ok': 1}, ['/x'])
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, "str | None"], tuple[int, str, bytes]]


class JsonApi:
    """Serves ``answer`` on 127.0.0.1 at a free port (``url``) until :meth:`close`."""

    def __init__(self, answer: Answer) -> None:
        self.asked: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.asked.append(self.path)
                status, kind, body = answer(self.path, self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self) -> JsonApi:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

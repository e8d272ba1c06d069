"""The checks every request meets before any route reads a byte of its body.

``Edge`` is a pure ASGI middleware, so the checks hold for every route, present and future
(deny by default: a route not listed as open needs the token):

1. **The token.** Mutating routes (any method but GET/HEAD/OPTIONS, except predict) need
   ``Authorization: Bearer <token>`` when the server has one; reads and predict too with
   ``auth.protect_reads``. 401 / 403, compared in constant time (``ServerState.check_auth``).
2. **Cross-site requests** to mutating routes: a foreign ``Origin`` (or ``Referer``) → 403,
   a ``Content-Type`` other than JSON → 415. "Foreign" is any origin but the server's own
   host:port (and, on a loopback socket, only a loopback name: a DNS-rebinding page has the
   right port but not the name) and those listed in ``cors.allow_origins``. A browser cannot
   send ``application/json`` cross-site without a CORS preflight, which only listed origins
   pass.
3. **The body limit.** A ``Content-Length`` above the route's limit is refused (413) before
   the body is read; a body streamed without one is counted chunk by chunk and refused once it
   passes the limit. The limit is the model's predict size (``serving.max_batch_rows``), its
   ``serving.max_feedback_bytes``, or ``SMALL`` for every other route.

>>> same_origin("http://127.0.0.1:8000", "127.0.0.1:8000", "127.0.0.1")
True
>>> same_origin("http://evil.test:8000", "evil.test:8000", "127.0.0.1")  # DNS rebinding
False
>>> same_origin("https://ml.example.com", "ml.example.com", "10.0.0.5")
True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import ForbiddenError, InputError, RetrainerError
from .errors import TooLarge, error_response

if TYPE_CHECKING:
    from .app import ServerState

SMALL = 64 * 1024  # every route but predict and feedback: bodies are small JSON objects
PREDICT = "/v1/models/{name}/predict"
FEEDBACK = "/v1/models/{name}/feedback"
OPEN = frozenset({"/health", "/ready", "/openapi.json", "/docs"})
DOCS_ASSETS = "/docs/assets/"  # Swagger UI's script, style and icon (serving.apidocs)
READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Access:
    """What a request needs: ``kind`` is ``open``, ``read`` or ``write``; ``limit`` its
    largest body in bytes and ``raise_it`` the words saying how to send a larger one."""

    kind: str
    limit: int
    raise_it: str


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def same_origin(origin: str, host: str | None, server_ip: str | None) -> bool:
    """Whether a browser ``origin`` is this server: the ``Host`` it was asked by (default
    ports filled in) and, when the socket is loopback, a loopback name too."""
    try:
        o, h = urlsplit(origin), urlsplit(f"//{host or ''}")
        oport, hport = o.port, h.port
    except ValueError:
        return False
    if o.scheme not in ("http", "https") or not o.hostname or not h.hostname:
        return False
    default = 443 if o.scheme == "https" else 80
    if (o.hostname, oport or default) != (h.hostname, hport or default):
        return False
    return not (server_ip and _loopback(server_ip) and not _loopback(o.hostname))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _given(content_type: str | None) -> str:
    return "missing" if content_type is None else repr(content_type[:80])


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


_MODEL_ROUTES = [(t, compile_path(t)[0]) for t in (PREDICT, FEEDBACK)]


def _template(path: str) -> tuple[str | None, str | None]:
    """The route template of ``path`` when it is open, predict or feedback (and the model)."""
    if path in OPEN:
        return path, None
    for template, regex in _MODEL_ROUTES:
        m = regex.match(path)
        if m is not None:
            return template, m["name"]
    return None, None


class Edge:
    """The middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = self.access(scope)
        refused = self.refusal(scope, access)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, _counted(receive, access), send)

    def access(self, scope: Scope) -> Access:
        template, name = _template(scope["path"])
        if template in OPEN or scope["path"].startswith(DOCS_ASSETS):
            return Access("open", SMALL, "")
        kind = "read" if scope["method"] in READS or template == PREDICT else "write"
        if name is not None and name not in self.state.ws.spec.models:
            name = self.state.registry.fleet_of(name) or name  # a member: its fleet's limits
        if template == PREDICT and name in self.state.limits:
            how = (
                f"Split it into smaller batches (model {name!r}: 4 KiB + serving.max_batch_rows "
                "× (256 + 128 × features) bytes)."
            )
            return Access(kind, self.state.limits[name], how)
        if template == FEEDBACK and name in self.state.ws.spec.models:
            limit = self.state.ws.spec.models[name].serving.max_feedback_bytes
            how = (
                "Send the actuals in several requests, or raise serving.max_feedback_bytes "
                f"of model {name!r}."
            )
            return Access(kind, limit, how)
        return Access(kind, SMALL, "This route takes a small JSON object; the limit is fixed.")

    def refusal(self, scope: Scope, access: Access) -> Response | None:
        """The error response for a request refused before its body is read, or None."""
        request = Request(scope)
        try:
            if access.kind != "open":
                self.state.check_auth(request, mutating=access.kind == "write")
            if access.kind == "write":
                self._same_site(scope)
                content_type = _header(scope, b"content-type")
                if not _is_json(content_type):
                    err = InputError(
                        f"{scope['method']} {scope['path']} changes state and takes JSON: "
                        f"Content-Type is {_given(content_type)}. Send 'Content-Type: "
                        "application/json' (with '{}' as the body for the defaults)."
                    )
                    err.code = "unsupported_media_type"
                    return error_response(request, err, 415)
            declared = _header(scope, b"content-length")
            if declared is not None:
                if not declared.strip().isdigit():
                    raise InputError(f"Content-Length {declared[:20]!r} is not a number.")
                if int(declared) > access.limit:
                    return _too_large(request, access, f" ({declared} bytes)")
        except RetrainerError as exc:
            return error_response(request, exc)
        return None

    def _same_site(self, scope: Scope) -> None:
        origin = _header(scope, b"origin")
        if origin is None:
            referer = _header(scope, b"referer")
            if referer is None:
                return  # not a browser: curl, a script, a service
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
        allowed = self.state.ws.spec.cors.allow_origins
        host = _header(scope, b"host")
        server = scope.get("server")
        if origin in allowed or same_origin(origin, host, server[0] if server else None):
            return
        raise ForbiddenError(
            f"Cross-site request refused: {scope['method']} {scope['path']} changes state and "
            f"comes from origin {origin[:80]!r}, not from this server ({(host or '?')[:80]}). "
            "List the page's origin in cors.allow_origins to let it call this route."
        )


def _too_large(request: Request, access: Access, size: str = "") -> Response:
    err = InputError(_too_large_text(access, size))
    err.code = "payload_too_large"
    return error_response(request, err, 413)


def _too_large_text(access: Access, size: str = "") -> str:
    limit = access.limit
    return f"The body is larger than this route's limit of {limit} bytes{size}. {access.raise_it}"


def _counted(receive: Receive, access: Access) -> Callable[[], Any]:
    """``receive`` counting the body's bytes: TooLarge (413) once past the limit."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > access.limit:
                raise TooLarge(_too_large_text(access))
        return message

    return counted

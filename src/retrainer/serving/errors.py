"""Errors of the REST service: every failure is a JSON body ``{"error": code, "message": ...,
"details"?: ..., "request_id": ...}`` with the status of ``core.errors.http_status``.

Bad input is never a 500. An unexpected exception returns 500 with the request id, and the
same id is logged with the traceback, so an operator can find it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..core.errors import InputError, RetrainerError, http_status
from ..core.ids import time_ordered_id

log = logging.getLogger("retrainer.serving")

MAX_REPORTED = 20
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class TooLarge(HTTPException):
    """The body is over the byte limit or holds more rows than ``serving.max_batch_rows``.

    An ``HTTPException`` (413), so FastAPI passes it on unchanged when it is raised while the
    body is read for a route's parameters (``serving.edge`` raises it from ``receive``)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)
        self.message = message


_RID = "retrainer.request_id"


def request_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one (stored on the request)."""
    scope = request.scope
    rid: str | None = scope.get(_RID)
    if rid is None:
        given = header(request, b"x-request-id")
        rid = given if given and _REQUEST_ID.match(given) else time_ordered_id()  # no syscall
        scope[_RID] = rid
    return rid


def header(request: Request, name: bytes) -> str | None:
    """One header's value (``name`` in lower case), read from the ASGI scope: the hot path
    needs two headers and need not build Starlette's ``Headers`` for them."""
    for key, value in request.scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def row_errors(problems: list[dict[str, Any]], total: int) -> InputError:
    """One InputError for a batch's problems: each names the row index, field and problem."""
    first = problems[0]
    where = f"row {first['row']}" + (f", field {first['field']!r}" if first["field"] else "")
    more = f" ({total} problems in all; the first {len(problems)} are listed)" if total > 1 else ""
    return InputError(
        f"Invalid request: {where}: {first['problem']}{more}. Fix the rows and retry.",
        errors=problems,
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response written by orjson (non-finite numbers as ``null``); ``json`` takes what
    orjson refuses (keys that are not strings, integers beyond 64 bits)."""
    try:
        data = orjson.dumps(body, default=str)
    except TypeError:
        data = json.dumps(body, allow_nan=False, default=str, separators=(",", ":")).encode()
    return Response(data, status, headers=headers, media_type="application/json")


def error_response(request: Request, exc: RetrainerError, status: int | None = None) -> Response:
    rid = request_id(request)
    body = {**exc.to_dict(), "request_id": rid}
    status = status or http_status(exc)
    headers = {"x-request-id": rid}
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    if status == 503 and "retry_after" in exc.details:  # StoreBusy: when to try again
        headers["retry-after"] = str(exc.details["retry_after"])
    try:
        return json_response(body, status, headers)
    except ValueError:  # a non-finite number in the details
        return json_response(
            {"error": exc.code, "message": exc.message, "request_id": rid}, status, headers
        )


def _unparsable(cause: BaseException) -> InputError:
    """Why FastAPI could not read a JSON body: nested too deeply, not UTF-8, or other."""
    if isinstance(cause, RecursionError):
        why = "it is nested too deeply (JSON nesting is limited to about 1,000 levels)"
    elif isinstance(cause, UnicodeDecodeError):
        why = f"it is not UTF-8 ({cause.reason} at byte {cause.start})"
    else:
        why = f"{type(cause).__name__}: {str(cause)[:80]}"
    return InputError(
        f"Invalid request: the JSON body cannot be read: {why}. Send JSON encoded as UTF-8.",
        errors=[{"row": None, "field": None, "problem": "unreadable JSON"}],
    )


def install_handlers(app: FastAPI) -> None:
    async def on_retrainer(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RetrainerError)
        if http_status(exc) >= 500:
            log.error("request %s failed: %s: %s", request_id(request), exc.code, exc.message)
        return error_response(request, exc)

    async def on_too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TooLarge)
        err = InputError(exc.message)
        err.code = "payload_too_large"
        return error_response(request, err, 413)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or None,
                "problem": e.get("msg", "invalid"),
            }
            for e in exc.errors()[:MAX_REPORTED]
        ]
        first = problems[0] if problems else {"field": None, "problem": "invalid body"}
        err = InputError(
            f"Invalid request body: {first['field'] or 'body'}: {first['problem']}.",
            errors=problems,
        )
        return error_response(request, err)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI could not parse
            return error_response(request, _unparsable(exc.__cause__))
        err = RetrainerError(str(exc.detail))
        err.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request, err, exc.status_code)

    async def on_crash(request: Request, exc: Exception) -> Response:
        rid = request_id(request)
        log.exception("request %s: internal error", rid, exc_info=exc)
        body = {
            "error": "internal",
            "message": f"Internal error. Quote request id {rid} to find it in the server log.",
            "request_id": rid,
        }
        return json_response(body, 500, {"x-request-id": rid})

    app.add_exception_handler(RetrainerError, on_retrainer)
    app.add_exception_handler(TooLarge, on_too_large)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)

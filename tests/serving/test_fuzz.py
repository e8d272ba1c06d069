"""Malformed bodies of every shape, and fuzzed requests to every route of the OpenAPI schema,
never make the server fail with a 5xx."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servehelp import Served

from retrainer.datasets import WEATHER_FEATURES

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from([*WEATHER_FEATURES, "x", "plan", "entity_id", "day_id", "id", "rows", "row"])
ROW = st.dictionaries(KEYS | st.text(max_size=8), VALUES, max_size=12)
ROWS = st.lists(ROW | VALUES, min_size=0, max_size=4)
BODIES = st.one_of(
    VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"rows": ROWS}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"row": ROW | VALUES}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"actuals": ROWS}).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)
CLIENTS: dict[str, httpx.Client] = {}  # one keep-alive connection for all examples
ROUTES = st.sampled_from(["weather/predict", "sales/predict", "weather/feedback", "sales/deploy",
                          "weather/rollback", "nope/predict"])  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=ROUTES, body=BODIES)
def test_malformed_bodies_never_give_a_5xx(server: Served, route: str, body: bytes) -> None:
    headers: dict[str, Any] = {"Authorization": "Bearer s3cret",
                               "Content-Type": "application/json"}  # fmt: skip
    if route.endswith(("deploy", "rollback")) and body.startswith(b"{"):
        body = b'{"versio' + body[1:]  # never a real deploy: an unknown key, always refused
    c = CLIENTS.get(server.url) or CLIENTS.setdefault(server.url, server.client())
    r = c.post(f"/v1/models/{route}", content=body, headers=headers)
    assert r.status_code < 500, (route, body, r.text)
    assert r.json()["request_id"] if r.status_code >= 400 else True


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for c in CLIENTS.values():
        c.close()


# ---- every route of the OpenAPI schema -----------------------------------------------------
# Requests to every route and method the app's OpenAPI schema lists (and a few it does not),
# with and without the token, random path parameters (path characters included), random query
# parameters, random bodies and content types: never a 5xx, and every 4xx names its problem.
# `python -m bench --only fuzz` runs 10,000 (FUZZ_API_REQUESTS) and writes FUZZ_API_REPORT.

FUZZ_REQUESTS = int(os.environ.get("FUZZ_API_REQUESTS", "300"))
FUZZ_REPORT = os.environ.get("FUZZ_API_REPORT")
SEEN: list[dict[str, Any]] = []  # one entry per request sent

MODELS = st.sampled_from(["weather", "sales"])  # about half the names drawn are served models
NAMES = (
    MODELS
    | MODELS
    | st.sampled_from(
        [
            "nope",
            "..",
            "../..",
            "../weather",
            "a/b",
            "%2e%2e",
            "w\u00e9",
            "\udc80",
            "\x00",
            "x" * 300,
            "1.0.0",
            "",
        ]
    )
    | st.text(max_size=12)
)
QUERY_VALUES = st.sampled_from(
    [
        "30d",
        "24h",
        "900000d",
        "1e308d",
        "9" * 30 + "d",
        "0d",
        "-1d",
        "nan",
        "inf",
        "",
        "\x00",
        "1.0.0",
        "../x",
    ]
) | st.text(max_size=12)
TEXTS = st.sampled_from(
    ["1.0.0", "1.1.0", "9.9.9", "../../x", "\udc80", "a\x00b", "x" * 400, "lightgbm", "nope"]
) | st.text(max_size=16)
IDS = TEXTS | st.integers() | st.floats() | st.none()
ACTUAL = st.fixed_dictionaries(
    {},
    optional={
        "entity_id": IDS,
        "day_id": IDS,
        "actual": SCALARS,
        "rain": SCALARS,
        "date": TEXTS | SCALARS,
    },
)
NEAR_VALID = st.fixed_dictionaries(
    {},
    optional={"versio": TEXTS, "to": TEXTS | st.none(), "reason": TEXTS, "force": SCALARS,
              "days_back": st.integers(min_value=-(2**70), max_value=2**70) | SCALARS,
              "family": TEXTS, "deploy": st.just(False), "force_retrain": SCALARS,
              "dry_run": st.just(True), "actuals": st.lists(ACTUAL | VALUES, max_size=4),
              "rows": ROWS, "row": ROW},
)  # fmt: skip
NUMBER = st.floats() | st.integers(min_value=-(2**70), max_value=2**70)
SCORED_ROW = st.fixed_dictionaries(  # a predict row of either model, values near valid
    {f: NUMBER for f in WEATHER_FEATURES},
    optional={"entity_id": IDS, "day_id": IDS, "x": NUMBER, "plan": TEXTS, "id": IDS},
)
SCORED = st.fixed_dictionaries({"rows": st.lists(SCORED_ROW, min_size=1, max_size=3)})
FUZZ_BODIES = st.one_of(
    st.none(),
    BODIES,
    NEAR_VALID.map(lambda v: json.dumps(v).encode()),
    SCORED.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
    st.integers(1, 5000).map(lambda n: b'{"actuals": ' + b"[" * n + b"]" * n + b"}"),
)
JSON = st.sampled_from(["application/json", "application/json; charset=utf-8"])
OTHER_TYPES = [None, "text/plain", "application/x-www-form-urlencoded",
               "multipart/form-data; boundary=x", "application/x+json", "\x7f"]  # fmt: skip
# Drawn so that most requests pass the edge's checks and reach the routes' own validation:
# JSON two times in three, the right token one time in two (none, a wrong one), no Origin
# three times in four.
CONTENT_TYPES = JSON | JSON | st.sampled_from(OTHER_TYPES)
RIGHT = "Bearer s3cret"
TOKENS = (
    st.just(None)
    | st.just(RIGHT)
    | st.just(RIGHT)
    | st.sampled_from(["Bearer nope", "Basic s3cret", "Bearer"])
)
ORIGINS = (
    st.just(None) | st.just(None) | st.just(None) | st.sampled_from(["https://evil.test", "null"])
)


TOKEN_KIND = {None: "none", RIGHT: "right"}


Operation = tuple[str, str, tuple[str, ...]]


def _operations(app: Any) -> list[Operation]:
    """(method, path template, query parameters) of every operation in the app's OpenAPI
    schema, and a few methods and paths it does not list."""
    ops = [
        (m.upper(), p, tuple(q["name"] for q in op.get("parameters", []) if q["in"] == "query"))
        for p, item in app.openapi()["paths"].items()
        for m, op in item.items()
    ]
    odd = [("PUT", "/v1/models/{name}/predict"), ("DELETE", "/v1/models/{name}"),
           ("GET", "/v1/models/{name}/nothing/{name}"), ("OPTIONS", "/v1/models")]  # fmt: skip
    return [*ops, *((m, p, ()) for m, p in odd)]


@st.composite
def requests_(draw: st.DrawFn, ops: list[Operation]) -> dict[str, Any]:
    method, template, declared = draw(st.sampled_from(ops))
    path = template
    for param in re.findall(r"\{(\w+)\}", template):
        value = draw(NAMES)
        value = value if draw(st.booleans()) else quote(value, safe="", errors="surrogatepass")
        path = path.replace("{" + param + "}", quote(value, safe="/.%", errors="surrogatepass"), 1)
    query = draw(st.fixed_dictionaries({}, optional=dict.fromkeys(declared, QUERY_VALUES)))
    query |= draw(st.dictionaries(st.sampled_from(["window", "limit"]) | st.text(max_size=6),
                                  QUERY_VALUES, max_size=2))  # fmt: skip
    headers = {}
    for name, strategy in (("content-type", CONTENT_TYPES), ("authorization", TOKENS),
                           ("origin", ORIGINS)):  # fmt: skip
        value = draw(strategy)
        if value is not None:
            headers[name] = value
    body = draw(FUZZ_BODIES) if method not in ("GET", "HEAD") or draw(st.booleans()) else None
    if body is not None and template.endswith(("/deploy", "/rollback")) and body[:1] == b"{":
        body = b'{"versio' + body[1:]  # never a real deploy: an unknown key, always refused
    return {"method": method, "template": template, "path": path, "query": query,
            "headers": headers, "body": body}  # fmt: skip


def _send(c: httpx.Client, req: dict[str, Any]) -> httpx.Response:
    # query values are sent as they are (bytes the URL encoder may refuse are percent-encoded)
    params = {k.encode("utf-8", "surrogatepass").decode("utf-8", "replace"):
              v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
              for k, v in req["query"].items()}  # fmt: skip
    headers = {k: v.encode("utf-8", "replace").decode("latin-1") for k, v in
               req["headers"].items()}  # fmt: skip
    return c.request(req["method"], req["path"], params=params, headers=headers,
                     content=req["body"])  # fmt: skip


@pytest.fixture(scope="module")
def operations(server: Served) -> list[Operation]:
    return _operations(server.app)


def test_the_fuzz_covers_every_route_of_the_schema(operations: list[Operation]) -> None:
    paths = {p for _, p, _ in operations}
    assert ("GET", "/v1/models/{name}/drift", ("window",)) in operations
    assert {"/v1/models/{name}/predict", "/v1/models/{name}/feedback", "/v1/models/{name}/train",
            "/v1/models/{name}/rollback", "/v1/jobs/{job_id}", "/metrics"} <= paths  # fmt: skip


@settings(max_examples=FUZZ_REQUESTS, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(data=st.data())
def test_every_route_answers_fuzzed_requests_without_a_5xx(
    server: Served, operations: list[Operation], data: st.DataObject
) -> None:
    req = data.draw(requests_(operations))
    c = CLIENTS.get(server.url) or CLIENTS.setdefault(server.url, server.client())
    try:
        r = _send(c, req)
    except (httpx.InvalidURL, httpx.LocalProtocolError):
        return  # a request httpx itself refuses to send
    token = TOKEN_KIND.get(req["headers"].get("authorization"), "wrong")
    SEEN.append({"method": req["method"], "route": req["template"], "status": r.status_code,
                 "token": token})  # fmt: skip
    where = (req["method"], req["path"], req["query"], req["headers"], (req["body"] or b"")[:200])
    assert r.status_code < 500, (where, r.text[:500])
    if r.status_code >= 400 and req["method"] != "HEAD":
        body = r.json()
        assert body["error"] and body["message"].strip(), (where, body)


@pytest.fixture(scope="module", autouse=True)
def _fuzz_report() -> Iterator[None]:
    started = time.monotonic()
    yield
    if FUZZ_REPORT and SEEN:
        Path(FUZZ_REPORT).write_text(
            json.dumps({"seconds": time.monotonic() - started, "requests": SEEN})
        )

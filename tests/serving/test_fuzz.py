"""Malformed bodies of every shape never make the server fail with a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

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

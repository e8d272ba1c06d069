"""REST answers are the Python API's ``to_dict()``: the same steps run over real HTTP on one
copy of the trained store and through ``Retrainer`` (acting as ``api``) on a twin copy; the
bodies are equal but for the clock (when each ran)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from servehelp import Served, spec_dict
from sqlalchemy import select

from retrainer.api.facade import Retrainer
from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.plumbing.workspace import Workspace
from retrainer.store import schema as t

AUTH = {"Authorization": "Bearer s3cret"}
BASE = "/v1/models/weather"
CLOCK = {"since", "until", "taken_at", "created_at"}  # when it ran: differs by the call
AGES = ("days_since_",)  # a decision's ages of the champion, measured when it ran


@pytest.fixture(scope="module")
def twin(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retrainer]:
    """The API on a second copy of the store the server was started on."""
    folder = tmp_path_factory.mktemp("twin")
    shutil.copy(trained / "ws.db", folder / "ws.db")
    shutil.copytree(trained / "artifacts", folder / "artifacts")
    (folder / "retrainer.yaml").write_text(yaml.safe_dump(spec_dict(folder)))
    with Retrainer(Workspace(load_spec(folder / "retrainer.yaml", environ={})), actor="api") as rt:
        yield rt


def call(server: Served, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    with server.client() as c:
        r = c.request(method, BASE + path, json=body, headers=AUTH, **kw)
    assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def timeless(view: Any) -> Any:
    """``view`` without the keys that hold the time of the call."""
    if isinstance(view, dict):
        return {
            k: timeless(v) for k, v in view.items() if k not in CLOCK and not k.startswith(AGES)
        }
    if isinstance(view, list):
        return [timeless(v) for v in view]
    return view


def logged_rows(server: Served) -> int:
    with Workspace(load_spec(server.config, environ={})) as ws, ws.store.read() as conn:
        return len(conn.execute(select(t.predictions.c.request_id)).all())


def test_rest_bodies_are_the_api_results(server: Served, twin: Retrainer) -> None:
    # versions: the list `versions --json` prints, with and without detail
    assert call(server, "GET", "/versions") == twin.versions("weather").to_dict()["versions"]
    detail = twin.versions("weather", detail=True).to_dict()["versions"]
    assert call(server, "GET", "/versions", params={"detail": "true"}) == detail

    # the same rows scored and logged on both sides, for drift and monitor to compare
    rows = weather().iloc[1100:1130].reset_index(drop=True)
    features = rows[["day_id", *WEATHER_FEATURES]]
    body = {"rows": features.astype(object).where(features.notna(), None).to_dict("records")}
    with server.client() as c:
        assert c.post(f"{BASE}/predict", json=body).status_code == 200
    twin.predict("weather", pd.DataFrame(features))
    server.wait_for(lambda: logged_rows(server) >= len(rows), what="the 30 rows to be logged")

    rest_drift = call(server, "GET", "/drift", params={"window": "30d"})
    assert rest_drift["rows"] == len(rows)
    assert timeless(rest_drift) == timeless(twin.drift("weather", window="30d").to_dict())

    twin.monitor("weather")  # both sides fold the logged rows once before comparing
    call(server, "GET", "/monitor")
    rest_monitor = call(server, "GET", "/monitor", params={"window": "7d"})
    assert timeless(rest_monitor) == timeless(twin.monitor("weather", window="7d").to_dict())
    status = call(server, "GET", "/status")
    assert set(status["live"]) == set(rest_monitor)  # status embeds the same report

    rest_maintain = call(server, "POST", "/maintain", {"dry_run": True})
    api_maintain = twin.maintain("weather", dry_run=True).to_dict()
    assert rest_maintain["dry_run"] is True
    assert timeless(rest_maintain) == timeless(api_maintain)

    rest_deploy = call(server, "POST", "/deploy", {"version": "1.1.0", "reason": "parity"})
    api_deploy = twin.deploy("weather", "1.1.0", reason="parity").to_dict()
    assert rest_deploy["triggered_by"] == "api" and rest_deploy["to_version"] == "1.1.0"
    assert timeless(rest_deploy) == timeless(api_deploy)

    rest_rollback = call(server, "POST", "/rollback", {"reason": "parity"})
    api_rollback = twin.rollback("weather", reason="parity").to_dict()
    assert rest_rollback["action"] == "rollback" and rest_rollback["to_version"] == "1.0.0"
    assert timeless(rest_rollback) == timeless(api_rollback)

    after = twin.versions("weather").to_dict()["versions"]
    assert timeless(call(server, "GET", "/versions")) == timeless(after)

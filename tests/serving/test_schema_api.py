"""The served model's schema over real loopback HTTP: /docs offline, /openapi.json per model
(rebuilt on hot reload), JSON booleans for boolean-like features, unknown categories scored
as missing and reported (response warnings, /metrics), and the 422 of a bad value.

One model, ``loans``: numeric ``x`` (float), ``n`` (integer), ``flag`` (boolean), categorical
``city`` (strings) and ``member`` (booleans, so its levels are "False"/"True"). The default
``serving.unknown_category: accept``.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn
import yaml
from cdphelp import Chromium
from servehelp import PARAMS, RELOAD, Served, free_port

from retrainer.core.spec import load_spec
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_frame, resolve_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.apidocs import openapi_builder
from retrainer.serving.app import create_app
from waits import CATCH_UP, SERVER_START

MODEL = "loans"
BASE = {"x": 0.5, "n": 2, "flag": True, "city": "Rome", "member": False}


def loans_frame(n: int, cities: list[str], start: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    count = rng.integers(0, 6, n)
    flag = rng.random(n) < 0.5
    city = rng.choice(cities, n)
    member = rng.random(n) < 0.4
    y = x + 2 * flag + 3 * (city == "Rome") + member + 0.1 * count + rng.normal(0, 0.1, n)
    return pd.DataFrame(
        {
            "id": [f"{start}-{i}" for i in range(n)],
            "ts": pd.date_range(start, periods=n, freq="h"),
            "x": x,
            "n": count,
            "flag": flag,
            "city": city,
            "member": member,
            "y": y,
        }
    )


def spec(folder: Path) -> dict[str, Any]:
    return {
        "store": f"sqlite:///{folder / 'ws.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {
            MODEL: {
                "task": "regression", "target": "y", "id_column": "id", "time_column": "ts",
                "features": {"numeric": ["x", "n", "flag"], "categorical": ["city", "member"]},
                "family": "lightgbm", "params": PARAMS,
                "serving": {"reload_seconds": RELOAD},
            },
        },
    }  # fmt: skip


class Recorder:
    """The ASGI app with every request's path and status recorded (what a browser asked)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, sending)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Recorder]]:
    folder = tmp_path_factory.mktemp("schema")
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(spec(folder)))
    with Workspace(load_spec(config, environ={})) as ws:
        ingest_frame(ws, MODEL, loans_frame(400, ["Lima", "Paris", "Rome"], "2024-01-01", 0))
        train(ws, MODEL, deploy=True)
    app = create_app(config, spool=folder / "spool", flush_seconds=0.05, scheduler=False)
    recorder = Recorder(app)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    s = Served(f"http://127.0.0.1:{port}", app, config)
    s.wait_for(lambda: srv.started or not thread.is_alive(), SERVER_START, "the server to start")
    assert srv.started, "the server thread ended without starting"
    s.wait_for(lambda: s.client().get("/ready").status_code == 200, what="the champion loaded")
    yield s, recorder
    srv.should_exit = True
    thread.join(30)


def predict(s: Served, rows: list[dict[str, Any]]) -> Any:
    with s.client() as c:
        return c.post(f"/v1/models/{MODEL}/predict", json={"rows": rows})


def test_docs_and_their_assets_are_served_from_the_package(
    served: tuple[Served, Recorder],
) -> None:
    s, _ = served
    with s.client() as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        html = page.text
        assert not re.search(r"https?://", html), "the docs page names an external URL"
        refs = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(refs)
        assert "/openapi.json" in refs
        for ref in refs:
            got = c.get(ref)
            assert got.status_code == 200 and got.content, ref
        assert (
            c.get("/docs/assets/swagger-ui-bundle.js")
            .headers["content-type"]
            .startswith("text/javascript")
        )
        assert c.get("/docs/assets/../../app.py").status_code == 404
        assert c.get("/docs/assets/nope.js").json()["error"] == "not_found"
        assert c.get("/redoc").status_code == 404  # off: it would need assets of its own


def test_openapi_shows_each_feature_with_its_type(served: tuple[Served, Recorder]) -> None:
    s, _ = served
    with s.client() as c:
        doc = c.get("/openapi.json").json()
    row = doc["components"]["schemas"][f"{MODEL}Row"]
    props = row["properties"]
    assert props["x"]["type"] == ["number", "null"]  # lightgbm scores missing values
    assert props["n"]["type"] == ["integer", "null"]
    assert props["flag"]["type"] == ["boolean", "number", "null"]  # 0/1 in training
    assert props["city"]["type"] == ["string", "null"]
    assert props["city"]["enum"] == ["Lima", "Paris", "Rome", None]
    assert props["member"]["type"] == ["boolean", "null"]
    assert set(row["required"]) == {"x", "n", "flag", "city", "member"}
    assert "scored as a missing value" in row["description"]
    op = doc["paths"][f"/v1/models/{MODEL}/predict"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": f"#/components/schemas/{MODEL}PredictRequest"}
    request = doc["components"]["schemas"][f"{MODEL}PredictRequest"]
    assert request["properties"]["rows"]["items"] == {"$ref": f"#/components/schemas/{MODEL}Row"}
    assert "/v1/models/{name}/predict" not in doc["paths"]  # one operation per model instead
    assert "warnings" in doc["components"]["schemas"]["PredictResponse"]["properties"]


def test_json_booleans_score_like_their_text_and_like_batch_predict(
    served: tuple[Served, Recorder],
) -> None:
    s, _ = served
    as_json = {**BASE, "flag": True, "member": False}
    as_text = {**BASE, "flag": 1, "member": "False"}
    r = predict(s, [as_json, as_text, {**as_json, "member": True}])
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    assert got[0] == pytest.approx(got[1], abs=1e-12)
    assert "warnings" not in r.json()
    # batch predict (lifecycle.predict) takes the same values to the same scores
    with Workspace(load_spec(s.config, environ={})) as ws:
        frame = pd.DataFrame([as_json, {**as_json, "member": True}])
        batch = predict_frame(resolve_predictor(ws, MODEL), frame)["prediction"].tolist()
    assert batch == pytest.approx([got[0], got[2]], abs=1e-9)
    # a boolean where the feature is not boolean-like is refused, naming it
    bad = predict(s, [BASE, {**BASE, "x": True}])
    assert bad.status_code == 422
    assert bad.json()["details"]["errors"] == [
        {"row": 1, "field": "x", "problem": "must be a number, got a boolean"}
    ]


def test_an_unknown_category_is_scored_as_missing_and_reported(
    served: tuple[Served, Recorder],
) -> None:
    s, _ = served
    rows = [BASE, {**BASE, "city": "Atlantis"}, {**BASE, "city": None}, {**BASE, "city": 7}]
    r = predict(s, rows)
    assert r.status_code == 200, r.text
    body = r.json()
    reason = "unknown category, scored as missing"
    assert body["warnings"] == [
        {"row": 1, "feature": "city", "value": "Atlantis", "reason": reason},
        {"row": 3, "feature": "city", "value": 7, "reason": reason},
    ]
    p = body["predictions"]
    assert p[1] == pytest.approx(p[2], abs=1e-12) and p[3] == pytest.approx(p[2], abs=1e-12)
    with s.client() as c:
        metrics = c.get("/metrics").text
    assert f'retrainer_unknown_category_total{{model="{MODEL}",feature="city"}} 2' in metrics


def test_a_bad_value_is_a_422_naming_the_row_and_the_feature(
    served: tuple[Served, Recorder],
) -> None:
    s, _ = served
    r = predict(s, [BASE, BASE, {**BASE, "n": {"a": 1}}])
    assert r.status_code == 422
    err = r.json()
    assert err["details"]["errors"] == [
        {"row": 2, "field": "n", "problem": "must be a number, got an object"}
    ]
    assert "row 2" in err["message"] and "'n'" in err["message"]


def test_the_docs_render_in_headless_chromium(
    served: tuple[Served, Recorder], tmp_path: Path
) -> None:
    s, recorder = served
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None, (
        "chromium is not installed: `make test` installs it with `make browser` (Debian "
        "packages chromium, chromium-driver; needs apt-get as root), or install them by hand"
    )
    recorder.seen.clear()
    with Chromium(browser, tmp_path / "profile") as chrome:
        chrome.open(f"{s.url}/docs")
        paths = chrome.wait_for(
            "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.dataset.path)",
            CATCH_UP,
            "Swagger UI to render the operations",
        )
        assert f"/v1/models/{MODEL}/predict" in paths, paths
        chrome.evaluate("document.querySelector('.opblock-summary-path').click()")
        chrome.wait_for(
            "document.querySelector('.opblock-body') && "
            "document.querySelector('.opblock-body').innerText.includes('\"member\"')",
            CATCH_UP,
            "the predict operation to open with an example row of the model's features",
        )
        text = chrome.evaluate("document.body.innerText")
        log = chrome.log
    assert "Failed to load API definition" not in text
    assert not log.console_errors and not log.exceptions, (log.console_errors, log.exceptions)
    assert not log.failed, log.failed
    fetched = [u for u in log.requests if not u.startswith("data:")]  # inline icons
    assert fetched and all(u.startswith(s.url + "/") for u in fetched), fetched
    paths = {p for p, _ in recorder.seen}
    assert {"/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"} <= paths
    failed = [(p, st) for p, st in recorder.seen if st >= 400]
    assert not failed, failed


def test_with_protect_reads_the_open_document_names_no_feature(
    served: tuple[Served, Recorder],
) -> None:
    s, _ = served
    s.state.protect_reads = True  # read once by the builder; restored at once
    try:
        doc = openapi_builder(s.app, s.state)()
    finally:
        s.state.protect_reads = False
    assert f"{MODEL}Row" not in doc["components"]["schemas"]
    assert list(doc["paths"]).count("/v1/models/{name}/predict") == 1
    assert "city" not in str(doc)


def test_openapi_follows_a_hot_reload(served: tuple[Served, Recorder]) -> None:
    """Last: it deploys a new champion that knows a new city."""
    s, _ = served
    with Workspace(load_spec(s.config, environ={})) as ws:
        ingest_frame(ws, MODEL, loans_frame(400, ["Oslo", "Paris", "Rome"], "2024-03-01", 1))
        version = train(ws, MODEL, deploy=True, force=True).version.version

    def enum() -> list[Any]:
        with s.client() as c:
            doc = c.get("/openapi.json").json()
        return list(doc["components"]["schemas"][f"{MODEL}Row"]["properties"]["city"]["enum"])

    s.wait_for(lambda: "Oslo" in enum(), what=f"/openapi.json to show champion {version}")
    assert enum() == ["Lima", "Oslo", "Paris", "Rome", None]
    r = predict(s, [{**BASE, "city": "Oslo"}])
    assert r.status_code == 200 and "warnings" not in r.json()

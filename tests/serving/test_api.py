"""The REST service over real HTTP on 127.0.0.1: every route, every 4xx with the row index
and field, auth, routing arms, hot reload, a tampered champion, and predicts that never fail
while the champion moves."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servehelp import HTTP, RELOAD, Served
from sqlalchemy import select

from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle.deploy import deploy, rollback
from retrainer.plumbing.workspace import Workspace
from retrainer.store import schema as t

ROW = dict.fromkeys(WEATHER_FEATURES, 0.1)
NO_DEW = {k: v for k, v in ROW.items() if k != "dew_point"}
PLANS = [{"x": 1, "plan": "gold"}, {"x": 1, "plan": "platinum"}]
PREDICT = "/v1/models/weather/predict"
AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture(scope="module")
def ws(server: Served) -> Iterator[Workspace]:
    """Another workspace on the server's store: changes made here reach it by polling."""
    with Workspace(load_spec(server.config, environ={})) as w:
        yield w


def post(server: Served, path: str, body: Any = None, **kw: Any) -> Any:
    return HTTP.post(f"{server.url}{path}", json=body, **kw)


def get(server: Served, path: str, **kw: Any) -> Any:
    return HTTP.get(f"{server.url}{path}", **kw)


def served_champion(server: Served, model: str = "weather") -> str | None:
    s = server.state.registry.served[model]
    return s.champion.version if s.champion else None


def logged(ws: Workspace, request_ids: set[str]) -> list[tuple[str, str, str]]:
    c = t.predictions.c
    with ws.store.read() as conn:
        rows = conn.execute(select(c.request_id, c.version, c.arm)).all()
    return [(r[0], r[1], r[2]) for r in rows if r[0] in request_ids]


# ---- service routes ----------------------------------------------------------------------


def test_health_ready_metrics_and_openapi(server: Served) -> None:
    assert get(server, "/health").json() == {"status": "ok"}
    ready = get(server, "/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "models": {"sales": "ready", "weather": "ready"}}
    spec = get(server, "/openapi.json").json()
    body = spec["paths"]["/v1/models/weather/predict"]["post"]["requestBody"]  # one per model
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "rows" in spec["components"]["schemas"][ref]["properties"]
    assert get(server, "/docs").status_code == 200
    hello = post(
        server, "/v1/models/weather/predict", {"row": ROW}, headers={"Origin": "https://x.test"}
    )
    assert "access-control-allow-origin" not in hello.headers  # CORS is off by default
    text = get(server, "/metrics").text
    for name in ("retrainer_requests_total{", "retrainer_request_seconds_bucket{",
                 "retrainer_prediction_log_queue_rows", "retrainer_served_info{"):  # fmt: skip
        assert name in text


def test_predict_one_row_and_a_batch(server: Served) -> None:
    one = post(server, "/v1/models/weather/predict", {"row": ROW})
    assert one.status_code == 200, one.text
    b = one.json()
    assert b["version"] == served_champion(server) and b["arm"] == "champion"
    assert b["predictions"][0] in (0, 1) and set(b["probabilities"][0]) == {"0", "1"}
    assert abs(sum(b["probabilities"][0].values()) - 1) < 1e-9
    assert one.headers["x-request-id"] == b["request_id"]
    rows = [{**ROW, "temperature": x, "entity_id": f"e{i}"} for i, x in enumerate((-2, 0, 2))]
    batch = post(server, "/v1/models/weather/predict", {"rows": rows}).json()
    assert len(batch["predictions"]) == 3 and len(batch["probabilities"]) == 3
    reg = post(server, "/v1/models/sales/predict", {"rows": [{"x": 1.0, "plan": "gold"}]})
    assert reg.status_code == 200 and "probabilities" not in reg.json()
    assert isinstance(reg.json()["predictions"][0], float)


BAD = {
    "missing feature": ("weather", {"rows": [ROW, NO_DEW]},
                        1, "dew_point", "missing"),
    "wrong type": ("weather", {"rows": [{**ROW, "temperature": "warm"}]}, 0, "temperature",
                   "must be a number"),
    "boolean": ("weather", {"row": {**ROW, "visibility": True}}, 0, "visibility", "boolean"),
    "extra key (forbid)": ("weather", {"row": {**ROW, "colour": "red"}}, 0, "colour",
                           "unknown field"),
    "unknown category": ("sales", {"rows": PLANS},
                         1, "plan", "unknown category"),
    "category as array": ("sales", {"row": {"x": 1, "plan": ["gold"]}}, 0, "plan", "array"),
    "row not an object": ("weather", {"rows": [ROW, 5]}, 1, None, "must be an object"),
    "entity id object": ("weather", {"row": {**ROW, "entity_id": {"a": 1}}}, 0, "entity_id",
                         "string or an integer"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rows_are_422_naming_row_field_and_problem(server: Served, case: str) -> None:
    model, body, row, field, problem = BAD[case]
    r = post(server, f"/v1/models/{model}/predict", body)
    assert r.status_code == 422, r.text
    b = r.json()
    assert b["error"] == "input_invalid" and b["request_id"]
    first = b["details"]["errors"][0]
    assert (first["row"], first["field"]) == (row, field)
    assert problem in first["problem"]
    assert problem in b["message"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"rows": []}', b'{"rows": {}}', b'{"nothing": 1}',
     b'{"rows": [{}], "extra": 1}', "\u00ff".encode("latin-1"), b"[" * 100_000],
)  # fmt: skip
def test_malformed_bodies_are_422(server: Served, body: bytes) -> None:
    r = post(server, "/v1/models/sales/predict", content=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "input_invalid"


def test_non_finite_and_missing_values(server: Served) -> None:
    # "Infinity" and "NaN" (JSON has neither; the stdlib parser reads them) are not numbers
    for value, word in ((float("inf"), "infinity"), (float("nan"), "NaN")):
        body = json.dumps({"rows": [ROW, {**ROW, "temperature": value}]}).encode()
        r = post(server, "/v1/models/weather/predict", content=body)
        assert r.status_code == 422, r.text
        first = r.json()["details"]["errors"][0]
        assert (first["row"], first["field"]) == (1, "temperature")
        assert f"finite number, got {word}" in first["problem"] and "null" in first["problem"]
        sales = post(server, "/v1/models/sales/predict", content=body.replace(b'"temperature"',
                     b'"x": 1, "plan"'))  # fmt: skip
        assert sales.status_code == 422 and "plan" in sales.text
    # lightgbm takes missing values: null is scored
    body = json.dumps({"row": {**ROW, "temperature": None}}).encode()
    assert post(server, "/v1/models/weather/predict", content=body).status_code == 200
    # a family without missing-value support refuses them, naming the field
    codec = server.state.registry.served["weather"].champion.codec
    codec.handles_missing = False
    try:
        body = json.dumps({"rows": [ROW, {**ROW, "dew_point": None}]}).encode()
        r = post(server, "/v1/models/weather/predict", content=body)
        assert r.status_code == 422
        first = r.json()["details"]["errors"][0]
        assert (first["row"], first["field"]) == (1, "dew_point")
        assert "missing values" in first["problem"]
    finally:
        codec.handles_missing = True


def test_what_only_the_stdlib_parser_reads_meets_the_same_checks(server: Served) -> None:
    # orjson refuses integers beyond 64 bits; json reads them, and the row check names them
    big = json.dumps({"row": {**ROW, "temperature": "BIG"}}).replace('"BIG"', "1" + "0" * 400)
    r = post(server, "/v1/models/weather/predict", content=big.encode())
    assert r.status_code == 422, r.text
    first = r.json()["details"]["errors"][0]
    assert (first["row"], first["field"]) == (0, "temperature")
    assert first["problem"] == "number too large"
    wide = {**ROW, "temperature": 2**70}  # beyond 64 bits, still a finite double
    ok = post(server, "/v1/models/weather/predict", content=json.dumps({"row": wide}).encode())
    assert ok.status_code == 200, ok.text


def test_unknown_model_is_404_listing_the_served_ones(server: Served) -> None:
    r = post(server, "/v1/models/nope/predict", {"row": ROW})
    assert r.status_code == 404
    assert r.json()["error"] == "model_not_found" and "sales, weather" in r.json()["message"]
    assert get(server, "/v1/models/nope/status").status_code == 404


def test_oversized_bodies_are_413(server: Served) -> None:
    limit = server.state.limits["weather"]
    big = json.dumps({"rows": [ROW] * 10, "pad": "x" * limit}).encode()
    assert post(server, "/v1/models/weather/predict", content=big).status_code == 413
    many = post(server, "/v1/models/weather/predict", {"rows": [ROW] * 51})
    assert many.status_code == 413 and "max_batch_rows" in many.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        yield b'{"rows": ['
        for _ in range(limit // 100 + 10):
            yield json.dumps(ROW).encode() + b","
        yield b"{}]}"

    r = post(server, "/v1/models/weather/predict", content=chunks())
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_auth_on_mutating_routes(server: Served) -> None:
    path = "/v1/models/weather/rollback"
    none = post(server, path, {})
    assert none.status_code == 401 and none.json()["error"] == "unauthorized"
    assert none.headers["www-authenticate"] == "Bearer"
    wrong = post(server, path, {}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "forbidden"
    for route in ("feedback", "train", "maintain", "deploy"):
        assert post(server, f"/v1/models/weather/{route}", {}).status_code == 401
    # reads and predict stay open (auth.protect_reads is false)
    assert post(server, "/v1/models/weather/predict", {"row": ROW}).status_code == 200
    assert get(server, "/v1/models/weather/versions").status_code == 200
    server.state.protect_reads = True  # auth.protect_reads: reads and predict need it too
    try:
        for path in ("/v1/models", "/v1/models/weather/status", "/metrics"):
            assert get(server, path).status_code == 401
            assert get(server, path, headers=AUTH).status_code == 200
        assert post(server, PREDICT, {"row": ROW}).status_code == 401
        assert post(server, PREDICT, {"row": ROW}, headers=AUTH).status_code == 200
    finally:
        server.state.protect_reads = False
    # a bad body with a good token is a 422, not a 500
    r = post(server, "/v1/models/weather/deploy", {"versio": "1"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["details"]["errors"]


def test_read_routes(server: Served) -> None:
    models = get(server, "/v1/models").json()
    assert [m["model"] for m in models] == ["sales", "weather"]
    status = get(server, "/v1/models/weather/status").json()
    assert status["champion"]["version"] == status["served"]["champion"]
    assert {"live", "last_decision", "last_training", "challenger"} <= set(status)
    versions = get(server, "/v1/models/weather/versions").json()
    assert [v["version"] for v in versions][:2] == ["1.0.0", "1.1.0"]
    assert get(server, "/v1/models/weather/history").json()[0]["action"] == "deploy"
    drift = get(server, "/v1/models/weather/drift", params={"window": "30d"})
    assert drift.status_code == 200, drift.text
    assert {"summary", "features", "rows"} <= set(drift.json())


def test_feedback_joins_served_predictions(server: Served, ws: Workspace) -> None:
    rows = [{**ROW, "entity_id": f"fb{i}"} for i in range(5)]
    served = post(server, "/v1/models/weather/predict", {"rows": rows})
    assert served.status_code == 200
    rid = {served.json()["request_id"]}
    server.wait_for(lambda: bool(logged(ws, rid)), what="the predictions to be logged")
    actuals = [{"entity_id": f"fb{i}", "actual": i % 2} for i in range(5)] + [{"rain": 1}]
    r = post(server, "/v1/models/weather/feedback", {"actuals": actuals}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["received"], r.json()["matched"], r.json()["rejected"]) == (6, 5, 1)
    again = post(server, "/v1/models/weather/feedback", {"actuals": actuals[:5]}, headers=AUTH)
    assert again.json()["duplicates"] == 5
    bad = post(server, "/v1/models/weather/feedback", {"actuals": [{"rain": 1}]}, headers=AUTH)
    assert bad.status_code == 422


def test_status_shows_the_naive_baselines_beside_the_versions(
    server: Served, ws: Workspace
) -> None:
    rows = [{**ROW, "entity_id": f"nb{i}"} for i in range(6)]
    served = post(server, "/v1/models/weather/predict", {"rows": rows})
    assert served.status_code == 200
    rid = {served.json()["request_id"]}
    server.wait_for(lambda: bool(logged(ws, rid)), what="the predictions to be logged")
    actuals = [{"entity_id": f"nb{i}", "actual": i % 2} for i in range(6)]
    assert (
        post(server, "/v1/models/weather/feedback", {"actuals": actuals}, headers=AUTH).json()[
            "matched"
        ]
        == 6
    )
    live = get(server, "/v1/models/weather/status").json()["live"]
    naive = {b["version"]: b for b in live["baselines"]}
    assert set(naive) == {"naive:last", "naive:mean"}  # no monitor.season: no seasonal one
    labelled = sum(v["labelled"] for v in live["versions"] if v["arm"] != "shadow")
    for b in naive.values():
        assert b["arm"] == "baseline" and b["description"]
        assert set(b["metrics"]) == set(live["versions"][0]["metrics"])
        assert labelled - 1 <= b["labelled"] <= labelled  # each actual once
        assert 0 <= b["metrics"]["accuracy"] <= 1
    assert all("description" not in v for v in live["versions"])
    server.state.cache.pop("live", None)  # the gauges are cached for LIVE_TTL seconds
    text = get(server, "/metrics").text
    assert 'retrainer_live_metric{model="weather",version="naive:last",arm="baseline"' in text


def test_train_job_and_maintain(server: Served) -> None:
    r = post(server, "/v1/models/weather/train", {"deploy": False}, headers=AUTH)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    def finished() -> bool:
        state = get(server, f"/v1/jobs/{job_id}").json()["state"]
        return state in ("succeeded", "failed")

    server.wait_for(finished, what="the training job to finish")
    job = get(server, f"/v1/jobs/{job_id}").json()
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["version"] == "1.2.0" and job["result"]["deployed"] is False
    assert get(server, "/v1/jobs/nope").status_code == 404
    bad = post(server, "/v1/models/weather/train", {"family": "nope"}, headers=AUTH)
    server.wait_for(lambda: get(server, f"/v1/jobs/{bad.json()['id']}").json()["state"] == "failed")
    assert get(server, f"/v1/jobs/{bad.json()['id']}").json()["error"]["error"] == "input_invalid"
    m = post(server, "/v1/models/weather/maintain", {"dry_run": True}, headers=AUTH)
    assert m.status_code == 200, m.text
    assert m.json()["dry_run"] is True and m.json()["action"]


# ---- rollout routing ---------------------------------------------------------------------


def _challenger(server: Served, ws: Workspace, mode: str | None, fraction: float = 0.5) -> None:
    version = "1.1.0" if mode else None
    ws.store.set_challenger("weather", version, mode, fraction if mode else None, "test", "test")
    served = server.state.registry.served

    def swapped() -> bool:  # the rollout too: A/B to canary keeps the challenger's version
        ch, rc = served["weather"].challenger, served["weather"].roles.challenger
        if version is None:
            return ch is None and rc is None
        return (
            ch is not None
            and ch.version == version
            and rc is not None
            and (rc.mode, rc.fraction) == (mode, fraction)
        )

    server.wait_for(swapped, what="the server to swap the challenger")


def test_ab_routing_is_sticky_per_entity(server: Served, ws: Workspace) -> None:
    champion = served_champion(server)
    _challenger(server, ws, "ab", 0.5)
    try:
        seen: dict[str, tuple[str, str]] = {}
        for i in range(60):
            b = post(
                server, "/v1/models/weather/predict", {"row": {**ROW, "day_id": f"c{i}"}}
            ).json()
            seen[f"c{i}"] = (b["version"], b["arm"])
        assert set(seen.values()) == {(champion, "champion"), ("1.1.0", "challenger")}
        for eid in list(seen)[:10]:
            b = post(server, "/v1/models/weather/predict",
                     {"row": {**ROW, "entity_id": eid}}).json()  # fmt: skip
            assert (b["version"], b["arm"]) == seen[eid]
        _challenger(server, ws, "canary", 0.05)
        arms = [post(server, "/v1/models/weather/predict", {"row": {**ROW, "day_id": f"c{i}"}})
                .json()["arm"] for i in range(60)]  # fmt: skip
        assert 0 < arms.count("challenger") < 20
    finally:
        _challenger(server, ws, None)


def test_shadow_is_logged_never_returned(server: Served, ws: Workspace) -> None:
    champion = served_champion(server)
    _challenger(server, ws, "shadow", 1.0)
    try:
        ids = set()
        for i in range(10):
            b = post(
                server, "/v1/models/weather/predict", {"row": {**ROW, "day_id": f"s{i}"}}
            ).json()
            assert (b["version"], b["arm"]) == (champion, "champion")
            ids.add(b["request_id"])
        server.wait_for(lambda: len(logged(ws, ids)) == 20)
        rows = logged(ws, ids)
        assert sorted({(v, a) for _, v, a in rows}) == [(champion, "champion"), ("1.1.0", "shadow")]
    finally:
        _challenger(server, ws, None)


# ---- hot reload --------------------------------------------------------------------------


def test_hot_reload_of_a_deploy_from_another_workspace(server: Served, ws: Workspace) -> None:
    before = served_champion(server)
    target = "1.1.0" if before != "1.1.0" else "1.0.0"
    deploy(ws, "weather", target, forced=True, reason="hot reload test")
    server.wait_for(lambda: post(server, "/v1/models/weather/predict", {"row": ROW})
                    .json()["version"] == target, what="the deploy to be served")  # fmt: skip


def test_a_tampered_champion_is_not_swapped_in(server: Served, ws: Workspace) -> None:
    before = served_champion(server)
    assert before is not None
    v = ws.store.get_version("weather", "1.2.0")  # trained by the job test, never loaded
    path = Path(ws.artifacts.location(v.artifact_uri))
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    ws.store.move_champion("weather", "1.2.0", "deploy", "tampered", "test")
    server.wait_for(lambda: any(a.event == "reload_failed" for a in server.alerts))
    alert = next(a for a in server.alerts if a.event == "reload_failed")
    assert alert.model == "weather" and alert.fields["version"] == "1.2.0"
    assert "does not match" in alert.text
    b = post(server, "/v1/models/weather/predict", {"row": ROW}).json()
    assert b["version"] == before
    assert get(server, "/ready").status_code == 200
    assert 'retrainer_reload_failures_total{model="weather"}' in get(server, "/metrics").text
    ws.store.move_champion("weather", before, "rollback", "untamper", "test")
    time.sleep(3 * RELOAD)
    assert len([a for a in server.alerts if a.event == "reload_failed"]) == 1


def test_concurrent_predicts_while_the_champion_moves(server: Served, ws: Workspace) -> None:
    start = served_champion(server)
    other = "1.1.0" if start == "1.0.0" else "1.0.0"
    # (when the store changed, the new champion, when the server was seen serving it)
    timeline: list[tuple[float, str, float]] = [(0.0, str(start), 0.0)]
    results: list[tuple[float, float, int, str]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(k: int) -> None:
        with server.client() as c:
            i = 0
            while not stop.is_set():
                t0 = time.monotonic()
                r = c.post(
                    "/v1/models/weather/predict", json={"row": {**ROW, "day_id": f"k{k}-{i}"}}
                )
                v = r.json().get("version", "") if r.status_code == 200 else r.text
                with lock:
                    results.append((t0, time.monotonic(), r.status_code, v))
                i += 1

    def more_traffic() -> None:
        n = len(results)
        server.wait_for(lambda: len(results) >= n + 12, what="12 more predictions")

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    try:
        for step in range(4):
            more_traffic()
            if step % 2 == 0:
                ev = deploy(ws, "weather", other, forced=True, reason="swap under load")
            else:
                ev = rollback(ws, "weather", to=start, reason="swap back under load")
            changed = time.monotonic()
            server.wait_for(lambda: served_champion(server) == ev.to_version,  # noqa: B023
                            what=f"the server to serve {ev.to_version}")  # fmt: skip
            timeline.append((changed, str(ev.to_version), time.monotonic()))
        more_traffic()
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert results and all(code == 200 for _, _, code, _ in results), [
        r for r in results if r[2] != 200][:3]  # fmt: skip
    served = {v for *_, v in results}
    assert served == {start, other}

    def champions_during(t0: float, t1: float) -> set[str]:
        # a request sent after the server was seen serving a champion gets it or a later one,
        # and never one the store had not made champion before the answer came
        first = max(i for i, (_, _, seen) in enumerate(timeline) if seen <= t0)
        return {v for changed, v, _ in timeline[first:] if changed <= t1}

    assert all(v in champions_during(t0, t1) for t0, t1, _, v in results)


def test_the_predict_route_is_matched_first(server: Served) -> None:
    assert server.app.router.routes[0].path == "/v1/models/{name}/predict"
    with server.client() as c:  # the documentation routes still answer
        assert c.get("/openapi.json").status_code == 200 and c.get("/docs").status_code == 200

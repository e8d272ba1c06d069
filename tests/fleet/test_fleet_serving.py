"""Serving a fleet over real HTTP on loopback: rows routed to their members by the ``by``
column and answered in request order, logged and fed back per member; an entity without a
model is a clear 409; one member reloads alone; members that appear after start are served;
a thousand members are listed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from retrainer.core.clock import utcnow
from retrainer.core.fleet import member_name
from retrainer.core.spec import parse_spec
from retrainer.lifecycle.drift_check import STATE_KEY as DRIFT_KEY
from retrainer.lifecycle.drift_check import check_drift
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_frame, resolve_predictor
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app
from retrainer.serving.model_holder import LAZY
from waits import CATCH_UP, SERVER_START, wait_until

from .fleet_data import FLEET, fleet_rows, fleet_spec
from .fleet_members import register_members

STORES = ["s0", "s1", "SKU 12/4"]
RELOAD = {"serving": {"reload_seconds": 0.2}}


class Server:
    def __init__(self, ws: Workspace, spool: Path, alert: Any = None) -> None:
        self.ws = ws
        self.app = create_app(ws, spool=spool, flush_seconds=0.05, scheduler=False,
                              log_writer="thread", alert=alert)  # fmt: skip
        with socket_port() as port:
            self.url = f"http://127.0.0.1:{port}"
            self.srv = uvicorn.Server(
                uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
            )
        self.thread = threading.Thread(target=self.srv.run, daemon=True)
        self.thread.start()
        wait_until(
            lambda: self.srv.started or not self.thread.is_alive(), "the server", SERVER_START
        )
        assert self.srv.started, "the server thread ended without starting"
        self.http = httpx.Client(base_url=self.url, timeout=60)

    @property
    def registry(self) -> Any:
        return self.app.state.retrainer.registry

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body)

    def close(self) -> None:
        self.http.close()
        self.srv.should_exit = True
        self.thread.join(SERVER_START)


class socket_port:
    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: Any) -> None:
        return None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Three stores trained for real, served."""
    d = tmp_path_factory.mktemp("fleet")
    spec = parse_spec(fleet_spec(f"sqlite:///{d / 'ws.db'}", str(d / "art"), **RELOAD),
                      environ={})  # fmt: skip
    ws = Workspace(spec)
    ingest_frame(ws, FLEET, fleet_rows(STORES, 120))
    for store in STORES:
        train(ws, member_name(FLEET, store), deploy=True)
    server = Server(ws, d / "spool")
    yield server
    server.close()
    ws.close()


def features(store: str, n: int, seed: int = 5) -> list[dict[str, Any]]:
    df = fleet_rows([store], n, seed=seed)
    return [{"store": store, "day_id": r.day_id, "x": r.x, "z": r.z} for r in df.itertuples()]


def logged_rows(ws: Workspace, rid: str) -> dict[str, int]:
    """Rows of request ``rid`` in the prediction log, by model."""
    from sqlalchemy import func, select

    from retrainer.store import schema as t

    c = t.predictions.c
    q = select(c.model, func.count()).where(c.request_id == rid).group_by(c.model)
    with ws.store.engine.connect() as conn:
        return {str(m): int(n) for m, n in conn.execute(q)}


def own_prediction(ws: Workspace, store: str, rows: list[dict[str, Any]]) -> list[float]:
    import pandas as pd

    predictor = resolve_predictor(ws, member_name(FLEET, store))
    return predict_frame(predictor, pd.DataFrame(rows))["prediction"].tolist()


def test_rows_are_routed_to_their_members_in_request_order(fleet: Server) -> None:
    per_store = {s: features(s, 4, seed=i) for i, s in enumerate(STORES)}
    # interleaved: s0, s1, SKU, s0, s1, SKU, ...
    rows = [per_store[s][i] for i in range(4) for s in STORES]
    r = fleet.post("/v1/models/sales/predict", {"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    want = {s: own_prediction(fleet.ws, s, per_store[s]) for s in STORES}
    expected = [want[s][i] for i in range(4) for s in STORES]
    assert body["predictions"] == pytest.approx(expected)
    assert body["members"] == [member_name(FLEET, s) for _ in range(4) for s in STORES]
    assert body["versions"] == ["1.0.0"] * 12 and body["arms"] == ["champion"] * 12
    assert "version" not in body  # rows of several members: the per-row lists say it
    # each member's own route answers the same for its rows
    direct = fleet.post("/v1/models/sales.s1/predict", {"rows": per_store["s1"]}).json()
    assert direct["predictions"] == pytest.approx(want["s1"])


def test_one_entity_reads_like_a_plain_model(fleet: Server) -> None:
    r = fleet.post("/v1/models/sales/predict", {"row": features("s0", 1)[0]})
    body = r.json()
    assert r.status_code == 200, r.text
    assert (body["member"], body["version"], body["arm"]) == ("sales.s0", "1.0.0", "champion")
    assert body["predictions"] == pytest.approx(own_prediction(fleet.ws, "s0", features("s0", 1)))


def test_predictions_are_logged_under_each_member_and_feedback_joins(fleet: Server) -> None:
    rows = features("s0", 3, seed=11) + features("SKU 12/4", 2, seed=12)
    for i, row in enumerate(rows):
        row["day_id"] = f"fb-{i}"
    r = fleet.post("/v1/models/sales/predict", {"rows": rows})
    assert r.status_code == 200, r.text
    rid = r.json()["request_id"]
    sku = member_name(FLEET, "SKU 12/4")

    def logged() -> bool:
        return logged_rows(fleet.ws, rid) == {"sales.s0": 3, sku: 2}

    wait_until(logged, "both members' predictions in the log", CATCH_UP)
    actuals = [{"store": row["store"], "day_id": row["day_id"], "sales": 1.0} for row in rows]
    actuals.append({"store": "nowhere", "day_id": "fb-x", "sales": 1.0})
    fb = fleet.post("/v1/models/sales/feedback", {"actuals": actuals})
    assert fb.status_code == 200, fb.text
    view = fb.json()
    assert (view["received"], view["matched"], view["rejected"]) == (6, 5, 1)
    assert "no member 'sales.nowhere'" in view["first_rejects"][0]["reason"]


def test_an_entity_without_a_model_is_a_clear_409(fleet: Server) -> None:
    rows = features("s0", 2) + features("nowhere", 1)
    r = fleet.post("/v1/models/sales/predict", {"rows": rows})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "no_champion"
    assert "'nowhere'" in body["message"] and "retrainer ingest sales" in body["message"]
    assert body["details"]["entities"][0]["rows"] == [2]
    # a row without the by value: an invalid row, named
    bad = fleet.post("/v1/models/sales/predict", {"rows": [{"x": 1.0, "z": 2.0}]})
    assert bad.status_code == 422 and bad.json()["details"]["errors"][0]["field"] == "store"


def test_a_member_that_appears_later_is_served_and_untrained_says_train(fleet: Server) -> None:
    ingest_frame(fleet.ws, FLEET, fleet_rows(["late"], 40, seed=3))
    wait_until(lambda: "sales.late" in fleet.registry.served, "the new member to be listed")
    r = fleet.post("/v1/models/sales/predict", {"row": features("late", 1)[0]})
    assert r.status_code == 409, r.text
    assert "retrainer train sales.late --deploy" in r.json()["message"]
    listed = [m["model"] for m in fleet.http.get("/v1/models").json()]
    assert "sales.late" in listed and "sales" not in listed


def test_one_member_reloads_without_touching_the_others(fleet: Server) -> None:
    fleet.post("/v1/models/sales/predict", {"rows": [features(s, 1)[0] for s in STORES]})
    reg = fleet.registry
    before = {m: reg.served[m] for m in reg.members(FLEET)}
    reloads = dict(reg.reloads)
    ingest_frame(fleet.ws, FLEET, fleet_rows(["s1"], 160, seed=9))
    v = train(fleet.ws, "sales.s1", deploy=True, force=True)
    wait_until(lambda: reg.served["sales.s1"].champion is not None
               and reg.served["sales.s1"].champion.version == v.version.version,
               "sales.s1 to reload its new champion")  # fmt: skip
    for m, snapshot in before.items():
        if m != "sales.s1":
            assert reg.served[m] is snapshot, f"{m} was swapped"
            assert reg.reloads[m] == reloads[m]
    r = fleet.post("/v1/models/sales/predict", {"rows": features("s1", 2) + features("s0", 1)})
    assert r.json()["versions"] == [v.version.version, v.version.version, "1.0.0"]


def test_ready_and_the_openapi_document_have_one_fleet_operation(fleet: Server) -> None:
    ready = fleet.http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["models"]["sales"] == "ready"
    doc = fleet.http.get("/openapi.json").json()
    ops = [p for p in doc["paths"] if p.endswith("/predict")]
    assert ops == ["/v1/models/sales/predict"], ops
    row = doc["components"]["schemas"]["salesRow"]
    assert "store" in row["required"] and {"x", "z"} <= set(row["properties"])
    answer = doc["paths"]["/v1/models/sales/predict"]["post"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("FleetPredictResponse")
    assert "members" in doc["components"]["schemas"]["FleetPredictResponse"]["required"]


def test_a_thousand_members_are_listed(tmp_path: Path) -> None:
    spec = parse_spec(fleet_spec(f"sqlite:///{tmp_path / 'ws.db'}", str(tmp_path / "art"),
                                 **RELOAD), environ={})  # fmt: skip
    with Workspace(spec) as ws:
        ingest_frame(ws, FLEET, fleet_rows(["s0"], 120))
        train(ws, "sales.s0", deploy=True)
        names = register_members(ws, FLEET, "sales.s0", [f"e{i}" for i in range(999)])
        server = Server(ws, tmp_path / "spool")
        try:
            listed = server.http.get("/v1/models").json()
            assert sorted(m["model"] for m in listed) == sorted(["sales.s0", *names])
            assert server.http.get("/ready").status_code == 200
            r = server.post("/v1/models/sales/predict", {"rows": features("e7", 2)})
            assert r.status_code == 200 and r.json()["member"] == "sales.e7"
        finally:
            server.close()


def test_metrics_and_routes_of_members(fleet: Server) -> None:
    fleet.post("/v1/models/sales/predict", {"rows": [features(s, 1)[0] for s in STORES]})
    text = fleet.http.get("/metrics").text
    assert 'retrainer_served_info{model="sales.s0"' in text
    assert 'retrainer_requests_total{model="sales.s0"' in text or "sales.s0" in text
    assert 'retrainer_live_predictions{model="sales.s0"' not in text  # per member: /monitor
    assert 'retrainer_fleet_members_drifted{fleet="sales",level="1"} 0' in text
    # members' last drift checks: one query per fleet, no per-feature scores
    check = check_drift(fleet.ws, "sales.s0")
    kept = {"at": utcnow(), "rows": 300, "share": 1.0, "drift": True, "critical": True,
            "psi": {"x": 0.9}}  # fmt: skip
    fleet.ws.store.put_state("sales.s1", DRIFT_KEY, "1.0.0", kept)
    fleet.app.state.retrainer.cache.pop("live", None)  # the scrape's cache: read the store now
    text = fleet.http.get("/metrics").text
    assert f'retrainer_drift{{model="sales.s0",version="{check.version}"}} 0' in text
    assert 'retrainer_drift{model="sales.s1",version="1.0.0"} 2' in text
    assert 'retrainer_fleet_members_drifted{fleet="sales",level="1"} 1' in text
    assert 'retrainer_fleet_members_drifted{fleet="sales",level="2"} 1' in text
    assert 'retrainer_drift_score{model="sales.s1"' not in text
    assert fleet.http.get("/v1/models/sales.s0/monitor").status_code == 200
    missing = fleet.post("/v1/models/sales.zz/predict", {"row": features("zz", 1)[0]})
    assert missing.status_code == 404
    assert "fleet 'sales' has no member 'zz' yet" in missing.json()["message"]
    status = fleet.http.get("/v1/models/sales/status")
    assert status.status_code == 404 and "is a fleet" in status.json()["message"]


def test_a_member_not_loaded_yet_serves_its_newest_champion(fleet: Server) -> None:
    ingest_frame(fleet.ws, FLEET, fleet_rows(["quiet"], 120, seed=4))
    first = train(fleet.ws, "sales.quiet", deploy=True).version.version
    reg = fleet.registry

    def served(m: str) -> Any:  # read reg.served each time: new members replace the dict
        return reg.served.get(m)

    wait_until(lambda: served("sales.quiet") and served("sales.quiet").roles.champion == first,
               "sales.quiet listed with its champion")  # fmt: skip
    assert "sales.quiet" in reg.lazy and reg.ready_of("sales.quiet") == LAZY
    second = train(fleet.ws, "sales.quiet", deploy=True, force=True).version.version
    wait_until(lambda: reg.served["sales.quiet"].roles.champion == second, "the new champion")
    assert reg.served["sales.quiet"].champion is None  # still not loaded: nobody asked
    r = fleet.post("/v1/models/sales/predict", {"row": features("quiet", 1)[0]})
    assert r.status_code == 200 and r.json()["version"] == second
    assert "sales.quiet" not in reg.lazy and reg.ready_of("sales.quiet") == "ready"


def test_member_roles_reads_the_fleet_in_one_query(store_url: str, tmp_path: Path) -> None:
    """The poll's read, on SQLite and PostgreSQL: every member's revision and roles, no other
    model's (a name that only starts alike is no member)."""
    spec = parse_spec(fleet_spec(store_url, str(tmp_path / "art")), environ={})
    with Workspace(spec) as ws:
        ingest_frame(ws, FLEET, fleet_rows(["s0", "s1"], 120))
        train(ws, "sales.s0", deploy=True)
        register_members(ws, FLEET, "sales.s0", ["a_b", "c%d"])
        with ws.store.write_models(["salesX.y", "sales"]):
            pass  # rows in the models and roles tables that are no member of 'sales'
        found = ws.store.member_roles("sales.")
        hashed = member_name(FLEET, "c%d")
        assert sorted(found) == sorted(["sales.s0", "sales.s1", "sales.a_b", hashed])
        assert found["sales.s0"][1].champion == "1.0.0" and found["sales.s1"][1].champion is None
        assert found["sales.a_b"][0] == 1 and found["sales.s1"][0] == 0


def test_a_member_that_fails_verification_is_named_and_not_ready(tmp_path: Path) -> None:
    from sqlalchemy import update

    from retrainer.store import schema as t

    spec = parse_spec(fleet_spec(f"sqlite:///{tmp_path / 'ws.db'}", str(tmp_path / "art"),
                                 **RELOAD), environ={})  # fmt: skip
    with Workspace(spec) as ws:
        ingest_frame(ws, FLEET, fleet_rows(["s0"], 120))
        train(ws, "sales.s0", deploy=True)
        register_members(ws, FLEET, "sales.s0", ["bad"])
        with ws.store.engine.begin() as conn:  # its artifact no longer matches its hash
            conn.execute(update(t.versions).where(t.versions.c.model == "sales.bad")
                         .values(sha256="0" * 64))  # fmt: skip
        alerts: list[Any] = []
        server = Server(ws, tmp_path / "spool", alert=alerts.append)
        try:
            rows = features("s0", 1) + features("bad", 1)
            r = server.post("/v1/models/sales/predict", {"rows": rows})
            assert r.status_code == 409, r.text
            assert "champion 1.0.0 is not loaded" in r.json()["message"]
            assert [a.model for a in alerts] == ["sales.bad"]
            ready = server.http.get("/ready")
            assert ready.status_code == 503
            assert "not loaded" in ready.json()["models"]["sales.bad"]
            ok = server.post("/v1/models/sales/predict", {"rows": features("s0", 1)})
            assert ok.status_code == 200, ok.text
            wait_until(lambda: server.registry.refresh_fleet(FLEET) == 0 and len(alerts) == 1
                       and server.http.get("/ready").status_code == 503,
                       "the failed member to stay failed, alerted once")  # fmt: skip
        finally:
            server.close()

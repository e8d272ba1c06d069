"""Drift and degradation on ``/metrics`` over real HTTP, read from what the store keeps, and
the Grafana dashboard in examples/ querying only metrics a live scrape has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from servehelp import Served
from sqlalchemy import select

from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.store import schema as t

AUTH = {"Authorization": "Bearer s3cret"}
DASHBOARD = Path(__file__).parents[2] / "examples" / "grafana" / "retrainer.json"
ROWS = 250  # more than drift.min_samples (200) and monitor.min_samples (100)


def samples(text: str) -> dict[str, list[dict[str, str]]]:
    """Each metric name of an exposition with the label sets of its samples (names with a
    TYPE line but no sample yet map to [])."""
    found: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            found.setdefault(line.split()[2], [])
        elif line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            labels = dict(re.findall(r'(\w+)="([^"]*)"', rest.rpartition("}")[0]))
            found.setdefault(name.split()[0], []).append(labels)
    return found


def logged(server: Served, requests: set[str]) -> bool:
    c = t.predictions.c
    with server.state.ws.store.read() as conn:
        found = {r[0] for r in conn.execute(select(c.request_id).where(c.model == "weather"))}
    return requests <= found


def scrape(c: httpx.Client, server: Served) -> dict[str, list[dict[str, str]]]:
    server.state.cache.pop("live", None)  # the scrape's monitor cache: read the store now
    r = c.get("/metrics")
    assert r.status_code == 200, r.text
    return samples(r.text)


def test_drift_and_degradation_gauges_and_the_dashboard(server: Served) -> None:
    df = weather()
    rows = df[df.date >= "1953-01-01"].head(ROWS)
    with server.client() as c:
        before = scrape(c, server)
        assert before["retrainer_drift_share"] == []  # no drift check stored yet
        requests = set()
        for start in range(0, ROWS, 50):
            part = rows.iloc[start : start + 50]
            body = [
                {"entity_id": f"md{i}", **{f: float(r[f]) for f in WEATHER_FEATURES}}
                for i, (_, r) in enumerate(part.iterrows(), start)
            ]
            r = c.post("/v1/models/weather/predict", json={"rows": body})
            assert r.status_code == 200, r.text
            requests.add(r.json()["request_id"])
        server.wait_for(lambda: logged(server, requests), what=f"the {ROWS} rows to be logged")
        actuals = [{"entity_id": f"md{i}", "actual": int(y)} for i, y in enumerate(rows.rain)]
        r = c.post("/v1/models/weather/feedback", json={"actuals": actuals}, headers=AUTH)
        assert r.json()["matched"] == ROWS, r.text
        drift = c.get("/v1/models/weather/drift")
        assert drift.status_code == 200, drift.text
        checked = drift.json()
        found = scrape(c, server)  # the scrape runs the monitor, reads the stored check

    champion = checked["version"]
    ids = {"model": "weather", "version": champion}
    assert found["retrainer_drift_share"] == [ids]
    assert found["retrainer_drift"] == [ids] and found["retrainer_drift_rows"] == [ids]
    features = {s["feature"] for s in found["retrainer_drift_score"] if s["model"] == "weather"}
    assert features == {f["feature"] for f in checked["features"] if f["psi"] is not None}
    assert features and features <= set(WEATHER_FEATURES)
    assert {**ids, "arm": "champion"} in found["retrainer_degradation"]

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    queried = {n for e in exprs for n in re.findall(r"\bretrainer_\w+", e)}
    assert len(queried) >= 10
    missing = queried - set(found)
    assert not missing, f"the dashboard queries metrics /metrics does not expose: {missing}"
    for name in ("retrainer_drift_share", "retrainer_degradation", "retrainer_request_seconds"):
        assert any(name in q for q in queried), name

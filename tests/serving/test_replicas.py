"""Two `retrainer serve` processes on one PostgreSQL store, as replicas behind a balancer run.

A deploy through one is served by both once each has polled ``roles_revision``; exactly one
holds the scheduler's leader lease and the other takes over when it stops; a training asked
of both at once registers one version (the model's lease), the other job fails ``lease_held``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from servehelp import HTTP, answers, free_port

from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.scheduler import LEADER_LEASE
from waits import CATCH_UP, SERVER_START, wait_until
from weather_spec import weather_model

ROW = dict.fromkeys(WEATHER_FEATURES, 0.1)


@pytest.fixture
def config(pg_url: str, tmp_path: Path) -> Path:
    """weather 1.0.0 (champion) and 1.1.0 (archived) in a fresh PostgreSQL database."""
    model = weather_model(params={"n_estimators": 20, "num_threads": 1})
    model["schedule"] = {"maintain": "0 */6 * * *"}  # so each server runs a scheduler
    model["serving"] = {"reload_seconds": 0.2}
    path = tmp_path / "retrainer.yaml"
    spec = {"store": pg_url, "artifacts": str(tmp_path / "artifacts"), "models": {"weather": model}}
    path.write_text(yaml.safe_dump(spec))
    df = weather()
    with Workspace(load_spec(path, environ={})) as ws:
        ingest_frame(ws, "weather", df[(df.date >= "1949-01-01") & (df.date < "1951-01-01")])
        train(ws, "weather", deploy=True)
        ingest_frame(ws, "weather", df[(df.date >= "1951-01-01") & (df.date < "1952-01-01")])
        train(ws, "weather")
    return path


class Replica:
    def __init__(self, config: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        exe = Path(sys.executable).with_name("retrainer")
        self.proc = subprocess.Popen(
            [str(exe), "-c", str(config), "serve", "--port", self.url.rsplit(":", 1)[1]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"exited early: {self.proc.communicate()[1][-2000:]}"
        return answers(self.url)

    def served_version(self) -> str:
        r = HTTP.post(f"{self.url}/v1/models/weather/predict", json={"row": ROW}, timeout=30)
        assert r.status_code == 200, r.text
        return str(r.json()["version"])

    def post(self, route: str, body: dict[str, Any]) -> httpx.Response:
        return HTTP.post(f"{self.url}/v1/models/weather/{route}", json=body, timeout=60)

    def job(self, job_id: str) -> dict[str, Any]:
        got: dict[str, Any] = HTTP.get(f"{self.url}/v1/jobs/{job_id}", timeout=30).json()
        return got

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.proc.communicate(timeout=60)
            assert self.proc.returncode == 0, stderr[-2000:]
            assert "Traceback" not in stderr, stderr[-2000:]
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def _leader_pid(config: Path) -> int | None:
    with Workspace.open(config) as ws:
        holder = ws.store.lease_holder(LEADER_LEASE)
    return None if holder is None else int(holder[0].rsplit(":", 2)[1])


def test_two_servers_on_one_postgresql_store(config: Path) -> None:
    a, b = Replica(config), Replica(config)
    try:
        wait_until(lambda: a.ready() and b.ready(), "both servers to answer /ready", SERVER_START)
        assert {a.served_version(), b.served_version()} == {"1.0.0"}

        # a deploy through a is served by b too, once b's reloader saw the new revision
        r = a.post("deploy", {"version": "1.1.0", "force": True})
        assert r.status_code == 200, r.text
        wait_until(
            lambda: a.served_version() == b.served_version() == "1.1.0",
            "both servers to serve 1.1.0 after the deploy through one",
            CATCH_UP,
        )

        # exactly one leads the scheduler; when it stops, the other takes over
        pids = {a.proc.pid: a, b.proc.pid: b}
        first = wait_until(lambda: _leader_pid(config), "a server to hold the leader lease")
        assert first in pids
        leader, other = pids[first], pids[next(p for p in pids if p != first)]

        # a training asked of both at once registers one version: the model's lease
        with Workspace.open(config) as ws:
            before = len(ws.store.list_versions("weather"))
        jobs: dict[str, str] = {}

        def ask(name: str, replica: Replica) -> None:
            r = replica.post("train", {"deploy": False})
            assert r.status_code == 202, r.text
            jobs[name] = r.json()["id"]

        threads = [threading.Thread(target=ask, args=x) for x in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(jobs) == 2, "a train request was refused"

        def finished() -> list[dict[str, Any]] | None:
            got = [r.job(jobs[n]) for n, r in (("a", a), ("b", b))]
            return got if all(j["state"] in ("succeeded", "failed") for j in got) else None

        done = wait_until(finished, "both train jobs to finish", CATCH_UP)
        states = sorted(j["state"] for j in done)
        assert states == ["failed", "succeeded"], done
        refused = next(j for j in done if j["state"] == "failed")
        assert refused["error"]["error"] == "lease_held", refused
        with Workspace.open(config) as ws:
            assert len(ws.store.list_versions("weather")) == before + 1

        leader.stop()  # releases the lease on its way out
        wait_until(
            lambda: _leader_pid(config) == other.proc.pid,
            "the remaining server to take over the leader lease",
            CATCH_UP,
        )
        assert other.served_version() == "1.1.0"
    finally:
        for replica in (a, b):
            replica.stop()
    assert _leader_pid(config) is None  # released by the last one too

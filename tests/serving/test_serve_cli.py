"""`retrainer serve` as a user runs it: the real CLI in its own process, on loopback.

It serves, runs the spec's schedules under the leader lease (unless ``--no-scheduler``), and on
SIGTERM flushes the prediction log, releases the lease and exits 0; ``--workers 2`` serves
from two processes. The spec's ``cors.allow_origins`` lets a listed browser origin call it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from servehelp import HTTP, answers, free_port, spec_dict

from retrainer.datasets import WEATHER_FEATURES
from retrainer.plumbing.workspace import Workspace
from retrainer.scheduler import LEADER_LEASE
from waits import SERVER_START, wait_until

ROW = dict.fromkeys(WEATHER_FEATURES, 0.1)
DASH = "https://dash.example.com"


@pytest.fixture
def config(trained: Path, tmp_path: Path) -> Path:
    shutil.copy(trained / "ws.db", tmp_path / "ws.db")
    shutil.copytree(trained / "artifacts", tmp_path / "artifacts")
    spec = spec_dict(tmp_path)
    spec["models"]["weather"]["schedule"] = {"maintain": "0 */6 * * *"}
    spec["cors"] = {"allow_origins": [DASH]}
    path = tmp_path / "retrainer.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _serve(config: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    exe = Path(sys.executable).with_name("retrainer")
    proc = subprocess.Popen(
        [str(exe), "-c", str(config), "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, f"exited early: {proc.communicate()[1][-2000:]}"
        return answers(url)

    wait_until(ready, f"`retrainer serve` to answer {url}/ready", SERVER_START)
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr[-2000:]
        assert "Traceback" not in stderr, stderr[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def _predict(url: str) -> str:
    r = HTTP.post(f"{url}/v1/models/weather/predict", json={"row": ROW}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["version"])


def test_serve_runs_the_schedules_and_shuts_down_cleanly(config: Path) -> None:
    with Workspace.open(config) as ws:
        before = ws.store.count_predictions("weather")
    proc, url = _serve(config)
    try:
        assert _predict(url) == "1.0.0"
        # cors.allow_origins: the dashboard's origin may call from a browser, no other may
        ask = {"Origin": DASH, "Access-Control-Request-Method": "POST"}
        ask["Access-Control-Request-Headers"] = "authorization,content-type"
        pre = HTTP.options(f"{url}/v1/models/weather/predict", headers=ask, timeout=10)
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == DASH
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        read = HTTP.get(f"{url}/v1/models", headers={"Origin": DASH}, timeout=10)
        assert read.headers["access-control-allow-origin"] == DASH
        other = HTTP.get(f"{url}/v1/models", headers={"Origin": "https://evil.test"}, timeout=10)
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        # a listed origin may call a mutating route too; another is refused (403) before it acts
        act = f"{url}/v1/models/weather/maintain"
        ok = HTTP.post(act, json={"dry_run": True}, headers={"Origin": DASH}, timeout=60)
        assert ok.status_code == 200, ok.text
        evil = HTTP.post(act, json={"dry_run": True}, headers={"Origin": "https://evil.test"})
        assert evil.status_code == 403 and "cors.allow_origins" in evil.json()["message"]
        with Workspace.open(config) as ws:
            holder = ws.store.lease_holder(LEADER_LEASE)
            assert holder is not None  # this server leads the scheduler
    finally:
        _stop(proc)
    with Workspace.open(config) as ws:
        assert ws.store.lease_holder(LEADER_LEASE) is None  # released on the way out
        assert ws.store.count_predictions("weather") == before + 1  # flushed at shutdown


def test_serve_without_the_scheduler_and_with_two_workers(config: Path) -> None:
    with Workspace.open(config) as ws:
        before = ws.store.count_predictions("weather")
    proc, url = _serve(config, "--no-scheduler", "--workers", "2")
    try:
        assert {_predict(url) for _ in range(6)} == {"1.0.0"}
        with Workspace.open(config) as ws:
            assert ws.store.lease_holder(LEADER_LEASE) is None
    finally:
        _stop(proc)
    with Workspace.open(config) as ws:
        assert ws.store.count_predictions("weather") == before + 6

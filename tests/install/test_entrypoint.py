"""The container's entrypoint (docker/entrypoint.sh), run directly with the environment
compose.yaml sets, against the real PostgreSQL: it writes the spec on first start, waits for
and migrates the store, passes commands through, and serves predictions (checked on /ready and
one prediction over loopback). The image itself is built and run by ``tests/install/container``
when a container runtime works (not in ``make test``: it needs a base image and minutes).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from waits import SERVER_START, SUBPROCESS, wait_until

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
TOKEN = "container-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, store: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        RETRAINER_CONFIG=str(tmp_path / "srv" / "retrainer.yaml"),  # absent: written by init
        RETRAINER_STORE=store,
        RETRAINER_ARTIFACTS=str(tmp_path / "srv" / "artifacts"),
        RETRAINER_API_TOKEN=TOKEN,
        RETRAINER_STORE_WAIT="600",
        **extra,
    )
    (tmp_path / "srv").mkdir(exist_ok=True)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS,
        cwd=Path(env["RETRAINER_CONFIG"]).parent,
    )


def _ready(url: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{url}/ready", timeout=10)
    except httpx.TransportError:
        return None
    body: dict[str, Any] = r.json()
    return body if r.status_code == 200 and body["models"].get("weather") == "ready" else None


@pytest.mark.postgres
def test_entrypoint_migrates_passes_commands_and_serves(
    pg_url: str, tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    port = _free_port()
    # compose binds 0.0.0.0; the test stays on loopback
    env = _env(tmp_path, pg_url, RETRAINER_HOST="127.0.0.1", RETRAINER_PORT=str(port))
    rows = tmp_path / "rows.csv"
    weather_df.iloc[:1200].to_csv(rows, index=False)

    first = _run(env, "ingest", "weather", str(rows))
    assert first.returncode == 0, first.stderr
    assert "writing the example" in first.stderr and "schema" in first.stderr
    assert Path(env["RETRAINER_CONFIG"]).is_file()
    assert "1200 inserted" in first.stdout
    # a champion to serve (in-process: a subprocess more would only cost start-up time)
    spec = load_spec(env["RETRAINER_CONFIG"], environ=env | {"RETRAINER_WEATHER__PARAMS": "{}"})
    with Workspace(spec) as ws:
        assert train(ws, "weather", deploy=True).deployed

    server = subprocess.Popen(
        ["sh", str(ENTRYPOINT)],
        env=env,
        cwd=tmp_path / "srv",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _ready(url) or server.poll() is not None,
            "the entrypoint's server to answer /ready with the weather model ready",
            SERVER_START,
        )
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        row = weather_df.iloc[1300][WEATHER_FEATURES].to_dict()
        r = httpx.post(f"{url}/v1/models/weather/predict", json={"row": row}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] == "1.0.0" and body["predictions"][0] in (0, 1)
        denied = httpx.post(f"{url}/v1/models/weather/rollback", json={}, timeout=60)
        assert denied.status_code == 401  # the token compose sets guards the mutating routes
    finally:
        server.send_signal(signal.SIGTERM)  # exec'd: the signal reaches retrainer serve
        out, _ = server.communicate(timeout=SUBPROCESS)
    assert server.returncode == 0, out


def test_entrypoint_store_errors(tmp_path: Path) -> None:
    """A bad store URL (exit 2) is not retried; an unreachable store is, until
    RETRAINER_STORE_WAIT, then exit 1 naming the store with its password hidden."""
    bad = _run(_env(tmp_path, "nonsense://"))
    assert bad.returncode == 2
    assert "backend 'nonsense'" in bad.stderr and "not retrying" in bad.stderr
    env = _env(tmp_path, "postgresql+psycopg://app:s3cret@127.0.0.1:1/prod")
    env["RETRAINER_STORE_WAIT"] = "1"
    down = _run(env)
    assert down.returncode == 1
    assert "did not become ready within 1s" in down.stderr
    assert "127.0.0.1:1" in down.stderr and "s3cret" not in down.stderr
    assert "writing the example" not in down.stderr  # the first run's spec is kept

"""The image: built from the Dockerfile, it migrates the store, trains and serves a prediction.

Opt-in (minutes: a base image, the wheel's dependencies from the package index): set
``RETRAINER_CONTAINER`` to the runtime command, e.g. ``docker`` or ``podman``. Also read:

- ``RETRAINER_CONTAINER_BASE``: the base image (default ``python:3.11-slim``); a machine that
  cannot pull it can import a Debian rootfs with python3 and python3-venv instead;
- ``RETRAINER_CONTAINER_FLAGS``: extra flags for ``build`` and ``run`` (e.g. ulimits a
  sandbox needs: ``--ulimit nofile=1024:1024 --ulimit nproc=4096:4096``);
- ``RETRAINER_CONTAINER_IMAGE``: test this image instead of building one.

The container shares the host network and uses the test's PostgreSQL database (what compose
does with its own ``db`` service); its state is a named volume, removed afterwards.

How it was run on the development machine (no registry for base images there; podman from
Debian, whose crun does not run on its cgroups, hence runc)::

    RETRAINER_CONTAINER="podman --runtime runc" \\
    RETRAINER_CONTAINER_BASE=localhost/debian-python:bookworm \\
    RETRAINER_CONTAINER_FLAGS="--ulimit nofile=1024:1024 --ulimit nproc=4096:4096" \\
    .venv/bin/python -m pytest tests/install/test_container.py
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from retrainer.datasets import WEATHER_FEATURES
from waits import SERVER_START, SUBPROCESS, wait_until

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = shlex.split(os.environ.get("RETRAINER_CONTAINER", ""))
BASE = os.environ.get("RETRAINER_CONTAINER_BASE", "python:3.11-slim")
FLAGS = shlex.split(os.environ.get("RETRAINER_CONTAINER_FLAGS", ""))
TOKEN = "container-test-token"
BUILD_TIMEOUT = 3600.0  # the wheel's dependencies from the index: 3-10 min when quiet

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not RUNTIME, reason="opt-in: set RETRAINER_CONTAINER=docker|podman"),
]


def _ctr(*args: str, timeout: float = SUBPROCESS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNTIME, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if os.environ.get("RETRAINER_CONTAINER_IMAGE"):  # an image built already
        yield os.environ["RETRAINER_CONTAINER_IMAGE"]
        return
    tag = f"localhost/retrainer-test:{uuid.uuid4().hex[:8]}"
    built = _ctr(
        "build", "--format", "docker", "--network", "host", *FLAGS,
        "--build-arg", f"BASE={BASE}", "-t", tag, ".",
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    yield tag
    _ctr("rmi", "-f", tag)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{url}/ready", timeout=10)
    except httpx.TransportError:
        return None
    body: dict[str, Any] = r.json()
    return body if r.status_code == 200 and body["models"].get("weather") == "ready" else None


def test_image_trains_and_serves_a_prediction(
    image: str, pg_url: str, tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    inspect = _ctr(
        "image", "inspect", image, "--format", "{{.Config.User}} {{.Config.Healthcheck}}"
    )
    assert inspect.returncode == 0, inspect.stderr
    assert inspect.stdout.startswith("retrainer ") and "/ready" in inspect.stdout

    data = tmp_path / "data"
    data.mkdir()
    weather_df.iloc[:1200].to_csv(data / "rows.csv", index=False)
    os.chmod(data, 0o755)
    os.chmod(data / "rows.csv", 0o644)
    volume, name, port = f"rt-{uuid.uuid4().hex[:8]}", f"rt-{uuid.uuid4().hex[:8]}", _free_port()
    common = [
        "--network", "host", *FLAGS, "-v", f"{volume}:/srv/retrainer",
        "-v", f"{data}:/data:ro", "-e", f"RETRAINER_STORE={pg_url}",
        "-e", f"RETRAINER_API_TOKEN={TOKEN}", "-e", f"RETRAINER_PORT={port}",
        "-e", 'RETRAINER_WEATHER__PARAMS={"n_estimators": 20}',
    ]  # fmt: skip
    try:
        for command in (("ingest", "weather", "/data/rows.csv"), ("train", "weather", "--deploy")):
            done = _ctr("run", "--rm", *common, image, *command)
            assert done.returncode == 0, done.stdout + done.stderr
        started = _ctr("run", "-d", "--name", name, *common, image)
        assert started.returncode == 0, started.stderr
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url), "the container to answer /ready", SERVER_START)
        row = weather_df.iloc[1300][WEATHER_FEATURES].to_dict()
        r = httpx.post(f"{url}/v1/models/weather/predict", json={"row": row}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == "1.0.0" and r.json()["predictions"][0] in (0, 1)
        whoami = _ctr("exec", name, "id", "-un")
        assert whoami.stdout.strip() == "retrainer"
        health = _ctr("healthcheck", "run", name) if "podman" in RUNTIME[0] else None
        assert health is None or health.returncode == 0, health.stdout + health.stderr
    finally:
        logs = _ctr("logs", name)
        _ctr("stop", "-t", "10", name)
        _ctr("rm", "-f", name)
        _ctr("volume", "rm", "-f", volume)
    assert "serving on http://0.0.0.0" in logs.stdout + logs.stderr

"""A trained workspace (built once per session) and a real uvicorn server on 127.0.0.1.

Two models: ``weather`` (binary classifier, numeric features, ``extra: forbid``, at most 50
rows a request) and ``sales`` (regression with a categorical feature, ``unknown_category:
reject``). Each test module copies the store and starts its own server on it.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import yaml
from servehelp import Served, free_port, sales_frame, spec_dict

from retrainer.alerts import Alert
from retrainer.core.spec import load_spec
from retrainer.datasets import weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app
from waits import SERVER_START, wait_until


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """weather 1.0.0 (champion) and 1.1.0 (archived); sales 1.0.0 (champion)."""
    folder = tmp_path_factory.mktemp("trained")
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(spec_dict(folder)))
    df = weather()
    with Workspace(load_spec(config, environ={})) as ws:
        ingest_frame(ws, "weather", df[(df.date >= "1949-01-01") & (df.date < "1951-01-01")])
        train(ws, "weather", deploy=True)
        ingest_frame(ws, "weather", df[(df.date >= "1951-01-01") & (df.date < "1952-01-01")])
        train(ws, "weather")
        ingest_frame(ws, "sales", sales_frame())
        train(ws, "sales", deploy=True)
    return folder


@pytest.fixture(scope="module")
def workspace_copy(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private store and a copy of the trained versions' artifacts."""
    folder = tmp_path_factory.mktemp("ws")
    shutil.copy(trained / "ws.db", folder / "ws.db")
    shutil.copytree(trained / "artifacts", folder / "artifacts")  # URIs are relative to it
    (folder / "retrainer.yaml").write_text(yaml.safe_dump(spec_dict(folder)))
    return folder / "retrainer.yaml"


@pytest.fixture(scope="module")
def server(workspace_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    alerts: list[Alert] = []
    spool = tmp_path_factory.mktemp("spool")
    app = create_app(workspace_copy, alert=alerts.append, token="s3cret", spool=spool,
                     flush_seconds=0.05)  # fmt: skip
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started or not thread.is_alive(), "the server to start", SERVER_START)
    assert srv.started, "the server thread ended without starting"
    yield Served(f"http://127.0.0.1:{port}", app, workspace_copy, alerts)
    srv.should_exit = True
    thread.join(SERVER_START)

"""While another writer holds the store's write lock, a REST deploy, rollback and feedback
answer 503 ``store_busy`` with Retry-After (after ``RETRAINER_BUSY_TIMEOUT``), not a 500 after
30 s; once the lock is released the same requests succeed."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import yaml
from servehelp import Served, free_port, spec_dict

from retrainer.serving.app import create_app

AUTH = {"authorization": "Bearer s3cret"}


@pytest.fixture(scope="module")
def busy_server(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("busy")
    shutil.copy(trained / "ws.db", folder / "ws.db")
    shutil.copytree(trained / "artifacts", folder / "artifacts")
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(spec_dict(folder)))
    before = os.environ.get("RETRAINER_BUSY_TIMEOUT")
    os.environ["RETRAINER_BUSY_TIMEOUT"] = "0.3"  # read when the server opens its store
    try:
        app = create_app(config, token="s3cret", spool=folder / "spool", flush_seconds=0.05)
    finally:
        if before is None:
            del os.environ["RETRAINER_BUSY_TIMEOUT"]
        else:
            os.environ["RETRAINER_BUSY_TIMEOUT"] = before
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # generous: startup takes a second on a quiet machine
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start in 60 s"
        time.sleep(0.02)
    yield Served(f"http://127.0.0.1:{port}", app, config)
    srv.should_exit = True
    thread.join(20)


def test_writes_meeting_a_held_lock_are_503_with_retry_after(busy_server: Served) -> None:
    lock = sqlite3.connect(str(busy_server.config.parent / "ws.db"), isolation_level=None)
    feedback = {"actuals": [{"entity_id": "x1", "actual": 1}]}
    with busy_server.client(headers=AUTH) as c:
        lock.execute("BEGIN IMMEDIATE")
        try:
            for path, body in (
                ("/v1/models/weather/deploy", {"version": "1.1.0"}),
                ("/v1/models/weather/feedback", feedback),
            ):
                r = c.post(path, json=body)
                assert r.status_code == 503, (path, r.text)
                assert r.json()["error"] == "store_busy", r.text
                assert "Store busy" in r.json()["message"] and "Retry" in r.json()["message"]
                assert int(r.headers["retry-after"]) >= 1
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        r = c.post("/v1/models/weather/deploy", json={"version": "1.1.0"})
        assert r.status_code == 200, r.text
        assert c.post("/v1/models/weather/rollback", json={}).status_code == 200

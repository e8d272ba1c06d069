"""A replayed store (the demo's weather model: versions, a canary challenger, decisions with
drift numbers, live metrics by month) served on 127.0.0.1 with an admin token, and one
headless Chromium for the module (``tests/serving/cdphelp.py``, the DevTools protocol)."""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from retrainer.apps.demo import demo_spec
from retrainer.apps.replay import ReplayConfig, replay
from retrainer.core.spec import parse_spec
from retrainer.datasets import weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.app import create_app
from waits import SERVER_START, wait_until

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # cdphelp, servehelp

from cdphelp import Chromium
from servehelp import Served, free_port, sales_frame

TOKEN = "s3cret-ui"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """weather: two years of training, 21 months replayed with maintain every four weeks;
    sales: one regression champion, nothing else."""
    folder = tmp_path_factory.mktemp("ui")
    raw = demo_spec(folder)
    raw["models"]["weather"]["params"] = {"n_estimators": 30, "num_threads": 1}
    raw["models"]["weather"]["schedule"] = {"maintain": "0 3 * * *"}
    raw["models"]["weather"]["drift"] = {"min_samples": 100}  # a 120-day window is measured
    raw["models"]["sales"] = {
        "task": "regression", "target": "y", "id_column": "id", "time_column": "ts",
        "features": {"numeric": ["x"], "categorical": ["plan"]},
        "family": "lightgbm", "params": {"n_estimators": 20, "num_threads": 1},
    }  # fmt: skip
    (folder / "retrainer.yaml").write_text(yaml.safe_dump(raw))
    data = weather()[lambda d: d["date"] < "1952-10-01"]
    with Workspace(parse_spec(raw, environ={})) as ws:
        replay(ws, "weather", data, ReplayConfig(initial_days=730, maintain_every_days=28))
        ingest_frame(ws, "sales", sales_frame(400))
        train(ws, "sales", deploy=True)
    return folder / "retrainer.yaml"


@pytest.fixture(scope="module")
def served(seeded: Path) -> Iterator[Served]:
    """The dashboard's server (no scheduler, no prediction log: nothing moves on its own)."""
    app = create_app(seeded, token=TOKEN, scheduler=False, log_predictions=False)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started or not thread.is_alive(), "the server to start", SERVER_START)
    assert srv.started, "the server thread ended without starting"
    yield Served(f"http://127.0.0.1:{port}", app, seeded)
    srv.should_exit = True
    thread.join(SERVER_START)


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None, (
        "chromium is not installed: `make test` installs it with `make browser` (Debian "
        "packages chromium, chromium-driver; needs apt-get as root), or install them by hand"
    )
    with Chromium(browser, tmp_path_factory.mktemp("profile")) as c:
        yield c

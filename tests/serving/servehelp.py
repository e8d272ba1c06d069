"""Helpers shared by the serving tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from retrainer.alerts import Alert
from retrainer.datasets import WEATHER_FEATURES
from waits import CATCH_UP, wait_until

PARAMS = {"n_estimators": 20, "num_threads": 1}
RELOAD = 0.2
# One client for the requests that need no session of their own. ``httpx.get()`` (or a client
# per request) builds a client and its TLS context each time, tens of milliseconds of CPU, which
# a poll loop pays hundreds of times while the server it waits for boots on the same two cores.
# No keep-alive: each request still has a connection of its own, as with ``httpx.get()``.
HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def sales_frame(n: int = 600) -> Any:
    """``n`` hourly rows of the ``sales`` regression (``y`` from ``x`` and the ``plan`` level)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    plan = rng.choice(["basic", "gold", "silver"], n)
    x = rng.normal(size=n)
    y = 2 * x + (plan == "gold") * 3 + rng.normal(0, 0.1, n)
    ts = pd.date_range("2024-01-01", periods=n, freq="h")
    return pd.DataFrame({"id": [f"s{i}" for i in range(n)], "ts": ts, "x": x, "plan": plan, "y": y})


def answers(url: str, path: str = "/ready") -> bool:
    """True once the server at ``url`` answers ``path`` with 200 (False while it refuses)."""
    try:
        return HTTP.get(f"{url}{path}", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    app: Any
    config: Path
    alerts: list[Alert] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.app.state.retrainer

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def wait_for(
        self, check: Callable[[], bool], timeout: float = CATCH_UP, what: str = "the condition"
    ) -> None:
        wait_until(check, what, timeout)


def spec_dict(folder: Path) -> dict[str, Any]:
    return {
        "store": f"sqlite:///{folder / 'ws.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {
            "weather": {
                "task": "classification", "target": "rain", "id_column": "day_id",
                "time_column": "date", "features": {"numeric": WEATHER_FEATURES},
                "family": "lightgbm", "params": PARAMS,
                "serving": {"max_batch_rows": 50, "extra": "forbid", "reload_seconds": RELOAD},
            },
            "sales": {
                "task": "regression", "target": "y", "id_column": "id", "time_column": "ts",
                "features": {"numeric": ["x"], "categorical": ["plan"]},
                "family": "lightgbm", "params": PARAMS,
                # constant leaves: tests/serving/test_compiled_http.py compiles it to ONNX
                "training": {"choice": {"leaves": ["constant"]}},
                "serving": {"unknown_category": "reject", "reload_seconds": RELOAD},
            },
        },
    }  # fmt: skip

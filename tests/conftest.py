"""Shared fixtures. Store tests run on SQLite and on PostgreSQL (a fresh database per test).

PostgreSQL is skipped only when no server answers and RETRAINER_REQUIRE_POSTGRES is unset;
CI sets it, so a missing server fails there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from retrainer.core.spec import Spec, parse_spec
from retrainer.datasets import weather
from retrainer.plumbing.workspace import Workspace
from weather_spec import weather_model
from webhooks import Webhook

PG_ADMIN = os.environ.get(
    "RETRAINER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


CALLER_SETTINGS_KEPT = ("RETRAINER_TEST_POSTGRES", "RETRAINER_REQUIRE_POSTGRES")

# The CLI's Rich consoles fix their width when they are created (at import) if COLUMNS is set
# then, and pytest-xdist's workers start with COLUMNS=80: dropped here, before any test module
# imports the CLI, so a console sizes itself when it prints and a test that reads CLI output
# sets the width it needs (COLUMNS=2000, messages never wrap).
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

# Under pytest-xdist (`make test` runs `-n logical`) each worker is a session of its own, so a
# session fixture is built once per worker that needs it. These folders' tests share costly
# ones (a Dask LocalCluster of worker processes, seeded stores, a trained workspace, a
# dashboard's replay) and each goes whole to one worker; every other module goes whole to
# one worker too, so its module fixtures (a server, a browser) are built once.
ONE_WORKER_FOLDERS = ("tests/dask/", "tests/report/", "tests/ui/", "tests/serving/")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Modules, and the folders of ONE_WORKER_FOLDERS, as xdist's units of work."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrFolder(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return next((f for f in ONE_WORKER_FOLDERS if module.startswith(f)), module)

    return ModuleOrFolder(config, log)


@pytest.fixture(autouse=True)
def _no_caller_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``RETRAINER_*`` setting of the shell that runs the tests leaks into them (a test sets
    the ones it needs); only where the PostgreSQL server is, and whether it is required."""
    for key in list(os.environ):
        if key.startswith("RETRAINER_") and key not in CALLER_SETTINGS_KEPT:
            monkeypatch.delenv(key)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on loopback (``webhook.url``), closed after the test."""
    receiver = Webhook()
    yield receiver
    receiver.close()


def _pg_available() -> bool:
    import psycopg

    try:
        with psycopg.connect(_libpq(PG_ADMIN), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_ok() -> bool:
    ok = _pg_available()
    if not ok and os.environ.get("RETRAINER_REQUIRE_POSTGRES"):
        pytest.fail(
            f"RETRAINER_REQUIRE_POSTGRES is set but PostgreSQL at {PG_ADMIN} does not answer"
        )
    return ok


@pytest.fixture
def pg_url(pg_ok: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable (set RETRAINER_REQUIRE_POSTGRES=1 to fail instead)")
    import psycopg

    name = f"rt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_ADMIN), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(_libpq(PG_ADMIN), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(scope="session")
def weather_df() -> pd.DataFrame:
    return weather()


@pytest.fixture
def make_workspace(tmp_path: Path) -> Iterator[Callable[..., Workspace]]:
    opened: list[Workspace] = []

    def make(store: str | None = None, **model_overrides: Any) -> Workspace:
        spec: Spec = parse_spec(
            {
                "store": store or f"sqlite:///{tmp_path / 'ws.db'}",
                "artifacts": str(tmp_path / "artifacts"),
                "models": {"weather": weather_model(**model_overrides)},
            },
            environ={},
        )
        ws = Workspace(spec)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a retrainer.yaml for the weather model into tmp_path and return its path."""

    def write(store: str | None = None, **model_overrides: Any) -> Path:
        path = tmp_path / "retrainer.yaml"
        data = {
            "store": store or "sqlite:///retrainer.db",
            "artifacts": "artifacts",
            "models": {"weather": weather_model(**model_overrides)},
        }
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def weather_csv(tmp_path: Path, weather_df: pd.DataFrame) -> Callable[[str, str], Path]:
    """Write the weather rows between two dates to a CSV and return its path."""

    def write(start: str = "1949-01-01", end: str = "1953-01-01") -> Path:
        part = weather_df[(weather_df["date"] >= start) & (weather_df["date"] < end)]
        path = tmp_path / f"weather_{start}_{end}.csv"
        part.to_csv(path, index=False)
        return path

    return write

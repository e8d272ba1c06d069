"""Another writer holds the store's write lock (a long ingest, ``BEGIN IMMEDIATE`` on SQLite,
a row lock on PostgreSQL): deploy, rollback and a small ingest through the real CLI wait
``RETRAINER_BUSY_TIMEOUT`` seconds, then end in exit 1 with "store busy ... retry", never a
traceback; and they succeed once the lock is released."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from clihelp import MODEL, Cli, text
from sqlalchemy.engine import make_url

from weather_spec import weather_model

PARAMS = {"n_estimators": 20, "num_threads": 1}


@contextmanager
def write_lock_held(url: str) -> Iterator[None]:
    """Hold what every writer of ``MODEL`` needs, from another connection."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(u.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg

    with psycopg.connect(u.set(drivername="postgresql").render_as_string(False)) as pg:
        pg.execute("SELECT model FROM roles WHERE model = %s FOR UPDATE", (MODEL,))
        yield
        pg.rollback()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def test_writers_meeting_a_held_lock_exit_1_with_store_busy(
    store_url: str, tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    cfg = tmp_path / "retrainer.yaml"
    body = {"store": store_url, "artifacts": "artifacts",
            "models": {MODEL: weather_model(params=PARAMS)}}  # fmt: skip
    cfg.write_text(yaml.safe_dump(body, sort_keys=False))
    cli = Cli(cfg)
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    cli("train", MODEL, "--deploy")
    cli("ingest", MODEL, weather_csv("1951-01-01", "1952-01-01"))
    cli("train", MODEL)
    cli("deploy", MODEL, "1.1.0")  # so that there is a previous champion to roll back to
    small = weather_csv("1952-01-01", "1952-02-01")
    busy = cli.with_env(RETRAINER_BUSY_TIMEOUT="0.2")
    with write_lock_held(store_url):
        for args in (("deploy", MODEL, "1.0.0"), ("rollback", MODEL), ("ingest", MODEL, small)):
            msg = text(busy(*args, code=1))
            assert "Store busy: another writer held the store's write lock" in msg, args
            assert "Retry when it is done" in msg and "RETRAINER_BUSY_TIMEOUT" in msg
        assert busy.json("deploy", MODEL, "1.0.0", code=1)["error"] == "store_busy"
    assert cli.json("status", MODEL)["champion"]["version"] == "1.1.0"  # nothing was written
    busy("rollback", MODEL)
    assert cli.json("status", MODEL)["champion"]["version"] == "1.0.0"
    assert busy.json("ingest", MODEL, small)["inserted"] == 31


def test_a_bad_busy_timeout_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "retrainer.yaml"
    cfg.write_text(yaml.safe_dump({"models": {MODEL: weather_model()}}))
    msg = text(Cli(cfg).with_env(RETRAINER_BUSY_TIMEOUT="soon")("status", code=2))
    assert "RETRAINER_BUSY_TIMEOUT='soon' is not a number of seconds" in msg

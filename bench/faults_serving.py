"""Store faults while serving: a real server on loopback answers predictions from client
threads while its store cannot write for a while, then can again; afterwards every
acknowledged prediction must be in the store (none lost, none set aside) and none failed.

Faults: SQLite, the database and its WAL made immutable (``chattr +i``: writes fail with
"disk I/O error"); PostgreSQL, ``REVOKE INSERT`` on the prediction log from the role the server
runs as, and every connection to the database killed (``pg_terminate_backend``) twice a
second. The long variant of tests/serving/test_log_faults.py.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import WORK

OUTAGE, QUICK_OUTAGE = 10.0, 2.0  # seconds the store cannot write
CLIENTS = 4
CATCH_UP = 300.0  # the log writer storing every acknowledged prediction: seconds when quiet
PG_ADMIN = os.environ.get(
    "RETRAINER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Outcome:
    backend: str
    fault: str
    outage: float
    sent: int
    acked: int
    failed: int
    stored: int
    parked: int
    catch_up: float  # seconds from the last request to every acknowledged row stored

    @property
    def lost(self) -> int:
        return self.acked - self.stored


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _spec(folder: Path, store: str) -> Path:
    import yaml

    from retrainer.datasets import WEATHER_FEATURES

    spec = {
        "store": store,
        "artifacts": str(folder / "artifacts"),
        "models": {
            "weather": {
                "task": "classification", "target": "rain", "id_column": "day_id",
                "time_column": "date", "features": {"numeric": WEATHER_FEATURES},
                "family": "lightgbm", "params": {"n_estimators": 20, "num_threads": 1},
            },
        },
    }  # fmt: skip
    path = folder / f"retrainer-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _train(config: Path) -> None:
    from retrainer.core.spec import load_spec
    from retrainer.datasets import weather
    from retrainer.lifecycle.ingest import ingest_frame
    from retrainer.lifecycle.train import train
    from retrainer.plumbing.workspace import Workspace

    df = weather()
    with Workspace(load_spec(config, environ={})) as ws:
        ingest_frame(ws, "weather", df[(df.date >= "1949-01-01") & (df.date < "1951-01-01")])
        train(ws, "weather", deploy=True)


@contextmanager
def _server(config: Path, spool: Path) -> Iterator[tuple[str, Any]]:
    import socket

    import uvicorn

    from retrainer.serving.app import create_app

    app = create_app(config, spool=spool, flush_seconds=0.05, scheduler=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    _wait(lambda: srv.started or not thread.is_alive(), "the server to start", CATCH_UP)
    try:
        yield f"http://127.0.0.1:{port}", app.state.retrainer.logq
    finally:
        srv.should_exit = True
        thread.join(CATCH_UP)


def _wait(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.05)


class Traffic:
    """``CLIENTS`` threads posting one-row predictions until stopped."""

    def __init__(self, url: str) -> None:
        from retrainer.datasets import WEATHER_FEATURES

        self.url, self.row = url, dict.fromkeys(WEATHER_FEATURES, 0.3)
        self.sent = self.acked = self.failed = 0
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,)) for k in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def _run(self, k: int) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=60) as c:
            i = 0
            while not self.stop.is_set():
                body = {"row": {**self.row, "day_id": f"c{k}-{i}"}}
                try:
                    ok = c.post("/v1/models/weather/predict", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with self.lock:
                    self.sent += 1
                    self.acked += ok
                    self.failed += not ok
                i += 1

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(CATCH_UP)


def _run_fault(
    backend: str,
    fault: str,
    config: Path,
    spool: Path,
    outage: float,
    stored: Callable[[], int],
    start: Callable[[], None],
    during: Callable[[], None],
    end: Callable[[], None],
) -> Outcome:
    before = stored()
    with _server(config, spool) as (url, logq):
        traffic = Traffic(url)
        _wait(lambda: traffic.acked >= 200, "predictions before the fault", CATCH_UP)
        start()
        until = time.monotonic() + outage
        try:
            while time.monotonic() < until:
                during()
                time.sleep(0.5)
        finally:
            end()
        time.sleep(2)  # traffic goes on after the store is back
        traffic.end()
        last = time.monotonic()
        w = logq.store

        def state() -> str:
            return (
                f"{stored() - before} of {traffic.acked} stored, {logq.spool.pending} spooled,"
                f" store up {logq.store_up}, writer alive {getattr(w, 'alive', '-')}"
            )

        try:
            _wait(lambda: stored() - before >= traffic.acked, "every acknowledged row", CATCH_UP)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {state()}") from None
        catch_up = time.monotonic() - last
        parked = logq.failed
    return Outcome(backend, fault, outage, traffic.sent, traffic.acked, traffic.failed,
                   stored() - before, parked, round(catch_up, 1))  # fmt: skip


def _sqlite(folder: Path, outage: float) -> list[Outcome]:
    from sqlalchemy import create_engine, text

    db = folder / "ws.db"
    config = _spec(folder, f"sqlite:///{db}")
    _train(config)
    engine = create_engine(f"sqlite:///{db}")

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM predictions")).scalar() or 0)

    def chattr(flag: str) -> None:
        files = [p for p in (db, db.with_name("ws.db-wal"), folder) if p.exists()]
        subprocess.run(["chattr", flag, *map(str, files)], check=True, capture_output=True)

    try:
        return [
            _run_fault(
                "sqlite",
                "database and WAL immutable",
                config,
                folder / "spool",
                outage,
                stored,
                lambda: chattr("+i"),
                lambda: None,
                lambda: chattr("-i"),
            )
        ]
    finally:
        engine.dispose()


def _postgresql(folder: Path, outage: float) -> list[Outcome]:
    import psycopg

    name, role = f"rt_logfault_{uuid.uuid4().hex[:8]}", f"rt_logfault_{uuid.uuid4().hex[:8]}"
    base = PG_ADMIN.rsplit("/", 1)[0]
    admin = _libpq(f"{base}/{name}")
    with psycopg.connect(_libpq(PG_ADMIN), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        _train(_spec(folder, f"{base}/{name}"))
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"CREATE ROLE {role} LOGIN")
            c.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            c.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
            c.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        config = _spec(folder, f"{base.replace('postgres@', f'{role}@')}/{name}")
        with psycopg.connect(admin, autocommit=True) as c:

            def stored() -> int:
                row = c.execute("SELECT count(*) FROM predictions").fetchone()
                return int(row[0]) if row else 0

            def revoke() -> None:
                c.execute(f"REVOKE INSERT ON predictions, prediction_inputs FROM {role}")

            def grant() -> None:
                c.execute(f"GRANT INSERT ON predictions, prediction_inputs TO {role}")

            def kill() -> None:
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )

            return [
                _run_fault("postgresql", "REVOKE INSERT on the log", config,
                           folder / "spool-revoke", outage, stored, revoke, lambda: None,
                           grant),
                _run_fault("postgresql", "connections killed twice a second", config,
                           folder / "spool-kill", outage, stored, kill, kill, lambda: None),
            ]  # fmt: skip
    finally:
        with psycopg.connect(_libpq(PG_ADMIN), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f"DROP ROLE IF EXISTS {role}")


def table(outcomes: list[Outcome]) -> str:
    head = (
        "| store | fault | outage s | requests | acknowledged | failed | stored | lost "
        "| set aside | catch-up s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {o.backend} | {o.fault} | {o.outage:g} | {o.sent} | {o.acked} | {o.failed} "
        f"| {o.stored} | {o.lost} | {o.parked} | {o.catch_up} |\n"
        for o in outcomes
    )


def run(quick: bool) -> str:
    outage = QUICK_OUTAGE if quick else OUTAGE
    WORK.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        (Path(tmp) / "sqlite").mkdir()
        (Path(tmp) / "pg").mkdir()
        outcomes += _sqlite(Path(tmp) / "sqlite", outage)
        outcomes += _postgresql(Path(tmp) / "pg", outage)
    bad = [o for o in outcomes if o.lost or o.failed or o.parked]
    verdict = (
        "**broken**: " + ", ".join(f"{o.backend}/{o.fault}" for o in bad)
        if bad
        else ("0 failed predictions, 0 lost or set-aside logs after recovery")
    )
    return (
        "## Store faults while serving\n\n"
        f"A server on loopback, {CLIENTS} client threads of one-row predictions; the store "
        f"cannot write for {outage:g} s, then can again (bench/faults_serving.py). "
        f"{verdict}.\n\n" + table(outcomes)
    )

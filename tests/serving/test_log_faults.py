"""No acknowledged prediction log is lost: a record the store cannot take is set aside alone
(its batch is written), and a store that cannot write for a while (permission revoked, its
connections killed, its files unwritable) gets every record once it can write again.

The writer is driven directly (``LogQueue`` over ``WriterProcess``, as the server uses them),
bypassing the HTTP edge that rejects such ids first: the writer must hold on its own. One test
goes through a real server on loopback.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from servehelp import Served
from sqlalchemy import func, select

from retrainer.datasets import WEATHER_FEATURES
from retrainer.serving.logqueue import LogItem, LogQueue
from retrainer.serving.writer import WriterProcess
from retrainer.store import SqlStore
from retrainer.store import schema as t
from retrainer.store.predlog import PredictionLogStore, request_record
from waits import CATCH_UP, wait_until

ROW = dict.fromkeys(WEATHER_FEATURES, 0.3)
SURROGATE, NUL = "a\ud800b", "a\x00b"  # SQLite and psycopg cannot encode the first; PG the 2nd


def _item(i: int, entity: str | None = None) -> LogItem:
    body = json.dumps({"rows": [{"x": float(i)}, {"x": 0.5}]})
    return LogItem("m", f"r{i}", "1.0.0", "champion", body, [entity or f"e{i}", None],
                   datetime(2024, 1, 1), [0, 1], [0.2, 0.9])  # fmt: skip


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _queue(url: str, tmp_path: Path, **kw: Any) -> tuple[LogQueue, WriterProcess]:
    writer = WriterProcess(url, PredictionLogStore(url, auto_migrate=False))
    assert writer.wait_ready(CATCH_UP), "the writer process did not connect"
    return LogQueue(writer, tmp_path / "spool", **kw), writer


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
def test_one_bad_record_never_sinks_its_batch(store_url: str, tmp_path: Path, bad: str) -> None:
    SqlStore(store_url).close()  # the schema
    q, writer = _queue(store_url, tmp_path)
    for i in range(50):
        q.put(_item(i, bad if i == 20 else None))
    q.flush()  # one batch of 50 requests
    store = PredictionLogStore(store_url, auto_migrate=False)
    stored = store.count_predictions("m")
    if bad == NUL and store.dialect == "sqlite":  # SQLite holds a NUL: nothing is bad
        assert (stored, q.failed) == (100, 0)
    else:  # only the one request is set aside, with why; its 49 neighbours are stored
        assert (stored, q.failed, q.spool.pending) == (98, 2, 0)
        (failed,) = (tmp_path / "spool").glob("failed-*.jsonl")
        (parked,) = [json.loads(line) for line in failed.read_text().splitlines()]
        assert parked["request_id"] == "r20" and parked["refused"]
    q.close()
    writer.close()
    store.close()


@pytest.fixture
def limited(pg_url: str) -> Iterator[tuple[str, str]]:
    """A fresh database with the schema and a role that may insert into the prediction log:
    (the role's URL, the role's name)."""
    SqlStore(pg_url).close()
    role = f"rt_logfault_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT INSERT ON predictions, prediction_inputs TO {role}")
    host = pg_url.split("@", 1)[1]
    yield f"postgresql+psycopg://{role}@{host}", role
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


class Traffic:
    """Puts requests into a started queue from a thread until stopped; counts the rows whose
    request was acknowledged (queued)."""

    def __init__(self, q: LogQueue) -> None:
        self.q, self.acked, self.stop = q, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            if self.q.put(_item(i)):
                self.acked += 2
            i += 1
            self.stop.wait(0.002)

    def end(self) -> int:
        self.stop.set()
        self.thread.join(CATCH_UP)
        return self.acked


def _stored(url: str) -> int:
    with psycopg.connect(_libpq(url)) as conn:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])  # type: ignore[index]


def test_insert_revoked_during_traffic_loses_nothing(
    limited: tuple[str, str], pg_url: str, tmp_path: Path
) -> None:
    url, role = limited
    q, writer = _queue(url, tmp_path, flush_seconds=0.02, retry_seconds=0.05)
    q.start()
    traffic = Traffic(q)
    wait_until(lambda: q.written >= 100, "rows written before the revoke")
    with psycopg.connect(_libpq(pg_url), autocommit=True) as admin:
        admin.execute(f"REVOKE INSERT ON predictions, prediction_inputs FROM {role}")
        wait_until(lambda: q.spool.pending >= 200, "rows spooled while INSERT is revoked")
        assert not q.store_up and q.failed == 0
        admin.execute(f"GRANT INSERT ON predictions, prediction_inputs TO {role}")
    wait_until(lambda: q.store_up and q.spool.pending == 0, "the spool replayed after GRANT")
    acked = traffic.end()
    _all_stored(q, pg_url, acked)
    q.close()
    writer.close()
    assert (_stored(pg_url), q.failed, q.dropped) == (acked, 0, 0)


def test_connections_killed_during_traffic_lose_nothing(pg_url: str, tmp_path: Path) -> None:
    SqlStore(pg_url).close()
    q, writer = _queue(pg_url, tmp_path, flush_seconds=0.02, retry_seconds=0.05)
    q.start()
    traffic = Traffic(q)
    name = pg_url.rsplit("/", 1)[1]
    kill = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s"
    with psycopg.connect(_libpq(pg_url.rsplit("/", 1)[0] + "/postgres"), autocommit=True) as c:
        for k in range(5):  # kill the writer's (and fallback's) connections, five times
            written = q.written
            wait_until(lambda w=written: q.written > w, f"rows written before kill {k + 1}")
            c.execute(kill, (name,))
    acked = traffic.end()
    _all_stored(q, pg_url, acked)
    q.close()
    writer.close()
    assert (_stored(pg_url), q.failed, q.dropped) == (acked, 0, 0)


def _all_stored(q: LogQueue, url: str, acked: int) -> None:
    """Wait until every acknowledged row is in the store and nothing is queued or spooled. An
    empty queue is not enough: a batch taken from it may still be on its way, and when its
    write fails it is spooled after the check (and replayed by the next retry, not by
    ``close``, which leaves a spool for the next start)."""
    wait_until(
        lambda: q.spool.pending == 0 and q.depth == 0 and _stored(url) == acked,
        f"all {acked} acknowledged rows stored, the queue and the spool drained",
    )


# chattr +i is the one way to make a store unwritable for root; it needs root, e2fsprogs and a
# file system with the immutable attribute (ext4, xfs; not tmpfs or overlayfs).
NO_CHATTR = (
    "chattr +i cannot make the store immutable here: it needs root and a file system with the "
    "immutable attribute (ext4, xfs). test_insert_revoked_during_traffic_loses_nothing covers "
    "an unwritable store on PostgreSQL"
)


def _chattr(flag: str, paths: list[Path]) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def test_sqlite_store_unwritable_during_serving_loses_nothing(server: Served) -> None:
    """The database and its WAL made immutable (writes fail: "disk I/O error") while a few
    hundred predictions are served over loopback; none fails, every one is stored after."""
    db = Path(server.config).parent / "ws.db"
    files = [p for p in (db, db.with_name("ws.db-wal"), db.parent) if p.exists()]
    q = server.state.logq
    q.retry_seconds, q.max_retry_seconds = 0.05, 0.5
    store = PredictionLogStore(f"sqlite:///{db}", auto_migrate=False)

    def stored() -> int:
        with store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.predictions)).scalar() or 0)

    before, failed_before, acked = stored(), q.failed, 0
    with server.client() as c:

        def predict(i: int) -> None:
            nonlocal acked
            r = c.post("/v1/models/weather/predict", json={"row": {**ROW, "day_id": f"f{i}"}})
            assert r.status_code == 200, r.text
            acked += 1

        for i in range(50):
            predict(i)
        try:
            _chattr("+i", files)
        except (OSError, subprocess.CalledProcessError):
            pytest.skip(NO_CHATTR)
        try:
            for i in range(50, 250):
                predict(i)
            wait_until(lambda: q.spool.pending > 0, "rows spooled while the store is unwritable")
            assert not q.store_up
        finally:
            _chattr("-i", files)
        for i in range(250, 300):
            predict(i)
        # the spool is emptied after its rows are committed: wait for both, not only the rows
        wait_until(
            lambda: stored() == before + acked and q.spool.pending == 0,
            f"all {acked} acknowledged predictions stored and the spool drained",
        )
    assert q.failed == failed_before
    store.close()


def test_a_sqlite_store_first_opened_while_unwritable_writes_once_it_can(tmp_path: Path) -> None:
    """SQLite opens a file it cannot write read-only, and such a connection stays read-only:
    after a failed write the log connects afresh."""
    db = tmp_path / "r.db"
    keeper = PredictionLogStore(f"sqlite:///{db}")  # another process's open store: a WAL file
    keeper.log_predictions([request_record("m", "r", "1", "champion", datetime(2024, 1, 1),
                                           '{"row": {}}', ["e", None], [0, 1])])  # fmt: skip
    files = [p for p in (db, db.with_name("r.db-wal"), tmp_path) if p.exists()]
    assert len(files) == 3
    store = PredictionLogStore(f"sqlite:///{db}", auto_migrate=False)
    q = LogQueue(store, tmp_path.parent / f"{tmp_path.name}-spool", retry_seconds=0.01)
    try:
        _chattr("+i", files)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(NO_CHATTR)
    try:
        q.put(_item(0))
        q.flush()  # its first connection opens now, read-only
        assert (q.spool.pending, q.store_up) == (2, False)
    finally:
        _chattr("-i", files)

    def replayed() -> bool:
        q.flush()
        return q.spool.pending == 0

    wait_until(replayed, "the spool replayed")
    assert store.count_predictions("m") == 4 and q.failed == 0
    q.close()
    store.close()
    keeper.close()


def test_rows_are_held_in_memory_while_neither_store_nor_spool_can_take_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    url = f"sqlite:///{tmp_path / 'r.db'}"
    SqlStore(url).close()
    store = PredictionLogStore(url, auto_migrate=False)
    q = LogQueue(store, tmp_path / "spool", retry_seconds=0.01, max_retry_seconds=0.01)
    real_write, real_append = store.log_predictions, q.spool.append
    outage = OperationalError("INSERT", {}, Exception("disk full"))

    def down(records: Any) -> int:
        raise outage

    def full(records: Any, *, failed: bool = False) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "log_predictions", down)
    monkeypatch.setattr(q.spool, "append", full)
    for i in range(5):
        q.put(_item(i))
        q.flush()  # neither takes them: held, not lost
    assert (q.depth, q.spool.pending, q.failed) == (10, 0, 0)
    monkeypatch.setattr(q.spool, "append", real_append)  # the disk has room again
    q.put(_item(5))
    q.flush()
    assert (q.depth, q.spool.pending) == (0, 12)
    monkeypatch.setattr(store, "log_predictions", real_write)  # and the store is back

    def drained() -> bool:
        q.flush()
        return q.spool.pending == 0

    wait_until(drained, "the spool replayed")
    assert store.count_predictions("m") == 12
    q.close()
    store.close()


def test_a_spooled_bad_record_is_set_aside_alone_and_a_replay_cut_short_sends_none_twice(
    tmp_path: Path,
) -> None:
    from sqlalchemy.exc import OperationalError

    class Store:
        """Refuses a batch holding a NUL id; goes down after ``up_for`` good writes."""

        def __init__(self) -> None:
            self.ids: list[str] = []
            self.up_for = 0

        def log_predictions(self, records: Sequence[dict[str, Any]]) -> int:
            ids = [r["entity_ids"][0] for r in records]
            if self.up_for <= 0:
                raise OperationalError("INSERT", {}, Exception("connection lost"))
            if any("\x00" in i for i in ids):
                raise ValueError("NUL in an entity id")
            self.up_for -= 1
            self.ids += ids
            return 2 * len(records)

    store = Store()
    q = LogQueue(store, tmp_path, retry_seconds=0.0, max_retry_seconds=0.0)
    for i in range(8):
        q.put(_item(i, NUL if i == 5 else None))
    q.flush()  # down: all spooled
    assert q.spool.pending == 16
    store.up_for = 2  # the replay: the chunk fails (the NUL), the first half (r0-r3) goes in,
    q.flush()  # then r4-r5 are split, r4 goes in, and the store goes down before r5
    assert store.ids == [f"e{i}" for i in range(5)] and q.failed == 0
    store.up_for = 100
    q.flush()
    assert sorted(store.ids) == sorted(f"e{i}" for i in range(8) if i != 5)  # each once
    assert (q.failed, q.spool.pending) == (2, 0)
    q.close()

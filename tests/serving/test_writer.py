"""The prediction-log writer process: batches go through the child once it is up, in-process
before that and when it dies, and the child's store errors come back as the same kinds."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from servehelp import Served

from retrainer.core.errors import InputError, StoreUnavailable
from retrainer.datasets import WEATHER_FEATURES
from retrainer.serving.app import _log_writer
from retrainer.serving.logqueue import LogItem, LogQueue
from retrainer.serving.writer import RefusedRecords, WriterProcess, in_memory
from retrainer.store import SqlStore
from retrainer.store.predlog import request_record
from waits import wait_until

ROW = dict.fromkeys(WEATHER_FEATURES, 0.3)


def _record(i: int, n: int = 2) -> dict[str, Any]:
    body = '{"rows": [' + ", ".join(['{"x": 1.5}'] * n) + "]}"
    return request_record(
        "m", f"r{i}", "1.0.0", "champion", datetime(2024, 1, 1), body, [None] * n, [0.5] * n
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, SqlStore]]:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = SqlStore(url)
    yield url, store
    store.close()


def test_batches_go_through_the_child_once_it_is_up(db: tuple[str, SqlStore]) -> None:
    url, store = db
    w = WriterProcess(url, store)
    assert w.log_predictions([_record(0)]) == 2  # starting: written in-process
    assert w.in_process == 1 and w.wait_ready(60)
    assert w.log_predictions([_record(i) for i in range(1, 4)]) == 6
    assert w.in_child == 1
    w.close()
    assert store.count_predictions("m") == 8 and not w.alive


def test_a_dead_child_loses_nothing_and_is_started_again(db: tuple[str, SqlStore]) -> None:
    url, store = db
    w = WriterProcess(url, store)
    w.start()
    assert w.wait_ready(60)
    os.kill(w._proc.pid, signal.SIGKILL)
    w._proc.join(10)
    assert w.log_predictions([_record(0)]) == 2  # written here; a new child is starting
    assert w.restarts == 1 and w.wait_ready(60)
    assert w.log_predictions([_record(1)]) == 2 and w.in_child == 1
    w.close()
    assert store.count_predictions("m") == 4


def test_the_childs_store_errors_come_back_as_the_same_kind(db: tuple[str, SqlStore]) -> None:
    url, store = db
    w = WriterProcess(url, store)
    w.start()
    assert w.wait_ready(60)
    bad = {**_record(0), "outputs": [0.5]}  # one output for two rows
    with pytest.raises(RefusedRecords, match="per-row lists differ"):
        w.log_predictions([bad])
    w.close()
    down = WriterProcess("postgresql+psycopg://postgres@127.0.0.1:9/none", store)
    down.start()
    assert down.wait_ready(60)  # the engine connects lazily: the first write fails
    with pytest.raises(StoreUnavailable, match="cannot write the batch now"):
        down.log_predictions([_record(1)])
    down.close()
    assert store.count_predictions("m") == 0


def test_the_queue_spools_what_the_child_cannot_write(
    db: tuple[str, SqlStore], tmp_path: Path
) -> None:
    _, store = db
    w = WriterProcess("postgresql+psycopg://postgres@127.0.0.1:9/none", store)
    w.start()
    assert w.wait_ready(60)
    q = LogQueue(w, tmp_path / "spool")
    body = '{"rows": [{"x": 1.5}]}'
    q.put(LogItem("m", "r0", "1.0.0", "champion", body, [None], datetime(2024, 1, 1), [0.5]))
    q.flush()
    assert q.spool.pending == 1 and not q.store_up
    q.close()
    w.close()


def test_where_the_log_is_written() -> None:
    assert in_memory("sqlite://") and in_memory("sqlite:///:memory:")
    assert not in_memory("sqlite:///r.db")
    assert _log_writer(None, "sqlite:///r.db") == "process"
    assert _log_writer("thread", "sqlite:///r.db") == "thread"
    assert _log_writer(None, "sqlite://") == "thread"  # another process cannot open it
    with pytest.raises(InputError, match="expected 'process' or 'thread'"):
        _log_writer("fork", "sqlite:///r.db")
    with pytest.raises(ValueError, match="in-memory"):
        WriterProcess("sqlite://", SqlStore("sqlite://"))


def test_the_server_logs_through_its_writer_process(server: Served) -> None:
    writer = server.state.logq.store  # this module's own server: its default sink
    assert isinstance(writer, WriterProcess) and writer.wait_ready(60)
    before = writer.in_child
    with server.client() as c:
        for i in range(3):
            r = c.post("/v1/models/weather/predict", json={"row": {**ROW, "day_id": f"w{i}"}})
            assert r.status_code == 200, r.text
        server.wait_for(lambda: writer.in_child > before)
        metrics = c.get("/metrics").text
    assert 'retrainer_prediction_log_writer_batches_total{writer="process"}' in metrics
    assert "retrainer_prediction_log_writer_restarts_total 0" in metrics


def test_a_child_that_cannot_start_is_not_spawned_again_and_again(
    db: tuple[str, SqlStore],
) -> None:
    _, store = db
    hour = 3600.0  # the first restart wait: far beyond what the writes below take, however slow
    w = WriterProcess("nosuchdb://nowhere", store, restart_after=(hour, 4 * hour))
    assert not w.wait_ready(60)  # the child cannot open it
    for i in range(5):  # within the back-off: written here, no new process each time
        assert w.log_predictions([_record(i)]) == 2
    assert w.restarts == 0 and w.in_process == 5 and not w.alive
    w._restart_at = 0.0  # the wait is over: the next batch starts a child, which fails again
    assert w.log_predictions([_record(5)]) == 2 and w.restarts == 1
    wait_until(lambda: not w.alive, "the second child to fail to open the store")
    assert w.log_predictions([_record(6)]) == 2  # noticed: it waits twice as long now
    assert w._backoff == 2 * hour and w.restarts == 1
    w.close()
    assert store.count_predictions("m") == 14

"""Prediction logging off the request path: the store goes away mid-run, predictions keep
succeeding, the spool grows, and after recovery every row is in the store exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from servehelp import Served
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from retrainer.core.errors import StoreUnavailable
from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES
from retrainer.plumbing.workspace import Workspace
from retrainer.serving.logqueue import LogItem, LogQueue
from retrainer.serving.spool import Spool
from retrainer.store import schema as t
from retrainer.store.predlog import input_rows, record_rows

ROW = dict.fromkeys(WEATHER_FEATURES, 0.3)


class Flaky:
    """A store whose prediction log can be switched off."""

    def __init__(self, store: Any, error: Exception) -> None:
        self.store, self.error, self.down, self.calls = store, error, False, 0

    def log_predictions(self, rows: Sequence[dict[str, Any]]) -> int:
        self.calls += 1
        if self.down:
            raise self.error
        n: int = self.store.log_predictions(rows)
        return n


@pytest.fixture(scope="module")
def ws(server: Served) -> Iterator[Workspace]:
    with Workspace(load_spec(server.config, environ={})) as w:
        yield w


def request_ids(ws: Workspace) -> list[str]:
    with ws.store.read() as conn:
        return [r[0] for r in conn.execute(select(t.predictions.c.request_id))]


def test_store_down_mid_run_spools_then_replays_everything(server: Served, ws: Workspace) -> None:
    q = server.state.logq
    flaky = Flaky(q.store, StoreUnavailable("Cannot connect to the store (test)."))
    q.store, q.retry_seconds = flaky, 0.3
    before = len(request_ids(ws))
    sent = []
    with server.client() as c:
        for _ in range(5):  # the store is up
            r = c.post("/v1/models/weather/predict", json={"rows": [ROW, ROW]})
            sent.append(r.json()["request_id"])
        server.wait_for(lambda: len(request_ids(ws)) == before + 10)
        flaky.down = True
        for i in range(30):
            r = c.post(
                "/v1/models/weather/predict", json={"rows": [{**ROW, "day_id": f"d{i}"}] * 2}
            )
            assert r.status_code == 200, r.text
            sent.append(r.json()["request_id"])
        server.wait_for(lambda: q.spool.pending == 60)
        metrics = c.get("/metrics").text
        assert "retrainer_prediction_log_spool_rows 60" in metrics
        assert "retrainer_store_up 0" in metrics
        spooled = [json.loads(line) for line in q.spool.path.read_text().splitlines()]
        assert len(spooled) == 30 and spooled[0]["arm"] == "champion"  # one per request
        assert [len(r["outputs"]) for r in spooled] == [2] * 30
        assert json.loads(spooled[0]["inputs"])["rows"][0]["day_id"] == "d0"
        assert len(request_ids(ws)) == before + 10
        # their actuals arrive while the predictions wait in the spool: stored unmatched
        actuals = [{"entity_id": f"d{i}", "actual": 1} for i in range(3)]
        auth = {"Authorization": "Bearer s3cret"}
        fb = c.post("/v1/models/weather/feedback", json={"actuals": actuals}, headers=auth)
        assert fb.status_code == 200 and fb.json()["unmatched"] == 3, fb.text
        flaky.down = False
        server.wait_for(lambda: q.spool.pending == 0 and len(request_ids(ws)) == before + 70)
        assert "retrainer_store_up 1" in c.get("/metrics").text
        assert c.get("/v1/models/weather/status").status_code == 200  # the monitor joins them
    stored_actuals = ws.store.actuals_frame("weather").set_index("entity_id")
    links = stored_actuals.loc[["d0", "d1", "d2"], "prediction_id"]
    assert len(links) == 3 and links.notna().all()
    stored = request_ids(ws)
    assert all(stored.count(rid) == 2 for rid in sent)  # every row once: none lost, none twice
    assert q.spool.path.stat().st_size == 0


class ListStore:
    """Keeps the records it is given; ``rows`` counts prediction rows."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail: Exception | None = None

    @property
    def rows(self) -> int:
        return sum(record_rows(r) for r in self.records)

    def log_predictions(self, records: Sequence[dict[str, Any]]) -> int:
        if self.fail is not None:
            raise self.fail
        self.records += records
        return sum(record_rows(r) for r in records)


def _item(i: int, n: int = 3) -> LogItem:
    body = json.dumps({"rows": [{"x": float(j), "other": "ignored"} for j in range(n)]})
    return LogItem("m", f"r{i}", "1.0.0", "champion", body, [f"e{j}" for j in range(n)],
                   datetime(2024, 1, 1), [0] * n, [0.5] * n)  # fmt: skip


def test_shutdown_flushes_and_a_restart_replays_the_spool(tmp_path: Path) -> None:
    store = ListStore()
    q = LogQueue(store, tmp_path, flush_seconds=10)  # the timer never fires: close must flush
    q.start()
    for i in range(4):
        q.put(_item(i))
    q.close()
    assert store.rows == 12 and input_rows(store.records[0]["inputs"])[0] == {
        "x": 0.0,
        "other": "ignored",
    }
    store.fail = OperationalError("INSERT", {}, Exception("database is locked"))
    q = LogQueue(store, tmp_path, flush_seconds=10)
    q.start()
    for i in range(3):
        q.put(_item(i))
    q.close()
    assert store.rows == 12 and q.spool.pending == 9  # down at shutdown: all spooled
    store.fail = None
    restarted = LogQueue(store, tmp_path)  # a new process finds the dead one's spool
    assert restarted.spool.pending == 9
    restarted.flush()
    assert store.rows == 21 and restarted.spool.pending == 0
    assert store.records[-1]["created_at"] == datetime(2024, 1, 1)
    assert not list(tmp_path.glob("predictions-*.jsonl"))


def test_a_replay_interrupted_midway_resumes_after_the_last_chunk(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([{"n": i} for i in range(5)])
    got: list[int] = []

    def write(rows: list[dict[str, Any]]) -> None:
        if got:
            raise StoreUnavailable("gone")
        got.extend(r["n"] for r in rows)

    with pytest.raises(StoreUnavailable):
        spool.replay(write, 2)
    assert got == [0, 1] and spool.pending == 3
    again: list[int] = []
    assert spool.replay(lambda rows: again.extend(r["n"] for r in rows), 2) == 3
    assert again == [2, 3, 4] and spool.pending == 0
    spool.close()


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    q = LogQueue(ListStore(), tmp_path, max_rows=5)
    assert q.put(_item(0)) and not q.put(_item(1))
    assert (q.depth, q.dropped) == (3, 3)
    q.close()


def test_rows_the_store_refuses_are_kept_aside(tmp_path: Path) -> None:
    from sqlalchemy.exc import DataError

    store = ListStore()
    store.fail = DataError("INSERT", {}, Exception("value too long"))
    q = LogQueue(store, tmp_path)
    q.put(_item(0))
    q.flush()
    assert q.failed == 3 and q.spool.pending == 0
    (failed,) = tmp_path.glob("failed-*.jsonl")
    assert len(failed.read_text().splitlines()) == 1  # the one request's record
    q.close()


def test_a_malformed_record_is_kept_aside_not_lost(tmp_path: Path) -> None:
    class Strict(ListStore):
        def log_predictions(self, records: Sequence[dict[str, Any]]) -> int:
            raise ValueError("prediction record r0: per-row lists differ")

    q = LogQueue(Strict(), tmp_path)
    q.put(_item(0))
    q.flush()
    assert q.failed == 3 and q.spool.pending == 0
    (failed,) = tmp_path.glob("failed-*.jsonl")
    assert json.loads(failed.read_text())["request_id"] == "r0"
    q.close()


def test_a_bad_spooled_chunk_or_damaged_line_is_set_aside_and_the_replay_goes_on(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    spool.append([{"n": 0}, {"n": 1, "bad": True}, {"n": 2}])
    with open(spool.path, "ab") as fh:
        fh.write(b"{not json\n")
    spool.append([{"n": 3}])
    got: list[int] = []

    def write(rows: list[dict[str, Any]]) -> None:
        if any(r.get("bad") for r in rows):
            raise ValueError("malformed record")
        got.extend(r["n"] for r in rows)

    assert spool.replay(write, 1, lambda exc: isinstance(exc, ValueError)) == 3
    assert got == [0, 2, 3] and spool.pending == 0
    (failed,) = tmp_path.glob("failed-*.jsonl")
    assert failed.read_text().splitlines() == ['{"n": 1, "bad": true}', "{not json"]

    def down(rows: list[dict[str, Any]]) -> None:
        raise StoreUnavailable("down")

    spool.append([{"n": 4}])
    with pytest.raises(StoreUnavailable):  # anything else still stops the replay
        spool.replay(down, 1, lambda exc: isinstance(exc, ValueError))
    assert spool.pending == 1
    spool.close()

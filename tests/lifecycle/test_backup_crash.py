"""SIGKILL a `retrainer restore` at several points: the target store is either as it was
(empty) or completely restored, never half; a killed restore is simply run again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from backup_craft import (
    KEY,
    MODEL,
    config,
    consistent,
    make_source,
    members_of,
    rows_of,
    set_rows,
    store_rows,
    workspace,
    write,
)

from retrainer.apps.backup import restore
from retrainer.families import load_model
from waits import SUBPROCESS

pytestmark = pytest.mark.slow

PREDICTIONS = 40_000  # enough rows that the write transaction is long enough to be hit


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source backup with many more logged predictions (re-signed)."""
    folder = tmp_path_factory.mktemp("crash")
    members = members_of(make_source(folder))
    logged = rows_of(members, "predictions")
    more = [
        {**logged[i % len(logged)], "id": i + 1, "request_id": f"r{i}"} for i in range(PREDICTIONS)
    ]
    set_rows(members, "predictions", more)
    return write(folder / "big.tar.gz", consistent(members, key=KEY))


def _wal_grew(folder: Path, start: int) -> bool:
    wal = folder / "store.db-wal"
    return wal.exists() and wal.stat().st_size > start


def _artifact_written(folder: Path) -> bool:
    return any((folder / "artifacts").rglob("*.rtm"))


def _kill_when(proc: subprocess.Popen[bytes], seen: Callable[[], bool], what: str) -> None:
    """Poll closely (the kill should land right after ``what`` starts) until it is seen or the
    restore ends."""
    deadline = time.monotonic() + SUBPROCESS
    while proc.poll() is None and not seen():
        assert time.monotonic() < deadline, f"waited {SUBPROCESS:g} s for {what}"
        time.sleep(0.002)


def _state(folder: Path, store: str | None) -> str:
    with workspace(folder, key=KEY, store=store) as ws:
        rows = store_rows(ws)
        if rows["models"] == rows["versions"] == rows["predictions"] == 0:
            return "empty"
        assert rows["predictions"] == PREDICTIONS and rows["versions"] == 2, rows
        champion = ws.store.get_version(MODEL, str(ws.store.roles(MODEL).champion))
        load_model(ws.artifact_bytes(champion))
        return "complete"


# "writing rows" is seen by the WAL file growing, so it is a SQLite point only.
POINTS = [("sqlite", "writing rows"), *((b, p) for b in ("sqlite", "postgresql")
                                        for p in ("writing artifacts", "random"))]  # fmt: skip


@pytest.mark.parametrize(("store_url", "point"), POINTS, indirect=["store_url"])
def test_sigkill_during_restore(tmp_path: Path, archive: Path, store_url: str, point: str) -> None:
    sqlite = store_url.startswith("sqlite")
    folder = tmp_path / "target"
    store = None if sqlite else store_url
    cfg = config(folder, store)
    with workspace(folder, key=KEY, store=store):
        pass  # migrated before the kill, so the WAL grows only with the restore's rows
    start = (folder / "store.db-wal").stat().st_size if (folder / "store.db-wal").exists() else 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env["RETRAINER_SIGNING_KEY"] = KEY.decode()
    proc = subprocess.Popen(
        [sys.executable, "-m", "retrainer.cli.main", "-c", str(cfg), "restore", str(archive)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if point == "random":
            proc.wait(timeout=random.uniform(0.5, 6))
        else:
            _kill_when(proc, lambda: _wal_grew(folder, start) if point == "writing rows" else
                       _artifact_written(folder), point)  # fmt: skip
    except subprocess.TimeoutExpired:
        pass  # the random point: the delay ran out while the restore runs
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=SUBPROCESS)
    state = _state(folder, store)
    print(f"{point}: killed with the store {state}")
    if state == "empty":  # as it was: the same restore runs again, over any orphan artifact
        with workspace(folder, key=KEY, store=store) as ws:
            assert restore(ws, archive).rows["predictions"] == PREDICTIONS
        assert _state(folder, store) == "complete"

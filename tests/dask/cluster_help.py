"""Waiting for the shared LocalCluster of tests/dask to be whole again after a test killed
one of its workers (its own module: ``from conftest import`` finds whichever folder's
conftest was loaded last)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from retrainer.families.dask_faults import ENV

distributed = pytest.importorskip("distributed")

WORKERS = 2
READY_SECONDS = 300  # a worker process restarted by its nanny on a busy 2-core machine (took
# over 120 s once while a benchmark loaded both cores)


def whole(address: str) -> None:
    """Wait until the cluster at ``address`` has WORKERS workers again (after a test killed
    one), or fail saying what it waited for."""
    with distributed.Client(address, timeout=30, set_as_default=False) as client:
        deadline = time.monotonic() + READY_SECONDS
        while len(client.scheduler_info()["workers"]) < WORKERS:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the LocalCluster at {address} did not get back to {WORKERS} workers "
                    f"within {READY_SECONDS} s after a worker was killed"
                )
            client.wait_for_workers(WORKERS, timeout=READY_SECONDS)


def lose_one_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One token for the ``dask_faults`` hook, in this process's environment: the first task
    of a check (or round 2 of a fit) to take it ends its worker. Returns the tokens' folder
    (``used-0`` once taken); the test waits for the cluster to be :func:`whole` after."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "token-0").touch()
    monkeypatch.setenv(ENV, str(tokens))
    return tokens

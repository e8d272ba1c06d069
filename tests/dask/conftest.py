"""One LocalCluster of 2 worker processes for every module of tests/dask (starting one costs
seconds; LightGBM's Dask interface opens one network per process, so the workers cannot be
threads of the test process). A test that kills a worker waits for the cluster to be whole
again before it ends (``cluster_help.whole``), so the next test finds 2 workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_help import WORKERS, distributed


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def scheduler(cluster: Any) -> str:
    return str(cluster.scheduler_address)

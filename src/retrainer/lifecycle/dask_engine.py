"""The Dask engine (``training.engine: dask``): a cluster for the length of one fit.

:func:`engine` connects to ``training.scheduler`` (or starts a LocalCluster when none is
named) and, while it is open, LightGBM and XGBoost fits train on it
(:mod:`retrainer.families.dask_boosting`). A scheduler that cannot be reached, or a cluster
that fails during the fit (a worker lost), raises :class:`DistributedError` naming the
scheduler: nothing is registered and no fallback family trains in its place.

>>> from retrainer.core.spec_sections import Training
>>> with engine(Training(), "randomforest") as client:
...     client is None
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..core.cpus import available_cpus
from ..core.errors import ConfigError, DistributedError, RetrainerError
from ..core.extras import missing_library
from ..core.spec_sections import DASK_FAMILIES, Training, dask_family_message
from ..families import dask_boosting

# How long a connection to the scheduler may take before the training fails.
CONNECT_SECONDS = 10


@contextlib.contextmanager
def engine(training: Training, family: str) -> Iterator[Any]:
    """The ``distributed.Client`` fits of ``family`` run on inside the block; None with
    engine: local. ConfigError for a family without a Dask interface."""
    if training.engine != "dask":
        yield None
        return
    if family not in DASK_FAMILIES:
        raise ConfigError(dask_family_message(family))
    where = training.scheduler or "a LocalCluster"
    with _client(training) as client, dask_boosting.using(client):
        try:
            yield client
        except RetrainerError:
            raise
        except Exception as exc:
            raise DistributedError(
                f"Training {family} on the Dask engine ({where}) failed: "
                f"{type(exc).__name__}: {exc}. Nothing was registered; check the cluster's "
                "workers (a worker lost mid-training fails the fit) and train again"
            ) from exc


@contextlib.contextmanager
def _client(training: Training) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise missing_library("training.engine: dask", exc) from None
    address = training.scheduler
    if address is None:
        threads = min(training.threads or 1, available_cpus())
        cluster = LocalCluster(  # one process per worker: LightGBM's network is per process
            n_workers=max(1, available_cpus() // threads),
            threads_per_worker=threads,
            processes=True,
            dashboard_address=":0",
        )
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DistributedError(
            f"The Dask scheduler {address!r} (training.scheduler) cannot be reached within "
            f"{CONNECT_SECONDS} s: {exc}. Nothing was trained; start the scheduler "
            "(`dask scheduler`) or fix the address"
        ) from None
    try:
        yield client
    finally:
        client.close()

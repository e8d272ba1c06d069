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
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..core.cpus import available_cpus
from ..core.errors import ConfigError, DistributedError, RetrainerError
from ..core.extras import missing_library
from ..core.spec_sections import DASK_FAMILIES, Training, dask_family_message
from ..families import dask_boosting
from . import dask_watch
from .dask_watch import gone, lock_ids, release_locks, watch

# How long a connection to the scheduler may take before the training fails.
CONNECT_SECONDS = 10
# A fit the cluster failed (a worker lost) is tried once more, then fails.
ATTEMPTS = 2
# How long the retry waits for the cluster to have as many workers as the first attempt had.
RECOVER_SECONDS = 60

T = TypeVar("T")
log = logging.getLogger(__name__)


def attempt(training: Training, family: str, work: Callable[[Any], T]) -> T:
    """``work(client)`` inside :func:`engine`; when the cluster fails during it (a worker
    lost), once more on a fresh connection (a LocalCluster started anew), then
    DistributedError naming both failures. A scheduler that cannot be reached, a cluster
    with no worker and ``training.deadline_minutes`` passed (over both tries) are not
    retried. With engine: local, ``work(None)`` once.

    >>> from retrainer.core.spec_sections import Training
    >>> attempt(Training(), "randomforest", lambda client: client)
    """
    minutes = training.deadline_minutes
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    first: DistributedError | None = None
    for n in range(1, ATTEMPTS + 1):
        try:
            with engine(training, family, deadline) as client:
                if first is not None:  # the lost worker's replacement, when one comes
                    _recover(client, int(first.details.get("workers", 1)), deadline)
                return work(client)
        except DistributedError as exc:
            if exc.details.get("stage") != "fit":
                raise
            if n == ATTEMPTS:
                assert first is not None
                causes = [first.details["cause"], exc.details["cause"]]
                raise DistributedError(
                    f"Training {family} on the Dask engine ({where(training)}) failed twice: "
                    f"{causes[0]}; then, on a fresh connection, {causes[1]}. Nothing was "
                    "registered; check the cluster's workers and train again",
                    stage="fit",
                    attempts=ATTEMPTS,
                    causes=causes,
                ) from exc
            first = exc
            log.warning("%s; trying once more on a fresh connection", exc.message)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def engine(training: Training, family: str, deadline: float | None = None) -> Iterator[Any]:
    """The ``distributed.Client`` fits of ``family`` run on inside the block; None with
    engine: local. ConfigError for a family without a Dask interface. Past ``deadline``
    (``time.monotonic()``) the fits are abandoned (see :func:`dask_watch.watch`)."""
    if training.engine != "dask":
        yield None
        return
    if family not in DASK_FAMILIES:
        raise ConfigError(dask_family_message(family))
    with (
        connect(training, "Nothing was trained") as client,
        dask_boosting.using(client),
        watch(client, deadline) as watched,
    ):
        before = set(client.nthreads())
        workers = len(before)
        locks = lock_ids(client) if training.scheduler else frozenset()
        try:
            yield client
        except RetrainerError:
            raise
        except Exception as exc:
            lost = watched.lost
            if not lost and watched.ended is None:  # a lost worker's peers may fail first
                lost.extend(gone(client, before))
            if training.scheduler:  # a standing cluster: free what the abandoned fit held
                # over every worker it may have used: one restarted after a loss can join
                # after `before` was read (during the retry's wait for it)
                release_locks(training.scheduler, locks, before | watched.seen)
            if watched.ended in ("deadline", "no_workers"):
                raise _ended(training, family, watched.ended) from exc
            cause = f"worker {', '.join(lost)} lost" if lost else f"{type(exc).__name__}: {exc}"
            raise DistributedError(
                f"Training {family} on the Dask engine ({where(training)}) failed: {cause}. "
                "Nothing was registered; check the cluster's workers and train again",
                stage="fit",
                cause=cause,
                lost_workers=list(lost),
                workers=workers,
            ) from exc


def _ended(training: Training, family: str, why: str) -> DistributedError:
    """The error of fits the watch abandoned for good: the deadline passed, or no worker."""
    head = f"Training {family} on the Dask engine ({where(training)})"
    if why == "deadline":
        minutes = training.deadline_minutes
        return DistributedError(
            f"{head} did not finish within training.deadline_minutes ({minutes:g}): its fits "
            "were abandoned. Nothing was registered; give the cluster more workers or raise "
            "training.deadline_minutes, and train again",
            stage="deadline",
            cause=f"deadline of {minutes:g} min passed",
        )
    return DistributedError(
        f"{head} had no worker for {dask_watch.NO_WORKERS_SECONDS:.0f} s: its fits were "
        "abandoned. Nothing was registered; start workers for the scheduler (`dask worker "
        "ADDRESS`) and train again",
        stage="no_workers",
        cause=f"no worker for {dask_watch.NO_WORKERS_SECONDS:.0f} s",
    )


def _recover(client: Any, workers: int, deadline: float | None = None) -> None:
    """Wait up to RECOVER_SECONDS (and not past ``deadline``) for the cluster to have
    ``workers`` workers again (a restarted worker joining in the middle of the retry's fit
    would be left out of it)."""
    if client is None:
        return
    wait: float = RECOVER_SECONDS
    if deadline is not None:
        wait = max(0.0, min(wait, deadline - time.monotonic()))
    with contextlib.suppress(Exception):
        client.wait_for_workers(workers, timeout=wait)


def where(training: Training) -> str:
    """The cluster a training or check runs on, for messages."""
    return training.scheduler or "a LocalCluster"


@contextlib.contextmanager
def connect(training: Training, nothing_done: str) -> Iterator[Any]:
    """A client of ``training.scheduler``, or of a LocalCluster started for the block (one
    process per worker: LightGBM's network is per process). A scheduler that cannot be
    reached within CONNECT_SECONDS is a DistributedError naming it, then ``nothing_done``
    (what was left undone, e.g. "Nothing was trained")."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise missing_library("training.engine: dask", exc) from None
    address = training.scheduler
    if address is None:
        threads = min(training.threads or 1, available_cpus())
        with (
            LocalCluster(
                n_workers=max(1, available_cpus() // threads),
                threads_per_worker=threads,
                processes=True,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DistributedError(
            f"The Dask scheduler {address!r} (training.scheduler) cannot be reached within "
            f"{CONNECT_SECONDS} s: {exc}. {nothing_done}; start the scheduler "
            "(`dask scheduler`) or fix the address",
            stage="connect",
        ) from None
    with contextlib.closing(client):
        yield client

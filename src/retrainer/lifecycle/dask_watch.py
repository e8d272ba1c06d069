"""Watching the workers while a fit runs on the Dask engine.

LightGBM and XGBoost train on a network of workers fixed when their fit starts: a worker
lost in the middle (its process or machine gone) cannot be replaced within that fit, and a
fit task pinned to the lost worker waits for it for ever (no other worker may run it). So
while a fit runs, :func:`watch` asks the scheduler every :data:`EVERY_SECONDS` seconds which
workers it has; when one seen during the fit is gone, it closes the training's client,
naming the worker: the fit fails at once, and the engine tries it once more
(:func:`retrainer.lifecycle.dask_engine.attempt`). It also ends the fit, for good, when the
cluster has had no worker for :data:`NO_WORKERS_SECONDS` (its tasks would wait for ever) and
when the training's deadline (``training.deadline_minutes``) has passed.

>>> with watch(None) as seen:
...     seen.lost, seen.ended
([], None)
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

EVERY_SECONDS = 1.0
# How long a failed fit waits for the scheduler to notice a worker gone (a peer of a lost
# worker can fail its fit, XGBoost's collective on the closed socket, before it does).
SETTLE_SECONDS = 5.0
# How long a fit waits on a cluster with no worker at all (an adaptive cluster scaling up
# from none starts its first worker well within it) before it is abandoned.
NO_WORKERS_SECONDS = 300.0
log = logging.getLogger(__name__)


@dataclass
class Watched:
    """What the watch saw during a fit: the workers lost (their addresses), and why it
    abandoned the fit: ``lost`` (a worker; the engine retries), ``deadline`` (the training's
    deadline passed) or ``no_workers`` (none for NO_WORKERS_SECONDS); None while it has not."""

    lost: list[str] = field(default_factory=list)
    ended: Literal["lost", "deadline", "no_workers"] | None = None
    seen: set[str] = field(default_factory=set)  # every worker the cluster had during the fit


def _workers(client: Any) -> set[str]:
    return set(client.nthreads())  # asks the scheduler (its cached identity may lag)


@contextlib.contextmanager
def watch(client: Any, deadline: float | None = None) -> Iterator[Watched]:
    """Inside the block, a worker lost, no worker for NO_WORKERS_SECONDS, or the
    ``time.monotonic()`` ``deadline`` passed closes ``client`` (its fit fails); the
    :class:`Watched` yielded says which, and names the lost workers."""
    watched = Watched()
    if client is None:
        yield watched
        return
    seen = watched.seen
    seen.update(_workers(client))  # a worker may join during the fit (a restarted one)
    stop = threading.Event()

    def end(why: Literal["lost", "deadline", "no_workers"], message: str) -> None:
        watched.ended = why
        _abandon(client, message)

    def run() -> None:
        empty_since = None if seen else time.monotonic()
        while not stop.wait(EVERY_SECONDS):
            now_at = time.monotonic()
            if deadline is not None and now_at >= deadline:
                return end("deadline", "the training's deadline passed")
            try:
                now = _workers(client)
            except Exception:  # the scheduler is gone too: the fit fails by itself
                return
            gone = seen - now
            seen.update(now)
            if gone:
                watched.lost.extend(sorted(gone))
                lost = ", ".join(watched.lost)
                return end("lost", f"worker {lost} was lost during the fit")
            if now:
                empty_since = None
            elif empty_since is None:
                empty_since = now_at
            elif now_at - empty_since >= NO_WORKERS_SECONDS:
                return end("no_workers", f"no worker for {NO_WORKERS_SECONDS:.0f} s")

    thread = threading.Thread(target=run, name="retrainer-dask-watch", daemon=True)
    thread.start()
    try:
        yield watched
    finally:
        stop.set()
        thread.join(timeout=10 * EVERY_SECONDS)


def _abandon(client: Any, why: str) -> None:
    """Close the training's client: every wait on it (the fit's) ends with an error, and the
    scheduler releases what it held for it (cancelling its keys one by one can trip the
    scheduler's bookkeeping of keys other tasks still depend on)."""
    log.warning("%s; abandoning the fit", why)
    with contextlib.suppress(Exception):
        client.close(timeout=10)


def gone(client: Any, before: set[str], within: float = SETTLE_SECONDS) -> list[str]:
    """The workers of ``before`` the scheduler no longer has, waiting up to ``within``
    seconds for one to be missing (asked every tenth of a second); [] when none is, or when
    the scheduler cannot be asked.

    >>> gone(None, {"tcp://10.0.0.1:4000"}, within=0)
    []
    """
    deadline = time.monotonic() + within
    while True:
        try:
            missing = sorted(before - _workers(client))
        except Exception:  # the client closed (by the watch) or the scheduler gone
            return []
        if missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.1)


def lock_ids(client: Any) -> frozenset[str]:
    """The ids of the scheduler's multi-locks held or asked for now (XGBoost's fit holds
    one over its workers); empty when the scheduler cannot be asked."""
    try:
        return frozenset(client.run_on_scheduler(_scheduler_lock_ids))
    except Exception:
        return frozenset()


def _scheduler_lock_ids(dask_scheduler: Any = None) -> list[str]:
    ext = dask_scheduler.extensions.get("multi_locks")
    return [] if ext is None else [str(i) for i in ext.requests]


def release_locks(
    address: str, before: frozenset[str], workers: set[str], timeout: float = 5
) -> int:
    """Release, on the scheduler at ``address``, the multi-locks an abandoned fit left held:
    those taken since ``before`` (:func:`lock_ids` at the fit's start) that hold every
    lock they asked for, all of them on the fit's ``workers``. XGBoost's Dask fit holds one
    over its workers until it returns; a fit abandoned when a worker was lost (its client
    closed by :func:`watch` before XGBoost released it) would otherwise keep the surviving
    workers locked for as long as the scheduler runs, and every later XGBoost fit on them
    would wait for ever. Returns how many were released; 0 when the scheduler cannot be
    reached within ``timeout`` seconds (a LocalCluster ends with the training and takes its
    locks with it).

    >>> release_locks("tcp://127.0.0.1:9", frozenset(), set(), timeout=0.5)
    0
    """
    try:
        from distributed import Client

        with Client(address, timeout=timeout, set_as_default=False) as client:
            released: int = client.run_on_scheduler(_release_stale, sorted(before), sorted(workers))
    except Exception as exc:
        log.warning("could not release the abandoned fit's locks on %s: %s", address, exc)
        return 0
    if released:
        log.warning("released %d lock(s) an abandoned fit held on %s", released, address)
    return released


def _release_stale(before: list[str], workers: list[str], dask_scheduler: Any = None) -> int:
    ext = dask_scheduler.extensions.get("multi_locks")
    if ext is None:
        return 0
    old, ours = set(before), set(workers)
    stale = [
        i
        for i, names in list(ext.requests.items())
        if str(i) not in old
        and names
        and set(names) <= ours
        and all(ext.locks[n] and ext.locks[n][0] == i for n in names)
    ]
    for i in stale:
        ext.release(id=i)
    return len(stale)

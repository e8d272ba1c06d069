"""Hold a store lease for the length of a ``with`` block, renewed by a heartbeat thread.

Expiry is judged by the clock of the process that acquires, so hosts sharing a store keep
their clocks in sync (NTP) and ttl stays well above the expected skew.

>>> from retrainer.store import SqlStore
>>> store = SqlStore("sqlite://")
>>> with held_lease(store, "scheduler", owner="me", ttl=30) as lease:
...     store.lease_holder("scheduler")[0]
'me'
>>> store.lease_holder("scheduler") is None  # released on exit
True
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

from ..core.clock import utcnow
from ..core.errors import InputError, LeaseHeld

if TYPE_CHECKING:
    from .workspace import Workspace

log = logging.getLogger("retrainer.lease")


class LeaseBackend(Protocol):
    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool: ...
    def renew_lease(self, name: str, owner: str, ttl_seconds: float) -> bool: ...
    def release_lease(self, name: str, owner: str) -> bool: ...
    def lease_holder(self, name: str) -> tuple[str, datetime] | None: ...


def default_owner() -> str:
    """``hostname:pid:short-uuid``, unique per call.

    >>> host, pid, tag = default_owner().rsplit(":", 2)
    >>> int(pid) == os.getpid(), len(tag)
    (True, 8)
    """
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def model_lease(model: str) -> str:
    """The lease one model's training and maintenance hold (``maintain``, the scheduler's
    jobs, ``train`` and ``fine_tune`` through the API and REST), so two processes never
    register a version of the same model at once.

    >>> model_lease("churn")
    'model:churn'
    """
    return f"model:{model}"


class HeldLease:
    """A lease this process holds. ``lost`` turns True when a renewal found another owner
    (or no row): work under the lease should stop."""

    def __init__(self, store: LeaseBackend, name: str, owner: str, ttl: float) -> None:
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.renewals = 0
        self._store = store
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-heartbeat:{name}", daemon=True
        )

    def __repr__(self) -> str:
        return f"HeldLease({self.name!r}, owner={self.owner!r}, lost={self.lost})"

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def _beat(self) -> None:
        valid_until = time.monotonic() + self.ttl
        while not self._stop.wait(self.ttl / 3):
            started = time.monotonic()
            try:
                ok = self._store.renew_lease(self.name, self.owner, self.ttl)
            except Exception as exc:  # a store hiccup: keep trying until the lease expires
                if time.monotonic() < valid_until:
                    log.warning("Renewing lease %r failed (%s); retrying.", self.name, exc)
                    continue
                log.error("Lease %r expired while the store was unreachable (%s).", self.name, exc)
                self._lost.set()
                return
            valid_until = started + self.ttl
            if not ok:
                log.error(
                    "Lease %r was lost by %s: another owner took it or it was removed. "
                    "Work under it should stop.",
                    self.name,
                    self.owner,
                )
                self._lost.set()
                return
            self.renewals += 1

    def _start(self) -> None:
        self._thread.start()

    def _stop_and_release(self) -> None:
        self._stop.set()
        self._thread.join()
        if not self.lost:
            try:
                self._store.release_lease(self.name, self.owner)
            except Exception as exc:  # it expires by itself after ttl
                log.warning("Releasing lease %r failed (%s); it expires by itself.", self.name, exc)


def _held_message(name: str, holder: tuple[str, datetime] | None, wait: float) -> str:
    waited = f" after waiting {wait:g}s" if wait else ""
    if holder is None:
        who = "another owner (it was released just now)"
    else:
        left = max(0.0, (holder[1] - utcnow()).total_seconds())
        who = f"{holder[0]!r} until {holder[1]:%Y-%m-%d %H:%M:%S} UTC (in {left:.0f}s)"
    return (
        f"Lease {name!r} is held by {who}{waited}. Another process is doing this work; "
        "let it finish, stop it, or retry after the lease expires (pass a longer wait to "
        "block until then)."
    )


@contextmanager
def held_lease(
    ws_or_store: Workspace | LeaseBackend,
    name: str,
    owner: str | None = None,
    ttl: float = 60,
    wait: float = 0,
) -> Iterator[HeldLease]:
    """Acquire lease ``name`` (polling up to ``wait`` seconds), renew it every ttl/3 while
    the block runs, release it on exit. Raises ``LeaseHeld`` when another owner keeps it."""
    if not ttl > 0 or wait < 0:
        raise InputError(
            f"held_lease needs ttl > 0 and wait >= 0 seconds. Got ttl={ttl!r}, wait={wait!r}.",
            ttl=ttl,
            wait=wait,
        )
    store = cast(LeaseBackend, getattr(ws_or_store, "store", ws_or_store))
    owner = owner or default_owner()
    deadline = time.monotonic() + wait
    while not store.acquire_lease(name, owner, ttl):
        left = deadline - time.monotonic()
        if left <= 0:
            holder = store.lease_holder(name)
            raise LeaseHeld(
                _held_message(name, holder, wait),
                lease=name,
                holder=holder[0] if holder else None,
                expires_at=holder[1].isoformat() if holder else None,
            )
        time.sleep(min(left, 0.5, ttl / 3))
    lease = HeldLease(store, name, owner, ttl)
    lease._start()
    try:
        yield lease
    finally:
        lease._stop_and_release()

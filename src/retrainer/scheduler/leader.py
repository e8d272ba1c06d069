"""Leader election over the store: one scheduler of many runs the jobs.

Every scheduler keeps calling ``acquire_lease("scheduler-leader", owner, ttl)`` every ttl/3:
the leader renews its lease, the others try to take it. A leader that crashes stops renewing;
its lease expires after ttl and the next attempt of another scheduler takes over. A leader
that cannot reach the store counts itself leader only until its last lease would have
expired, so two schedulers never both believe they lead (clocks kept in sync, as for every
lease; see ``plumbing.lease``).

>>> from retrainer.store import SqlStore
>>> store = SqlStore("sqlite://")
>>> a, b = LeaderElector(store, owner="a", ttl=30), LeaderElector(store, owner="b", ttl=30)
>>> a.confirm(), b.confirm(), a.is_leader, b.is_leader
(True, False, True, False)
>>> a.stop()  # releases the lease: b takes over at its next attempt
>>> b.confirm()
True
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from ..core.errors import InputError
from ..plumbing.lease import LeaseBackend, default_owner

log = logging.getLogger("retrainer.scheduler")

LEADER_LEASE: Final = "scheduler-leader"


class LeaderElector:
    """Keep trying to hold lease ``name``; ``is_leader`` says whether this process leads."""

    def __init__(
        self,
        store: LeaseBackend,
        *,
        owner: str | None = None,
        ttl: float = 30.0,
        name: str = LEADER_LEASE,
    ) -> None:
        if not ttl > 0:
            raise InputError(
                f"The scheduler's leader ttl must be a positive number of seconds. Got {ttl!r}.",
                ttl=ttl,
            )
        self.store = store
        self.owner = owner or default_owner()
        self.ttl = ttl
        self.name = name
        self._valid_until = 0.0  # monotonic time the lease we hold runs out
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"LeaderElector({self.name!r}, owner={self.owner!r}, leader={self.is_leader})"

    @property
    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    def confirm(self) -> bool:
        """Acquire or renew the lease now; True when this process holds it afterwards."""
        with self._lock:
            was = self.is_leader
            started = time.monotonic()
            try:
                ok = self.store.acquire_lease(self.name, self.owner, self.ttl)
            except Exception as exc:  # store hiccup: keep what we had until it would expire
                log.warning("Scheduler %s: leader lease check failed (%s).", self.owner, exc)
                return self.is_leader
            self._valid_until = started + self.ttl if ok else 0.0
            if ok != was:
                log.info("Scheduler %s %s leader.", self.owner, "became" if ok else "is no longer")
            return ok

    def start(self) -> None:
        """Try now, then every ttl/3 on a daemon thread, until ``stop``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.confirm()
        self._thread = threading.Thread(target=self._loop, name="scheduler-leader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.confirm()

    def stop(self, *, release: bool = True) -> None:
        """Stop trying; with ``release`` drop the lease so another scheduler takes over at
        once instead of after ttl (``release=False`` behaves like a crash)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            leading, self._valid_until = self.is_leader, 0.0
        if release and leading:
            try:
                self.store.release_lease(self.name, self.owner)
            except Exception as exc:  # it expires by itself after ttl
                log.warning("Releasing the leader lease failed (%s); it expires by itself.", exc)

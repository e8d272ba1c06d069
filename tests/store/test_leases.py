"""Leases and job runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from retrainer.core.errors import ConflictError, InputError, LeaseHeld
from retrainer.plumbing.lease import held_lease
from retrainer.store import SqlStore
from waits import SUBPROCESS, wait_until

T0 = datetime(2024, 3, 1, 12, 0, 0)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = SqlStore(store_url)
    yield s
    s.close()


def test_only_one_of_two_owners_acquires(store: SqlStore) -> None:
    assert store.acquire_lease("leader", "a", 60, now=T0)
    assert not store.acquire_lease("leader", "b", 60, now=T0 + timedelta(seconds=30))
    assert store.lease_holder("leader", now=T0) == ("a", T0 + timedelta(seconds=60))
    # the same owner renews
    assert store.acquire_lease("leader", "a", 60, now=T0 + timedelta(seconds=30))
    assert store.lease_holder("leader", now=T0)[1] == T0 + timedelta(seconds=90)  # type: ignore[index]
    # other names are independent
    assert store.acquire_lease("other", "b", 60, now=T0)


def test_expired_lease_is_taken_over(store: SqlStore) -> None:
    assert store.acquire_lease("leader", "a", 10, now=T0)
    later = T0 + timedelta(seconds=10)
    assert store.lease_holder("leader", now=later) is None
    assert store.acquire_lease("leader", "b", 10, now=later)
    assert store.lease_holder("leader", now=later) == ("b", later + timedelta(seconds=10))
    # the old owner can no longer renew or release it
    assert not store.renew_lease("leader", "a", 10, now=later)
    assert not store.release_lease("leader", "a")
    assert store.lease_holder("leader", now=later)[0] == "b"  # type: ignore[index]


def test_release_frees_the_lease(store: SqlStore) -> None:
    assert store.acquire_lease("leader", "a", 60)
    assert store.renew_lease("leader", "a", 60)
    assert store.release_lease("leader", "a")
    assert store.lease_holder("leader") is None
    assert store.acquire_lease("leader", "b", 60)
    assert not store.renew_lease("missing", "a", 60)


def test_bad_ttl_is_rejected(store: SqlStore) -> None:
    with pytest.raises(InputError, match="ttl_seconds must be a positive"):
        store.acquire_lease("leader", "a", 0)


def test_concurrent_threads_one_winner(store: SqlStore) -> None:
    n = 6
    barrier = threading.Barrier(n)
    wins: list[str] = []

    def race(owner: str) -> None:
        barrier.wait()
        if store.acquire_lease("race", owner, 60):
            wins.append(owner)

    threads = [threading.Thread(target=race, args=(f"t{i}",)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(wins) == 1
    assert store.lease_holder("race")[0] == wins[0]  # type: ignore[index]


def test_held_lease_heartbeat_keeps_it(store: SqlStore) -> None:
    with held_lease(store, "leader", owner="a", ttl=0.6) as lease:
        wait_until(lambda: lease.renewals >= 7, "seven renewals")  # over two ttls have passed
        assert not lease.lost
        assert lease.renewals >= 2
        assert store.lease_holder("leader")[0] == "a"  # type: ignore[index]
        assert not store.acquire_lease("leader", "b", 60)
    assert store.lease_holder("leader") is None


def test_held_lease_raises_when_held(store: SqlStore) -> None:
    assert store.acquire_lease("leader", "host:1:abcd", 60)
    with pytest.raises(LeaseHeld) as info, held_lease(store, "leader", ttl=5, wait=0.2):
        pytest.fail("must not enter")
    msg = str(info.value)
    assert "'leader'" in msg and "'host:1:abcd'" in msg and "UTC" in msg and "retry" in msg
    assert info.value.details["holder"] == "host:1:abcd"


def test_held_lease_waits_for_release(store: SqlStore) -> None:
    assert store.acquire_lease("leader", "a", 60)
    threading.Timer(0.3, store.release_lease, args=("leader", "a")).start()
    with held_lease(store, "leader", owner="b", ttl=5, wait=5) as lease:
        assert lease.owner == "b"


def test_held_lease_notices_loss(store: SqlStore) -> None:
    with held_lease(store, "leader", owner="a", ttl=0.3) as lease:
        store.release_lease("leader", "a")
        store.acquire_lease("leader", "b", 60)
        wait_until(lambda: lease.lost, "the heartbeat to notice the loss")
    assert store.lease_holder("leader")[0] == "b"  # type: ignore[index]


def test_job_runs(store: SqlStore) -> None:
    first = store.record_job_run("maintain", "churn", T0, "a", now=T0)
    second = store.record_job_run("reload", None, None, "a")
    store.finish_job_run(first, "failed", "boom", now=T0 + timedelta(seconds=3))
    runs = store.job_runs()
    assert [r.id for r in runs] == [second, first]
    assert runs[0].outcome == "running" and runs[0].finished_at is None
    done = store.job_runs("maintain")
    assert len(done) == 1
    assert (done[0].outcome, done[0].detail, done[0].model) == ("failed", "boom", "churn")
    assert done[0].scheduled_for == T0 and done[0].finished_at == T0 + timedelta(seconds=3)
    assert len(store.job_runs(limit=1)) == 1
    with pytest.raises(ConflictError, match="Job run 9999 does not exist"):
        store.finish_job_run(9999, "ok")


def _contend(url: str, owner: str, names: list[str], start: object, out: object) -> None:
    store = SqlStore(url)
    start.wait()  # type: ignore[attr-defined]
    won = [n for n in names if store.acquire_lease(n, owner, 60)]
    out.put((owner, won))  # type: ignore[attr-defined]
    store.close()


def test_two_processes_exactly_one_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    SqlStore(url).close()  # migrate once, before the race
    names = [f"lease-{i}" for i in range(25)]
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(url, f"p{i}", names, start, out)) for i in range(2)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    start.set()
    results = dict(out.get(timeout=SUBPROCESS) for _ in procs)
    for p in procs:
        p.join(timeout=SUBPROCESS)
        assert p.exitcode == 0
    store = SqlStore(url)
    for name in names:
        winners = [o for o, won in results.items() if name in won]
        assert len(winners) == 1, (name, results)
        assert store.lease_holder(name)[0] == winners[0]  # type: ignore[index]
    store.close()

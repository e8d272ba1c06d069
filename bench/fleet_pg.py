"""The fleet benchmark's store costs on PostgreSQL: 1,000 members ingested, listed and
maintained on the PostgreSQL server of this machine (127.0.0.1:5432, a database made for the
run and dropped after it), the same data and spec as :mod:`bench.fleet` on SQLite.

Measured: the ingest of every member's rows; listing every member (``store.overview``, what
``retrainer status`` and ``/v1/models`` read, in this process; ``retrainer status --json`` as
a process from spawn to exit); the per-member costs of a first and a second maintain of a
sample of members in this process, every SQL statement counted and timed on the store's
engine; and the floor of a write: one small transaction (INSERT, COMMIT) over raw psycopg on
the same server. The 1-vs-2-worker scaling is :mod:`bench.fleet`'s (SQLite) section.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .common import megabytes, seconds, table
from .fleet import QUICK, SAMPLE, ingest, prepare, sample, status_process

ADMIN = os.environ.get(
    "RETRAINER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "retrainer_bench_fleet"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def database() -> Iterator[str]:
    """A fresh database for the run (its URL), dropped after it."""
    import psycopg

    with psycopg.connect(_libpq(ADMIN), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        yield ADMIN.rsplit("/", 1)[0] + f"/{DATABASE}"
    finally:
        with psycopg.connect(_libpq(ADMIN), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def commit_floor(url: str, n: int = 200) -> float:
    """Seconds of one small write transaction (INSERT, COMMIT) over raw psycopg."""
    import psycopg

    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("CREATE TEMP TABLE floor_t (x INTEGER)")
        conn.commit()
        t = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO floor_t VALUES (%s)", (i,))
            conn.commit()
        return (time.perf_counter() - t) / n


def run(quick: bool) -> str:
    members, root, csv, load = prepare("fleet-pg", quick)
    with database() as url:
        ing = ingest(root, csv, store=url)
        per = sample(root, SAMPLE[quick], store=url)
        status = status_process(root, "pg", store=url)
        commit = commit_floor(url)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return render(members, ing, per, status, commit, own, (load, os.getloadavg()[0]))


def render(
    members: int,
    ing: dict[str, Any],
    per: dict[str, Any],
    status: dict[str, Any],
    commit: float,
    own_rss: float,
    load: tuple[float, float],
) -> str:
    first, second = per["turns"]["first"], per["turns"]["second"]
    stages = ["monitor and drift", "data quality", "load rows", "fit", "refit",
              "gate and register"]  # fmt: skip
    body = [[s, seconds(first.get(s, 0)), seconds(second.get(s, 0))] for s in stages]
    body += [
        ["of which SQL statements (store)", seconds(first["store"]), seconds(second["store"])],
        ["of which artifact write", seconds(first.get("artifact", 0)), "-"],
        ["whole turn", seconds(first["total"]), seconds(second["total"])],
        ["SQL statements: reads", f"{first['reads']:.0f}", f"{second['reads']:.0f}"],
        ["SQL statements: writes", f"{first['writes']:.0f}", f"{second['writes']:.0f}"],
        ["floor: bare LightGBM fit + predict", seconds(per["turns"]["floor"]["total"]), "-"],
        ["floor: one write transaction, raw psycopg", f"{commit * 1000:.1f} ms", ""],
    ]
    listing = [
        ["`store.overview` of every member, in this process (median of 5)",
         f"{per['listed']:,}", seconds(per["overview"]), "-"],
        ["`retrainer status --json` as a process, spawn to exit",
         f"{status['listed']:,}", seconds(status["seconds"]), megabytes(status["rss"])],
    ]  # fmt: skip
    return (
        f"## Fleet on PostgreSQL: {members:,} models listed and maintained\n\n"
        f"The fleet benchmark's data and spec ({members:,} members x 200 daily rows, LightGBM "
        "20 trees, 1 thread, no window choice) on the PostgreSQL server of this machine "
        "(127.0.0.1, a database made for the run). Ingest: "
        f"{ing['rows']:,} rows in {seconds(ing['seconds'])} "
        f"({seconds(ing['seconds'] / members)} per member).\n\n"
        + table(["listing", "models", "time", "peak RSS"], listing)
        + "\n\n"
        + table(["per member, in one process", "first maintain", "second maintain"], body)
        + "\n\n"
        f"Stage times are the mean over {SAMPLE[members == QUICK]} members maintained in this "
        "process, as in the SQLite section above; PostgreSQL's transactions begin implicitly, "
        "so they are not counted apart. Peak RSS of this process "
        f"{megabytes(own_rss)}. Load average {load[0]:.1f} before, {load[1]:.1f} after. "
        "Rerun: `python -m bench --only fleet-pg`.\n"
    )

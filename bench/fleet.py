"""Fleet benchmark: 1,000 small models (one fleet, 200 daily rows each) ingested once, then
maintained on 1 and on 2 local Dask worker processes (the scaling ratio), beside the floor of
one bare LightGBM fit per member; per-model costs for docs/scaling.md.

The data (``bench/.data``, seeded): a fleet ``shops`` by ``shop``, three numeric features,
a regression target of each shop's own level and slopes, one CSV. It is ingested once through
``ingest_file`` into a SQLite store; the store file is then copied for each worker count, so
both runs do the same work: a first maintain (every member trains its first version: fit,
gate, register, deploy) and a second (nothing to do: monitor, drift and policy only). The
members run through ``maintain_many`` on a LocalCluster the bench starts (its start-up timed
apart), as ``retrainer maintain --all --workers N`` runs them.

Per-model costs come from a sample of members maintained in this process on a third copy,
with each stage of the turn timed (the stages maintain reports) and every SQL statement and
commit counted and timed on the store's engine. The floor: LightGBM fit and predict of the
same parameters on a member's rows as plain arrays. Listing: ``store.overview`` of every member
(what ``retrainer status`` and ``/v1/models`` read) in this process, and ``retrainer status
--json`` as a process from spawn to exit.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retrainer.lifecycle.fleet_maintain import maintain_many, worker_spec

from .common import REPO, WORK, megabytes, seconds, table

FLEET, BY = "shops", "shop"
ACTIONS = ("nothing", "full_retrain", "fine_tune", "incremental_update", "rollback")
FULL, QUICK = 1000, 40  # members
DAYS = 200  # rows per member
SAMPLE = {False: 40, True: 10}  # members timed stage by stage
WORKERS = (1, 2)
PROBE_LOOP = 3_000_000  # iterations of one CPU probe task (about 0.3 s on a free core)
MAINTAIN_ENV = "BENCH_FLEET_MAINTAIN"  # maintain only the first N members (a loaded machine)
SLICES = 4  # the members run in slices, alternating between the clusters
SECOND_SHARE = 4  # the second turn runs on the first 1/SECOND_SHARE of the members
PARAMS = {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5, "num_threads": 1}
DATA = REPO / "bench" / ".data"


def peers() -> dict[str, str]:
    from importlib.metadata import version

    return {"lightgbm": version("lightgbm"), "distributed": version("distributed")}


def rows(members: int) -> Path:
    """The fleet's CSV: ``DAYS`` rows per member, in time order across members."""
    path = DATA / f"fleet-{members}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(7)
    t = pd.date_range("2024-01-01", periods=DAYS, freq="D").repeat(members)
    shop = np.tile([f"shop{i:04d}" for i in range(members)], DAYS)
    k = np.tile(np.arange(members), DAYS)
    x = rng.normal(size=(len(t), 3))
    y = 10 * (k % 7) + x[:, 0] * (1 + k % 3) - x[:, 1] + 0.5 * x[:, 2] * (k % 2)
    df = pd.DataFrame({BY: shop, "id": [f"{s}-{i}" for i, s in enumerate(shop)], "day": t,
                       "a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                       "y": y + rng.normal(scale=0.3, size=len(t))})  # fmt: skip
    DATA.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def spec(
    root: Path, name: str, scheduler: str | None = None, store: str | None = None
) -> dict[str, Any]:
    """The fleet's spec on the SQLite file ``name``.db under ``root``, or on ``store``."""
    training: dict[str, Any] = {"choice": {"enabled": False}}
    if scheduler:
        training |= {"engine": "dask", "scheduler": scheduler}
    model = {"task": "regression", "target": "y", "id_column": "id", "time_column": "day",
             "features": {"numeric": ["a", "b", "c"]}, "family": "lightgbm",
             "params": PARAMS, "fleet": {"by": BY}, "gate": {"min_rows": 20},
             "training": training}  # fmt: skip
    store = store or f"sqlite:///{root / f'{name}.db'}"
    return {"store": store, "artifacts": str(root / f"{name}-art"), "models": {FLEET: model}}


def workspace(data: dict[str, Any]) -> Any:
    from retrainer.core.spec import parse_spec
    from retrainer.plumbing.workspace import Workspace

    return Workspace(parse_spec(data, environ={}))


def copy_store(root: Path, name: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        src = root / f"ingested.db{suffix}"
        if src.exists():
            shutil.copy(src, root / f"{name}.db{suffix}")


def ingest(root: Path, csv: Path, store: str | None = None) -> dict[str, Any]:
    from retrainer.lifecycle.ingest import ingest_file

    started = time.perf_counter()
    with workspace(spec(root, "ingested", store=store)) as ws:
        r = ingest_file(ws, FLEET, csv)
        members = len(ws.members(FLEET))
    took = time.perf_counter() - started
    floor = time.perf_counter()
    pd.read_csv(csv).groupby(BY).size()
    return {"seconds": took, "rows": r.inserted, "members": members,
            "floor": time.perf_counter() - floor}  # fmt: skip


def maintain_both(root: Path, maintained: int) -> list[dict[str, Any]]:
    """Both maintain turns on a LocalCluster of 1 and one of 2 worker processes, each on its
    own copy of the store. The members are taken in ``SLICES`` slices, each run on both
    clusters in turn (1 then 2, then 2 then 1), so both see the same load on the machine;
    the first ``maintained`` members only."""
    from contextlib import ExitStack

    from distributed import Client, LocalCluster

    out = [{"workers": w, "first": Counter(), "second": Counter(), "probe": 0.0} for w in WORKERS]
    with ExitStack() as stack:
        spaces = []
        for res in out:
            name = f"w{res['workers']}"
            copy_store(root, name)
            started = time.perf_counter()
            cluster = stack.enter_context(LocalCluster(
                n_workers=res["workers"], threads_per_worker=1, processes=True,
                dashboard_address=":0"))  # fmt: skip
            ws = stack.enter_context(workspace(spec(root, name, str(cluster.scheduler_address))))
            with Client(cluster, set_as_default=False) as client:
                client.run(warm, ws.spec)
            res["cluster_start"] = time.perf_counter() - started
            spaces.append((cluster, ws))
        names = spaces[0][1].model_names()[:maintained]
        turns = {"first": names, "second": names[: max(len(names) // SECOND_SHARE, 1)]}
        for turn, todo in turns.items():
            step = -(-len(todo) // SLICES)
            for k, i in enumerate(range(0, len(todo), step)):
                print(f"   fleet: {turn} maintain, slice {k + 1}", file=sys.stderr, flush=True)
                for j in (0, 1) if k % 2 == 0 else (1, 0):
                    out[j][turn] += _timed(spaces[j][1], todo[i : i + step])
                    out[j]["probe"] += _probe(spaces[j][0])
        for res, (cluster, ws) in zip(out, spaces, strict=True):
            with Client(cluster, set_as_default=False) as client:
                peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            res["worker_rss"] = max(peaks.values()) / 1024
            res["versions"] = sorted((n, v.version) for n in names
                                     for v in ws.store.list_versions(n))  # fmt: skip
    return out


def spin(n: int) -> int:
    """Pure CPU work: a Python loop (the GIL held, no I/O)."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def _probe(cluster: Any) -> float:
    """Wall seconds of 2 equal CPU tasks on ``cluster``: in turn on 1 worker, at once on 2.
    Their ratio is the parallelism the machine gives the two clusters right then."""
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        t = time.perf_counter()
        client.gather([client.submit(spin, PROBE_LOOP + k, pure=False) for k in range(2)])
        return time.perf_counter() - t


def _timed(ws: Any, names: list[str]) -> Counter[str]:
    t = time.perf_counter()
    done = maintain_many(ws, names)
    wall = time.perf_counter() - t
    errors = [m for m in done if m.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} members failed: {errors[0].error}")
    counts: Counter[str] = Counter(m.result.decision.action for m in done if m.result)
    counts["members"] = len(names)
    counts["wall_ms"] = round(wall * 1000)
    counts["busy_ms"] = round(sum(m.seconds for m in done) * 1000)
    counts["cpu_ms"] = round(sum(m.cpu_seconds for m in done) * 1000)
    return counts


def warm(spec: Any) -> None:
    """What a worker's first task would pay: open the workspace, import the family."""
    from retrainer.families import family_class
    from retrainer.lifecycle.fleet_maintain import _workspace

    _workspace(worker_spec(spec, [f"{FLEET}.x"]))
    family_class("lightgbm")


class StageClock:
    """A Progress that sums the wall time of each stage maintain reports."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._open: tuple[str, float] | None = None

    def stage(self, name: str, total: int | None = None, unit: str = "") -> None:
        self.done()
        self._open = (name.split(" ")[0] if name.startswith(("fit", "refit")) else name,
                      time.perf_counter())  # fmt: skip

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        if self._open is not None:
            self.totals[self._open[0]] += time.perf_counter() - self._open[1]
            self._open = None


def sample(root: Path, members: int, store: str | None = None) -> dict[str, Any]:
    """Stage times, SQL statements, commits and store time per member, in this process (on
    a copy of the ingested SQLite file, or on ``store`` as it is)."""
    from sqlalchemy import event

    from retrainer.lifecycle.maintain import maintain

    if store is None:
        copy_store(root, "sample")
    sql: dict[str, float] = defaultdict(float)
    with workspace(spec(root, "sample", store=store)) as ws:
        names = ws.model_names()[:members]

        @event.listens_for(ws.store.engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            conn.info["t"] = time.perf_counter()
            verb = statement.lstrip().split(" ", 1)[0].upper()
            if verb == "BEGIN":
                sql["write_txns" if "IMMEDIATE" in statement.upper() else "read_txns"] += 1
            else:
                sql["writes" if verb in ("INSERT", "UPDATE", "DELETE") else "reads"] += 1

        @event.listens_for(ws.store.engine, "after_cursor_execute")
        def _after(conn: Any, *_: Any) -> None:
            sql["store"] += time.perf_counter() - conn.info.pop("t", time.perf_counter())

        put = ws.artifacts.put

        def timed_put(model: str, data: bytes) -> Any:
            t = time.perf_counter()
            try:
                return put(model, data)
            finally:
                sql["artifact"] += time.perf_counter() - t

        ws.artifacts.put = timed_put  # type: ignore[method-assign]
        turns: dict[str, dict[str, float]] = {}
        for turn in ("first", "second"):
            clock, before, t = StageClock(), dict(sql), time.perf_counter()
            for name in names:
                maintain(ws, name, progress=clock)
            clock.done()
            wall = time.perf_counter() - t
            turns[turn] = {k: v / len(names) for k, v in clock.totals.items()}
            turns[turn] |= {k: (sql[k] - before.get(k, 0)) / len(names) for k in sql}
            turns[turn]["total"] = wall / len(names)
        turns["floor"] = {"total": fit_floor(ws, names)}
        listing = overview(ws)
    return {"turns": turns, **listing}


def fit_floor(ws: Any, names: list[str]) -> float:
    """Seconds per member of a bare LightGBM fit on 80 % of its rows and a predict on 20 %."""
    import lightgbm

    params = {**PARAMS, "verbose": -1}
    took = 0.0
    for name in names:
        df = ws.store.training_frame(name).sort_values("event_time")
        x, y = df[["a", "b", "c"]].to_numpy(), df["target"].to_numpy()
        cut = int(len(df) * 0.8)
        t = time.perf_counter()
        lightgbm.LGBMRegressor(**params).fit(x[:cut], y[:cut]).predict(x[cut:])
        took += time.perf_counter() - t
    return took / len(names)


def overview(ws: Any) -> dict[str, Any]:
    """Median of 5 listings of every member: names, then roles, versions and rows."""
    times = []
    for _ in range(5):
        t = time.perf_counter()
        listed = ws.store.overview(ws.model_names())
        times.append(time.perf_counter() - t)
    return {"overview": statistics.median(times), "listed": len(listed)}


def commit_floor(root: Path, n: int = 200) -> float:
    """Seconds of one small write transaction on raw sqlite3 with the store's settings (WAL,
    synchronous=FULL, BEGIN IMMEDIATE): the floor of a write under SQLite's one-writer lock."""
    import sqlite3

    conn = sqlite3.connect(root / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    t = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        conn.execute("COMMIT")
    took = (time.perf_counter() - t) / n
    conn.close()
    return took


def status_process(root: Path, name: str, store: str | None = None) -> dict[str, Any]:
    """``retrainer status --json`` of every member as a process, from spawn to exit."""
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(spec(root, name, store=store)))
    retrainer = str(Path(sys.executable).parent / "retrainer")
    listing = root / "status.json"
    with open(listing, "wb") as sink:
        t = time.perf_counter()
        proc = subprocess.Popen([retrainer, "--config", str(config), "status", "--json"],
                                stdout=sink, stderr=subprocess.DEVNULL)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - t
    if status != 0:
        raise RuntimeError(f"retrainer status --json exited with wait status {status}")
    listed = len(json.loads(listing.read_text()))
    return {"seconds": took, "rss": usage.ru_maxrss / 1024, "listed": listed}


def prepare(name: str, quick: bool) -> tuple[int, Path, Path, float]:
    """A run's member count, its emptied work folder ``bench/.work/NAME``, the fleet's CSV
    and the load average at its start."""
    members = QUICK if quick else FULL
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return members, root, rows(members), os.getloadavg()[0]


def run(quick: bool) -> str:
    members, root, csv, load = prepare("fleet", quick)
    print(f"   fleet: ingest {members} members x {DAYS} rows", file=sys.stderr, flush=True)
    ing = ingest(root, csv)
    maintained = min(members, int(os.environ.get(MAINTAIN_ENV) or members))
    runs = maintain_both(root, maintained)
    if runs[0]["versions"] != runs[1]["versions"]:
        raise RuntimeError("1 and 2 workers registered different versions")
    print("   fleet: per-member sample", file=sys.stderr, flush=True)
    per = sample(root, SAMPLE[quick]) | {"commit": commit_floor(root)}
    status = status_process(root, "w2")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    saved = {"ingest": ing, "runs": runs, "sample": per, "status": status, "rss": own}
    (root / "results.json").write_text(json.dumps(saved, default=str))  # kept if render fails
    return render(members, ing, runs, per, status, own, (load, os.getloadavg()[0]))


def render(
    members: int,
    ing: dict[str, Any],
    runs: list[dict[str, Any]],
    per: dict[str, Any],
    status: dict[str, Any],
    own_rss: float,
    load: tuple[float, float],
) -> str:
    done = runs[0]["first"]["members"]
    lines = [f"## Fleet: {members:,} models, maintained on 1 and 2 Dask workers", ""]
    lines.append(
        f"One fleet of {members:,} members x {DAYS} daily rows (3 numeric features, LightGBM "
        f"{PARAMS['n_estimators']} trees, 1 thread, no window choice), SQLite store. Ingest: "
        f"{ing['rows']:,} rows in {seconds(ing['seconds'])} ({seconds(ing['seconds'] / members)}"
        f" per member; the floor, pandas reading the CSV and grouping it, "
        f"{seconds(ing['floor'])}). Cluster start-up and warm-up (each worker opens the "
        "workspace and imports LightGBM; timed apart): "
        + ", ".join(f"{r['workers']} worker(s) {seconds(r['cluster_start'])}" for r in runs)
        + "."
    )
    lines.append("")
    head = ["turn", "members", "what the members did", "1 worker", "2 workers", "speed-up",
            "per member, 2 workers", "CPU per member, 1 / 2 workers",
            "scheduling per member, 2 workers"]  # fmt: skip
    body = []
    for turn, what in (("first", "train, gate, register, deploy"), ("second", "nothing to do")):
        one, two = runs[0][turn], runs[1][turn]
        n = two["members"]
        actions = ", ".join(f"{c:,} {a}" for a, c in sorted(two.items()) if a in ACTIONS)
        overhead = (two["wall_ms"] * 2 - two["busy_ms"]) / n / 1000
        body.append([f"{turn} maintain", f"{n:,}", f"{what} ({actions})",
                     seconds(one["wall_ms"] / 1000), seconds(two["wall_ms"] / 1000),
                     f"{one['wall_ms'] / two['wall_ms']:.2f}x",
                     seconds(two["wall_ms"] / n / 1000),
                     f"{seconds(one['cpu_ms'] / n / 1000)} / {seconds(two['cpu_ms'] / n / 1000)}",
                     seconds(max(overhead, 0))])  # fmt: skip
    lines += [table(head, body), ""]
    lines.append(
        f"Each turn ran in {SLICES} slices of the members, each slice on both clusters in "
        "turn (alternating which went first), so the two see the same load on the machine; "
        f"the second turn ran on the first 1/{SECOND_SHARE} of them. "
        + (
            f"**Only the first {done:,} of the {members:,} members were maintained** "
            f"(`{MAINTAIN_ENV}={done}`: the machine was shared with other work); ingest and "
            "listing cover all of them. "
            if done < members
            else ""
        )
        + "Both clusters "
        "registered the same versions. CPU per member is the worker process's CPU time during "
        "the turn: wall time beyond it is waiting (for a CPU, the disk, the store's lock). "
        "Scheduling per member: the workers' wall time not spent in a turn. **The floor** "
        "(after each slice, on the same clusters): 2 equal pure-CPU tasks, in turn on 1 "
        f"worker ({seconds(runs[0]['probe'])} in all), at once on 2 "
        f"({seconds(runs[1]['probe'])}): a speed-up of "
        f"{runs[0]['probe'] / runs[1]['probe']:.2f}x, the parallelism the machine gave "
        "the second worker meanwhile (2.0x on 2 free cores)."
    )
    lines.append("")
    first, second = per["turns"]["first"], per["turns"]["second"]
    stages = ["monitor and drift", "data quality", "load rows", "fit", "refit",
              "gate and register"]  # fmt: skip
    head = ["per member, in one process", "first maintain", "second maintain"]
    body = [[s, seconds(first.get(s, 0)), seconds(second.get(s, 0))] for s in stages]
    body += [
        [
            "of which SQL statements (store; commits apart)",
            seconds(first["store"]),
            seconds(second["store"]),
        ],
        ["of which artifact write", seconds(first.get("artifact", 0)), "-"],
        ["whole turn", seconds(first["total"]), seconds(second["total"])],
        ["SQL statements: reads", f"{first['reads']:.0f}", f"{second['reads']:.0f}"],
        ["SQL statements: writes", f"{first['writes']:.0f}", f"{second['writes']:.0f}"],
        [
            "write transactions (BEGIN IMMEDIATE)",
            f"{first.get('write_txns', 0):.1f}",
            f"{second.get('write_txns', 0):.1f}",
        ],
        [
            "read transactions",
            f"{first.get('read_txns', 0):.1f}",
            f"{second.get('read_txns', 0):.1f}",
        ],
        ["floor: bare LightGBM fit + predict", seconds(per["turns"]["floor"]["total"]), "-"],
        ["floor: one write transaction, raw sqlite3", f"{per['commit'] * 1000:.1f} ms", ""],
    ]
    lines += [table(head, body), ""]
    lines.append(
        f"Stage times are the mean over {SAMPLE[members == QUICK]} members maintained in this "
        "process (the stages maintain reports; a turn's decision, policy and records are the "
        "rest of the whole turn). Listing every member: `store.overview` (what `retrainer "
        f"status` and `/v1/models` read) {seconds(per['overview'])} for {per['listed']:,} "
        f"models; `retrainer status --json` as a process ({status['listed']:,} models) "
        f"{seconds(status['seconds'])} from "
        f"spawn to exit, peak RSS {megabytes(status['rss'])}. Peak RSS: this process "
        f"{megabytes(own_rss)}, a worker process "
        f"{megabytes(max(r['worker_rss'] for r in runs))}. Load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after (other work on the machine slows both "
        "runs; the speed-up is the number to read). Model of a bigger cluster: "
        "[scaling.md](scaling.md)."
    )
    return "\n".join(lines) + "\n"

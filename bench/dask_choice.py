"""The default training choice with the window on 2 Dask workers: the training process's memory.

A synthetic classification model (24 numeric features, a 0/1 target from a noisy linear rule
whose weights drift over the window) is ingested into a SQLite store in chunks (segments of
262,144 rows). Then, each in a fresh process, ``retrainer train`` with the default
``training.choice`` (windows all, 1/4, since_change; half-lives none, 1/4; reused on the
next 3 retrains, so each run is a first training):

- ``dask``: ``training.engine: dask`` against a LocalCluster of 2 worker processes of 1
  thread. Every candidate is fitted on the workers over the partitions from its start; the
  training process holds the holdout, the event-time column and a column at a time.
- ``local`` (the peer): ``engine: local``, the window read and every candidate fitted in
  one process.

Reported: the training process's peak RSS (``ru_maxrss``) and CPU seconds, each worker's
peak RSS, wall time, the candidates fitted and the holdout accuracy.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import emit, megabytes, run_worker, seconds, table

FEATURES = [f"f{i:02d}" for i in range(24)]
FULL_ROWS, QUICK_ROWS = 1_200_000, 100_000
CHUNK = 262_144
MODEL = "big"


def _workspace(root: Path, engine: str, scheduler: str | None = None) -> Any:
    from retrainer.core.spec import parse_spec
    from retrainer.plumbing.workspace import Workspace

    training: dict[str, Any] = {"engine": engine, "threads": 1}  # training.choice: default
    if scheduler is not None:
        training["scheduler"] = scheduler
    model = {
        "task": "classification",
        "target": "y",
        "id_column": "id",
        "time_column": "t",
        "features": {"numeric": FEATURES},
        "family": "lightgbm",
        "params": {"n_estimators": 40, "num_leaves": 31},
        "training": training,
        "quality": {"min_rows": 100},
    }
    store = f"sqlite:///{root / f'store-{engine}.db'}"  # its own copy: no choice reused
    body = {"store": store, "artifacts": str(root / f"art-{engine}"), "models": {MODEL: model}}
    return Workspace(parse_spec(body, environ={}))


def ingest(root: Path, rows: int) -> dict[str, Any]:
    """Rows generated and ingested a chunk at a time (memory bounded by a chunk)."""
    import numpy as np
    import pandas as pd

    from retrainer.lifecycle.ingest import ingest_frame

    ws = _workspace(root, "local")
    rng = np.random.default_rng(11)
    old, new = rng.normal(size=len(FEATURES)), rng.normal(size=len(FEATURES))
    start = pd.Timestamp("2020-01-01")
    for lo in range(0, rows, CHUNK):
        n = min(CHUNK, rows - lo)
        X = rng.normal(size=(n, len(FEATURES)))
        share = (np.arange(lo, lo + n) / rows)[:, None]  # the rule drifts from old to new
        y = (np.sum(X * ((1 - share) * old + share * new), axis=1)
             + rng.normal(scale=2.0, size=n) > 0).astype(int)  # fmt: skip
        df = pd.DataFrame(X, columns=FEATURES)
        df["id"] = [f"r{i:09d}" for i in range(lo, lo + n)]
        df["t"] = start + pd.to_timedelta(np.arange(lo, lo + n) * 60, unit="s")
        df["y"] = y
        ingest_frame(ws, MODEL, df)
    ws.close()
    return {"rows": rows}


def train_once(root: Path, engine: str, scheduler: str | None) -> dict[str, Any]:
    import resource

    from retrainer.lifecycle.train import train

    ws = _workspace(root, engine, scheduler)
    started, cpu = time.perf_counter(), time.process_time()
    version = train(ws, MODEL).version
    choice = version.details["training_choice"]
    out = {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "accuracy": version.metrics["accuracy"],
        "engine": version.details.get("engine"),
        "fitted": sum(1 for c in choice["candidates"] if "value" in c),
        "reused": "reused_from" in choice,
        "chosen": f"{choice['chosen']['window']}, half-life {choice['chosen']['half_life']}",
    }
    ws.close()
    return out


def _copy(src: Path, dst: Path) -> None:
    """A copy of SQLite store ``src`` (its WAL included) at ``dst``."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def _worker_peaks(client: Any) -> list[float]:
    import resource

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return sorted(client.run(peak).values())


def run(quick: bool) -> str:
    import os

    from distributed import Client, LocalCluster

    import dask

    rows = QUICK_ROWS if quick else FULL_ROWS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_worker(["bench.dask_choice", "ingest", str(root), str(rows)])
        _copy(root / "store-local.db", root / "store-dask.db")
        unmanaged = {  # LightGBM's buffers are not Dask's: no spill, pause or kill
            f"distributed.worker.memory.{k}": False
            for k in ("target", "spill", "pause", "terminate")
        }
        with dask.config.set(unmanaged):
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
        with cluster, Client(cluster) as client:
            dask_run = run_worker(
                ["bench.dask_choice", "train", str(root), "dask", cluster.scheduler_address]
            )
            workers = _worker_peaks(client)
        local = run_worker(["bench.dask_choice", "train", str(root), "local", "-"])
        load = os.getloadavg()[0]
    header = [
        "engine", "training process peak RSS", "its CPU", "worker peak RSS", "wall",
        "candidates fitted", "chosen", "holdout accuracy",
    ]  # fmt: skip
    body = [
        [
            f"dask (2 workers, {dask_run['engine']['partitions']} partitions)",
            megabytes(dask_run["peak_mb"]), seconds(dask_run["cpu"]),
            ", ".join(megabytes(w) for w in workers), seconds(dask_run["seconds"]),
            dask_run["fitted"], dask_run["chosen"], f"{dask_run['accuracy']:.4f}",
        ],
        [
            "local", megabytes(local["peak_mb"]), seconds(local["cpu"]), "-",
            seconds(local["seconds"]), local["fitted"], local["chosen"],
            f"{local['accuracy']:.4f}",
        ],
    ]  # fmt: skip
    return (
        "## Dask: the default training choice on the workers\n\n"
        f"{rows:,} rows x {len(FEATURES)} numeric features (the rule drifts over the window), "
        "LightGBM 40 rounds, the default `training.choice` (windows all, 1/4, since_change; "
        "half-lives none, 1/4), 2 worker processes of 1 thread. With `engine: dask` every "
        "candidate is fitted on the workers over the partitions from its start, recency "
        "weights computed there; the training process holds the holdout, the event-time "
        "column (8 bytes a row) and a column at a time for the quality checks. Load average "
        f"at the end: {load:.1f} on this machine's cores.\n\n"
        + table(header, body)
        + "\n\nThe training process's CPU is, as in a local training less its fits, the "
        "quality checks and reference statistics (a column at a time; the reference again "
        "when a shorter window is chosen), the holdout's scoring and each candidate's paired "
        "bootstrap on the holdout. The extra wall time is the cluster's: each fit makes "
        "several passes over the partitions (row counts, the early-stopping cut, the weights "
        "and their mean, the matrices) and sets up LightGBM's network. "
        "Rerun: `python -m bench --only dask-choice`.\n"
    )


def main(argv: list[str]) -> None:
    cmd, root = argv[0], Path(argv[1])
    if cmd == "ingest":
        emit(ingest(root, int(argv[2])))
    else:
        emit(train_once(root, argv[2], None if argv[3] == "-" else argv[3]))


if __name__ == "__main__":
    main(sys.argv[1:])

"""A training window read and fitted on 2 Dask workers: the memory of every process.

A synthetic classification model (24 numeric features, a 0/1 target from a noisy linear rule)
is ingested into a SQLite store in chunks (segments of 262,144 rows). Then, each in a fresh
process:

- ``dask``: ``retrainer train`` with ``training.engine: dask`` against a LocalCluster of 2
  worker processes, 1 thread each. The window is read on the workers, one partition per
  segment; the training process holds the holdout and a column at a time.
- ``local`` (the peer): the same training with ``engine: local``, the window read and fitted
  in one process.

Reported: the window's size in memory, each process's peak RSS (the training process's own,
``ru_maxrss``; each worker's, read from the worker at the end), wall time and holdout
accuracy. Spilling to disk is off (``distributed.worker.memory.target``/``spill``/``pause``/
``terminate``: false): LightGBM's Dask interface keeps socket objects among its task results,
which Dask cannot pickle to spill, and a worker past its ``memory_limit`` lost them (a first
run with a limit below the window failed its fit with a KeyError, then its retry).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import emit, megabytes, run_worker, seconds, table

FEATURES = [f"f{i:02d}" for i in range(24)]
FULL_ROWS, QUICK_ROWS = 2_400_000, 200_000
CHUNK = 262_144
MODEL = "big"


def _spec(store: str, artifacts: str, engine: str, scheduler: str | None) -> dict[str, Any]:
    training: dict[str, Any] = {"engine": engine, "choice": {"enabled": False}, "threads": 1}
    if scheduler is not None:
        training["scheduler"] = scheduler
    return {
        "store": store,
        "artifacts": artifacts,
        "models": {
            MODEL: {
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
        },
    }


def _workspace(root: Path, engine: str, scheduler: str | None = None) -> Any:
    from retrainer.core.spec import parse_spec
    from retrainer.plumbing.workspace import Workspace

    body = _spec(f"sqlite:///{root / 'store.db'}", str(root / f"art-{engine}"), engine, scheduler)
    return Workspace(parse_spec(body, environ={}))


def ingest(root: Path, rows: int) -> dict[str, Any]:
    """Rows generated and ingested a chunk at a time (memory bounded by a chunk)."""
    import numpy as np
    import pandas as pd

    from retrainer.lifecycle.ingest import ingest_frame

    ws = _workspace(root, "local")
    rng = np.random.default_rng(7)
    weights = rng.normal(size=len(FEATURES))
    start = pd.Timestamp("2020-01-01")
    frame_bytes = 0
    for lo in range(0, rows, CHUNK):
        n = min(CHUNK, rows - lo)
        X = rng.normal(size=(n, len(FEATURES)))
        y = (X @ weights + rng.normal(scale=2.0, size=n) > 0).astype(int)
        df = pd.DataFrame(X, columns=FEATURES)
        df["id"] = [f"r{i:09d}" for i in range(lo, lo + n)]
        df["t"] = start + pd.to_timedelta(np.arange(lo, lo + n) * 60, unit="s")
        df["y"] = y
        ingest_frame(ws, MODEL, df)
    window = ws.store.training_frame(MODEL)  # measured once, here, for the table
    frame_bytes = int(window.memory_usage(deep=True).sum())
    ws.close()
    return {"rows": rows, "frame_mb": frame_bytes / 2**20}


def train_once(root: Path, engine: str, scheduler: str | None) -> dict[str, Any]:
    import resource

    from retrainer.lifecycle.train import train

    ws = _workspace(root, engine, scheduler)
    started = time.perf_counter()
    version = train(ws, MODEL).version
    out = {
        "seconds": time.perf_counter() - started,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "accuracy": version.metrics["accuracy"],
        "engine": version.details.get("engine"),
    }
    ws.close()
    return out


def _worker_peaks(client: Any) -> list[float]:
    import resource

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return sorted(client.run(peak).values())


def run(quick: bool) -> str:
    from distributed import Client, LocalCluster

    import dask

    rows = QUICK_ROWS if quick else FULL_ROWS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = run_worker(["bench.dask_window", "ingest", str(root), str(rows)])
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
                ["bench.dask_window", "train", str(root), "dask", cluster.scheduler_address]
            )
            workers = _worker_peaks(client)
        local = run_worker(["bench.dask_window", "train", str(root), "local", "-"])
    header = ["engine", "training process peak RSS", "worker peak RSS", "wall", "accuracy"]
    body = [
        [
            "dask (2 workers, window read on them)",
            megabytes(dask_run["peak_mb"]),
            ", ".join(megabytes(w) for w in workers),
            seconds(dask_run["seconds"]),
            f"{dask_run['accuracy']:.4f}",
        ],
        [
            "local (one process)",
            megabytes(local["peak_mb"]),
            "-",
            seconds(local["seconds"]),
            f"{local['accuracy']:.4f}",
        ],
    ]
    biggest = max(workers)
    verdict = "larger" if data["frame_mb"] > biggest else "not larger"
    return (
        "## Dask: the training window read on the workers\n\n"
        f"{rows:,} rows x {len(FEATURES)} numeric features, LightGBM (40 rounds), "
        f"`training.choice` off, 2 worker processes of 1 thread; the window's frame in memory: "
        f"**{megabytes(data['frame_mb'])}** ({dask_run['engine']}).\n\n"
        + table(header, body)
        + "\n\nThe training process of the Dask engine holds the holdout (the newest 20% of "
        "rows), the event time, target and one feature column at a time (quality checks and "
        "reference statistics) and per-partition summaries; every fit's matrix is built by "
        "the workers from the partitions they read. Each worker holds its share of the "
        "window's frame, the float matrix built from it and LightGBM's binned dataset, on top "
        "of its imports: in this run the window is "
        f"**{verdict} than the largest worker's peak RSS** ({megabytes(biggest)}). "
        "Rerun: `python -m bench --only dask`.\n"
    )


def main(argv: list[str]) -> None:
    cmd, root = argv[0], Path(argv[1])
    if cmd == "ingest":
        emit(ingest(root, int(argv[2])))
    else:
        emit(train_once(root, argv[2], None if argv[3] == "-" else argv[3]))


if __name__ == "__main__":
    main(sys.argv[1:])

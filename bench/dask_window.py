"""A training window read and fitted on 2 Dask workers: the memory of every process.

A synthetic classification model (24 numeric features, a 0/1 target from a noisy linear rule)
is ingested into a SQLite store in chunks (segments of 262,144 rows). The window's size is
the honest in-memory size of the frame a local training holds: ``memory_usage(deep=True)``
of the store's ``training_frame`` (ids, event times, target and the float64 features).
Then, for LightGBM and for XGBoost, each in a fresh process:

- ``dask``: ``retrainer train`` with ``training.engine: dask`` against a LocalCluster of 2
  worker processes of 1 thread, each with the ``memory_limit`` :data:`LIMIT_FRACTION` gives
  (a fraction of the window's size, or none). The window is read on the workers, a
  partition per segment, again on each pass: the frame is not kept; a fit's float32 matrix
  is. Spilling and pausing are off (LightGBM's Dask interface keeps socket objects among its
  task results, which Dask cannot pickle to spill); the nanny's terminate stays on, so a
  worker past 95% of a limit is killed and the fit fails: a run that completes stayed under.
- ``local`` (the peer): the same training with ``engine: local``, the window read and fitted
  in one process.

Reported: each process's peak RSS (the training process's ``ru_maxrss``; each worker's, read
from the worker at the end), wall time and holdout accuracy.
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
FAMILIES = {
    "xgboost": {"n_estimators": 40, "max_depth": 6, "learning_rate": 0.1},
    "lightgbm": {"n_estimators": 40, "num_leaves": 31},
}
# each worker's memory_limit, a fraction of the window's size (None: no limit). Not set: a
# worker still needs more than this window (about 490 MB + 0.65x the window for LightGBM);
# XGBoost at 4,800,000 rows with 0.9 (927 MiB) went past 95% of it and was restarted.
LIMIT_FRACTION: dict[str, float | None] = {"xgboost": None, "lightgbm": None}


def _spec(
    store: str, artifacts: str, engine: str, scheduler: str | None, family: str
) -> dict[str, Any]:
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
                "family": family,
                "params": FAMILIES[family],
                "training": training,
                "quality": {"min_rows": 100},
            }
        },
    }


def _workspace(
    root: Path, engine: str, scheduler: str | None = None, family: str = "lightgbm"
) -> Any:
    from retrainer.core.spec import parse_spec
    from retrainer.plumbing.workspace import Workspace

    art = str(root / f"art-{engine}-{family}")
    body = _spec(f"sqlite:///{root / 'store.db'}", art, engine, scheduler, family)
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
    return {"rows": rows, "frame_bytes": frame_bytes, "frame_mb": frame_bytes / 2**20}


def train_once(root: Path, engine: str, scheduler: str | None, family: str) -> dict[str, Any]:
    import resource

    from retrainer.lifecycle.train import train

    ws = _workspace(root, engine, scheduler, family)
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


def _on_cluster(
    root: Path, family: str, limit: int | None, workers: int = 2
) -> tuple[dict[str, Any], list[float]]:
    """The dask training of ``family`` on a fresh LocalCluster of ``workers`` workers limited
    to ``limit`` bytes each (None: no limit), and each worker's peak RSS."""
    from distributed import Client, LocalCluster

    import dask

    unmanaged = {  # LightGBM's buffers are not Dask's: no spill or pause; terminate stays
        f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause")
    }
    with dask.config.set(unmanaged):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=0 if limit is None else limit,
            dashboard_address=":0",
        )
    with cluster, Client(cluster) as client:
        before = set(client.nthreads())
        out = run_worker(  # a worker killed past its limit ends the fit (a retry, then exit 1)
            ["bench.dask_window", "train", str(root), "dask", cluster.scheduler_address, family],
            timeout=5400,
        )
        peaks = _worker_peaks(client)
        if set(client.nthreads()) != before:
            raise RuntimeError(f"A worker was replaced during the {family} fit (killed?)")
    return out, peaks


def run(quick: bool, families: tuple[str, ...] = tuple(FAMILIES)) -> str:
    rows = QUICK_ROWS if quick else FULL_ROWS
    fractions = {f: None if quick else LIMIT_FRACTION[f] for f in families}
    return page(rows, measure(rows, 2, fractions))


def measure(rows: int, workers: int, fractions: dict[str, float | None]) -> list[list[str]]:
    """The table's rows: for each family of ``fractions``, its dask training on ``workers``
    workers, each limited to that fraction of the window's size (None: no limit), and the
    local one, on ``rows`` rows ingested for the run."""
    body = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = run_worker(["bench.dask_window", "ingest", str(root), str(rows)], timeout=3600)
        window = int(data["frame_bytes"])
        for family, fraction in fractions.items():
            limit = None if fraction is None else int(window * fraction)
            shown = "-" if limit is None else megabytes(limit / 2**20)
            dask_run, peaks = _on_cluster(root, family, limit, workers)
            local = run_worker(
                ["bench.dask_window", "train", str(root), "local", "-", family], timeout=5400
            )
            size = f"{rows:,} x {len(FEATURES)}"
            body.append([
                f"{family}, dask ({workers} workers)", size, megabytes(window / 2**20),
                shown, ", ".join(megabytes(w) for w in peaks),
                megabytes(dask_run["peak_mb"]), seconds(dask_run["seconds"]),
                f"{dask_run['accuracy']:.4f} ({dask_run['accuracy'] - local['accuracy']:+.4f})",
            ])  # fmt: skip
            body.append([
                f"{family}, local", size, megabytes(window / 2**20), "-", "-",
                megabytes(local["peak_mb"]), seconds(local["seconds"]),
                f"{local['accuracy']:.4f}",
            ])  # fmt: skip
    return body


HEADER = [
    "engine", "rows x features", "window (frame in memory)", "worker memory_limit",
    "worker peak RSS", "training process peak RSS", "wall", "holdout accuracy (vs local)",
]  # fmt: skip


def page(rows: int, body: list[list[str]]) -> str:
    """The benchmark's section of docs/benchmarks.md around its table."""
    return (
        "## Dask: the training window read on the workers, memory per process\n\n"
        f"{rows:,} rows x {len(FEATURES)} numeric features, 40 rounds, `training.choice` off, "
        "2 worker processes of 1 thread. The window's size is the frame a local training "
        "holds, `memory_usage(deep=True)` (ids, event times, target, float64 features). A "
        "worker's `memory_limit` is the one shown (-: none); spilling and pausing are off, "
        "the nanny's terminate (at 95% of a limit) on.\n\n"
        + table(HEADER, body)
        + "\n\nThe window's frame is not kept on the workers: every pass (summaries, a column "
        "at a time for the quality checks and reference statistics, the holdout, each fit's "
        "matrices) reads its partitions from the store again, the columns it needs. During a "
        "fit a worker holds the float32 matrix of its share of the rows; LightGBM's Dask "
        "interface concatenates a worker's parts (a second copy) and bins them; XGBoost "
        "quantises them a partition at a time (`DaskQuantileDMatrix`, 1 byte per value). "
        "The training process holds the holdout (the newest 20% of rows), a column at a "
        "time and per-partition summaries.\n\n"
        "A worker still needs more memory than this window: its imports and the reading of a "
        "partition take about 490 MB whatever the window (a 200,000-row run peaks at "
        "490-545 MB per worker), and the rest grows with its share of the rows. With each "
        "worker's `memory_limit` at 90% of the window on 4,800,000 rows (about 0.98 GB of a "
        "1.08 GB window) an XGBoost worker went past 95% of it and its nanny restarted it. "
        "More workers divide the share: the next section trains a window larger than each "
        "worker's memory limit on 4. Rerun: `python -m bench --only dask`.\n"
    )


def main(argv: list[str]) -> None:
    cmd, root = argv[0], Path(argv[1])
    if cmd == "ingest":
        emit(ingest(root, int(argv[2])))
    else:
        emit(train_once(root, argv[2], None if argv[3] == "-" else argv[3], argv[4]))


if __name__ == "__main__":
    main(sys.argv[1:])

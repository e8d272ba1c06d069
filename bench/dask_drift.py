"""A drift check over the prediction log: local against the Dask engine (2 workers).

The drift benchmark's data (:mod:`bench.drift`: 40 numeric features of 8 shapes, 10
categorical, the same seeded drift) goes through the real path: the reference statistics of
N training rows are stored with a registered champion, and N current rows are logged into a
SQLite store's prediction log as batch predictions (Parquet inputs of BATCH rows each, what
``retrainer predict`` on a file logs). Then ``check_drift`` runs, each in a fresh process:

- ``local``: ``training.engine: local``, the window read and compared in the checking
  process (every numeric value of the window kept, sorted once per feature);
- ``dask``: ``training.engine: dask`` against a LocalCluster of 2 worker processes of 1
  thread, started for the measurement: the window read, counted and compared on the workers
  (:mod:`retrainer.lifecycle.dask_drift`).

Reported: wall time of two checks in a row (the first on a fresh cluster includes the
workers' imports of pandas, scipy and retrainer), peak RSS of the checking process
(``ru_maxrss``) and of each worker (read from the worker at the end; its imports included),
and whether the two reports agree (the largest difference of any statistic, the verdicts).

Workers: ``python -m bench.dask_drift {setup,check} DIR ...``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import emit, megabytes, run_worker, seconds, table
from .drift import CATEGORICAL, NUMERIC, chunk_arrays

FULL_ROWS, QUICK_ROWS = (100_000, 1_000_000), (20_000,)
BATCH = 5_000  # rows a logged batch input holds
MODEL = "m"
STATS = ("psi", "ks", "ks_p_value", "jensen_shannon", "wasserstein", "chi2", "chi2_p_value")


def _workspace(root: Path, scheduler: str | None) -> Any:
    from retrainer.core.spec import parse_spec
    from retrainer.plumbing.workspace import Workspace

    training: dict[str, Any] = {"engine": "local"}
    if scheduler is not None:
        training = {"engine": "dask", "scheduler": scheduler, "choice": {"enabled": False}}
    body = {
        "store": f"sqlite:///{root / 'store.db'}",
        "artifacts": str(root / "art"),
        "models": {
            MODEL: {
                "task": "classification",
                "target": "y",
                "id_column": "id",
                "time_column": "t",
                "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
                "family": "lightgbm",
                "training": training,
            }
        },
    }
    return Workspace(parse_spec(body, environ={}))


def setup(root: Path, rows: int) -> dict[str, Any]:
    """Register a champion with the reference of ``rows`` training rows; log ``rows``
    current rows as batch inputs."""
    from datetime import datetime, timedelta

    import pandas as pd
    import pyarrow as pa

    from retrainer.core.entities import ModelVersion
    from retrainer.monitoring.reference import ReferenceStats
    from retrainer.store.predlog import request_record
    from retrainer.store.segments import encode

    ws = _workspace(root, None)
    ref = pd.DataFrame(chunk_arrays("reference", 0, rows))
    reference = ReferenceStats.from_frame(ref, NUMERIC, CATEGORICAL, model_version="1.0.0")
    del ref
    at = datetime(2026, 1, 1)
    draft = ModelVersion(
        MODEL, "0.0.0", None, "lightgbm", {}, at, "manual", "bench", "initial", at, at, rows,
        "f" * 64, {"numeric": NUMERIC, "categorical": CATEGORICAL}, {}, "mem://x", "0" * 64,
        None, 1, details={"reference": reference.to_dict()},
    )  # fmt: skip
    ws.store.register(draft, "major", deploy=True)
    current = chunk_arrays("current", 0, rows)
    for i, lo in enumerate(range(0, rows, BATCH)):
        part = pd.DataFrame({c: a[lo : lo + BATCH] for c, a in current.items()})
        body = encode(pa.Table.from_pandas(part, preserve_index=False))
        n = len(part)
        when = at + timedelta(days=1, seconds=i)
        rec = request_record(MODEL, f"b{i}", "1.0.0", "champion", when, body, [None] * n, [0] * n)
        ws.store.log_predictions([rec])
    ws.close()
    return {"rows": rows, "store_mb": (root / "store.db").stat().st_size / 2**20}


def _cpu() -> float:
    """CPU seconds of this process so far (all its threads)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _workers_cpu(client: Any) -> float:
    """CPU seconds of every worker process so far (0 without a cluster)."""
    return 0.0 if client is None else float(sum(client.run(_cpu).values()))


def check(root: Path, scheduler: str | None) -> dict[str, Any]:
    import resource
    from datetime import datetime

    from distributed import Client

    from retrainer.lifecycle.drift_check import check_drift

    ws = _workspace(root, scheduler)
    workers = None if scheduler is None else Client(scheduler, set_as_default=False)
    walls, cpu, worker_cpu = [], [], []
    for _ in range(2):  # the first on a fresh cluster includes the workers' imports
        before = (time.perf_counter(), _cpu(), _workers_cpu(workers))
        result = check_drift(ws, MODEL, window="7d", now=datetime(2026, 1, 5))
        walls.append(time.perf_counter() - before[0])
        cpu.append(_cpu() - before[1])
        worker_cpu.append(_workers_cpu(workers) - before[2])
    ws.close()
    if workers is not None:
        workers.close()
    return {
        "seconds": walls,
        "cpu": cpu,
        "worker_cpu": worker_cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": result.rows,
        "drifted": list(result.summary.drifted),
        "features": {
            f.feature: {"drift": f.drift, **{k: getattr(f, k) for k in STATS}}
            for f in result.features
        },
    }


def _on_cluster(root: Path) -> tuple[dict[str, Any], list[float]]:
    """The check on a fresh LocalCluster of 2 workers, and each worker's peak RSS."""
    import resource

    from distributed import Client, LocalCluster

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        out = run_worker(["bench.dask_drift", "check", str(root), cluster.scheduler_address])
        peaks = sorted(client.run(peak).values())
    return out, peaks


def _walls(walls: list[float]) -> str:
    return ", ".join(seconds(w) for w in walls)


def _cpus(res: dict[str, Any]) -> str:
    """CPU seconds of the second check: checking process + workers."""
    own, workers = res["cpu"][1], res["worker_cpu"][1]
    return f"{own:.1f} s" + (f" + {workers:.1f} s" if workers else "")


def _agreement(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The largest difference of any statistic between two checks, and whether every
    verdict is the same."""
    worst = 0.0
    for name, fa in a["features"].items():
        fb = b["features"][name]
        for k in STATS:
            if fa[k] is not None or fb[k] is not None:
                worst = max(worst, abs(fa[k] - fb[k]))
    same = all(a["features"][n]["drift"] == b["features"][n]["drift"] for n in a["features"])
    return f"{worst:.1e}, verdicts {'identical' if same else 'DIFFER'}"


def run(quick: bool) -> str:
    body = []
    for rows in QUICK_ROWS if quick else FULL_ROWS:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            data = run_worker(["bench.dask_drift", "setup", str(root), str(rows)])
            local = run_worker(["bench.dask_drift", "check", str(root), "-"])
            dask, workers = _on_cluster(root)
        if dask["rows"] != rows or local["rows"] != rows:
            raise RuntimeError(f"checked {local['rows']} / {dask['rows']} rows, logged {rows}")
        size = f"{rows:,}"
        body.append([
            "local", size, megabytes(data["store_mb"]), _walls(local["seconds"]),
            _cpus(local),
            megabytes(local["peak_mb"]), "-", len(local["drifted"]), "",
        ])  # fmt: skip
        body.append([
            "dask (2 workers)", size, megabytes(data["store_mb"]), _walls(dask["seconds"]),
            _cpus(dask),
            megabytes(dask["peak_mb"]), ", ".join(megabytes(w) for w in workers),
            len(dask["drifted"]), _agreement(local, dask),
        ])  # fmt: skip
    header = [
        "engine", "logged rows", "store", "wall (first check, second)",
        "CPU of the second (checking process + workers)", "checking process peak RSS",
        "worker peak RSS", "features drifted", "largest difference vs local",
    ]  # fmt: skip
    return (
        "## Dask: drift check over the prediction log\n\n"
        f"`check_drift` over N logged rows of the drift benchmark's data ({len(NUMERIC)} "
        f"numeric, {len(CATEGORICAL)} categorical features), logged in a SQLite store as "
        f"batch inputs of {BATCH:,} rows (Parquet), against the stored reference of N "
        "training rows. Local: read and compared in the checking process. Dask: a "
        "LocalCluster of 2 worker processes of 1 thread started for the run; the workers "
        "read the log by ranges, count them, and compute KS and Wasserstein one feature per "
        "task; the checking process plans the ranges (one metadata query) and builds the "
        "report from the merged counts.\n\n"
        + table(header, body)
        + "\n\nThe checking process on Dask holds no logged values; the local check holds every "
        "numeric value of the window (8 bytes a value: 320 MB per million rows) and the frame "
        "being decoded. Each worker holds its ranges' numeric columns (about half the "
        "window's values with 2 workers) and, while it sorts it, one feature's column of the "
        "whole window. The Dask check is not faster on this machine: the local check already "
        "has a core of the two, and the partitioned one does more work (each range counted in "
        "the reference's decile bins, each column sent to the worker that sorts it, two "
        "worker processes sharing 2 vCPUs with the checking process and the scheduler), so "
        "its CPU is several times the local check's. What it buys is that no process needs "
        "the window's memory, and on a cluster of machines the reads and the per-feature "
        "statistics run side by side. Every statistic equals the local check's. The machine "
        "was shared with other runs (load average 4 to 11 on 2 CPUs): wall times are noisy, "
        "CPU seconds and peak RSS less so. Rerun: `python -m bench --only dask-drift`.\n"
    )


def main(argv: list[str]) -> None:
    cmd, root = argv[0], Path(argv[1])
    if cmd == "setup":
        emit(setup(root, int(argv[2])))
    else:
        emit(check(root, None if argv[2] == "-" else argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])

"""Ingestion benchmark: ``retrainer ingest`` against the physical floor, on the same file.

N labelled rows of a churn-like table (an integer id, a timestamp, a 0/1 target, 20 numeric
features rounded to 4 decimals with 1% missing in five of them, 2 categorical ones; seeded
numpy) are written once as CSV and once as Parquet into a temporary folder under the
git-ignored ``bench/.work``. For each file, in its own process each (peak RSS apart; quick
mode runs them in this process, where start-up would outweigh the work):

- retrainer: ``ingest_file`` (what ``retrainer ingest`` calls) into a fresh SQLite workspace,
  then the same file again (rows are de-duplicated by id and time, so the second pass must
  add none);
- floor: ``pandas.read_csv`` / ``read_parquet`` of the file and a write of the same rows to
  Parquet (pyarrow), with no validation: what storing the rows columnar costs at least.

retrainer's store is checked afterwards: the row count equals N and a sample of rows holds
the file's target and features.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import WORK, emit, megabytes, peak_rss_mb, rss_mb, run_worker, seconds, table

MODEL = "churn"
FULL, QUICK = 250_000, 20_000  # 1M rows: about 5 minutes and 3.5 GB here (2 cores)
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = ["region", "plan"]
FEATURES = [*NUMERIC, *CATEGORICAL]
SAMPLE = 200  # rows compared between the two databases


def make_frame(n: int, seed: int = 7) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {
        "id": np.arange(1, n + 1),
        "event_time": pd.Timestamp("2030-01-01") + pd.to_timedelta(np.arange(n) * 30, "s"),
    }
    for i, name in enumerate(NUMERIC):
        if i % 4 == 0:
            x = rng.lognormal(3, 1, n)  # amounts
        elif i % 4 == 1:
            x = rng.poisson(4, n).astype(float)  # counts
        else:
            x = rng.normal(i, 1 + i / 10, n)
        x = np.round(x, 4)
        if i < 5:
            x[rng.random(n) < 0.01] = np.nan
        cols[name] = x
    cols["region"] = rng.choice([f"r{k:02d}" for k in range(12)], n)
    plan = rng.choice(np.array(["free", "basic", "pro", "team"], dtype=object), n)
    plan[rng.random(n) < 0.005] = None
    cols["plan"] = plan
    cols["churned"] = (rng.random(n) < 0.2).astype(int)
    return pd.DataFrame(cols)


def _spec(db: Path) -> Any:
    from retrainer.core.spec import parse_spec

    return parse_spec(
        {
            "store": f"sqlite:///{db}",
            "artifacts": "memory://bench-ingestion",
            "models": {
                MODEL: {
                    "task": "classification",
                    "target": "churned",
                    "id_column": "id",
                    "time_column": "event_time",
                    "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
                }
            },
        },
        environ={},
    )


def worker_retrainer(path: Path, db: Path, n: int) -> dict[str, Any]:
    from retrainer.lifecycle.ingest import ingest_file
    from retrainer.plumbing.workspace import Workspace

    with Workspace(_spec(db)) as ws:
        base = rss_mb()
        started = time.perf_counter()
        first = ingest_file(ws, MODEL, path)
        first_s = time.perf_counter() - started
        peak = peak_rss_mb()
        assert (first.inserted, first.duplicates, first.rejected) == (n, 0, 0), first
        assert ws.store.count_training_rows(MODEL) == n
        started = time.perf_counter()
        again = ingest_file(ws, MODEL, path)
        again_s = time.perf_counter() - started
        assert (again.inserted, again.duplicates, again.rejected) == (0, n, 0), again
        stored = ws.store.count_training_rows(MODEL)
        assert stored == n, stored
    return {
        "seconds": first_s,
        "base_mb": base,
        "peak_mb": peak,
        "again_seconds": again_s,
        "again_inserted": again.inserted,
        "again_duplicates": again.duplicates,
        "stored": stored,
    }


def worker_floor(path: Path, db: Path, n: int) -> dict[str, Any]:
    import pandas as pd

    base = rss_mb()
    started = time.perf_counter()
    df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    out = db.with_suffix(".parquet")
    df.to_parquet(out, index=False)
    write_s = time.perf_counter() - started
    peak = peak_rss_mb()
    assert len(df) == n, len(df)
    return {
        "read_seconds": read_s,
        "write_seconds": write_s,
        "seconds": read_s + write_s,
        "base_mb": base,
        "peak_mb": peak,
        "stored": len(df),
        "parquet_mb": out.stat().st_size / 1e6,
    }


WORKERS = {"retrainer": worker_retrainer, "floor": worker_floor}


def _same_rows(ours: Path, source: Path, n: int) -> None:
    """Fail unless a sample of ids holds the file's target and features in retrainer's store."""
    import pandas as pd

    from retrainer.plumbing.workspace import Workspace

    ids = [str(1 + i * (n - 1) // (SAMPLE - 1)) for i in range(SAMPLE)]
    df = pd.read_csv(source) if source.suffix == ".csv" else pd.read_parquet(source)
    want = df.assign(id=df["id"].astype(str)).set_index("id").loc[ids]
    with Workspace(_spec(ours)) as ws:
        got = ws.store.training_frame(MODEL).set_index("entity_id").loc[ids]
    assert (got["target"].astype(int) == want["churned"].astype(int)).all()
    for col in NUMERIC:
        a, b = got[col].to_numpy(float), want[col].to_numpy(float)
        assert ((a == b) | (pd.isna(a) & pd.isna(b))).all(), col
    for col in CATEGORICAL:
        assert (got[col].astype(str) == want[col].astype(str)).all(), col


def run(quick: bool) -> str:
    n = QUICK if quick else FULL
    WORK.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, Any]] = {}
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=WORK, prefix="ingestion-") as tmp:
        folder = Path(tmp)
        df = make_frame(n)
        files = {"CSV": folder / "rows.csv", "Parquet": folder / "rows.parquet"}
        df.to_csv(files["CSV"], index=False)
        df.to_parquet(files["Parquet"], index=False)
        del df
        for fmt, path in files.items():
            sizes[fmt] = path.stat().st_size / 1e6
            dbs = {w: folder / f"{w}-{path.suffix[1:]}.db" for w in WORKERS}
            for w, db in dbs.items():
                print(f"   ingestion {w} {fmt} n={n:,}", file=sys.stderr, flush=True)
                if quick:  # in this process: a worker's start-up would take longer than its work
                    result = WORKERS[w](path, db, n)
                    del result["base_mb"], result["peak_mb"]
                else:
                    result = run_worker(["bench.ingestion", w, str(path), str(db), str(n)])
                results[f"{fmt} {w}"] = result
            _same_rows(dbs["retrainer"], path, n)
    load_after = os.getloadavg()[0]
    return render(results, sizes, n, quick, (load_before, load_after))


def render(
    results: dict[str, dict[str, Any]],
    sizes: dict[str, float],
    n: int,
    quick: bool,
    loads: tuple[float, float],
) -> str:
    def rate(s: float) -> str:
        return f"{n / s:,.0f}"

    def memory(r: dict[str, Any]) -> str:
        if "peak_mb" not in r:
            return "—"
        return f"{megabytes(r['peak_mb'])} (+{megabytes(r['peak_mb'] - r['base_mb'])})"

    rows = []
    for fmt in sizes:
        ours, floor = results[f"{fmt} retrainer"], results[f"{fmt} floor"]
        rows.append(
            [
                f"{fmt}: floor (pandas read + Parquet write)",
                seconds(floor["read_seconds"]),
                seconds(floor["write_seconds"]),
                seconds(floor["seconds"]),
                rate(floor["seconds"]),
                "1.00",
                memory(floor),
            ]
        )
        rows.append(
            [
                f"{fmt}: retrainer `ingest_file`",
                "—",
                "—",
                seconds(ours["seconds"]),
                rate(ours["seconds"]),
                f"**{ours['seconds'] / floor['seconds']:.1f}**",
                memory(ours),
            ]
        )
    again = []
    for fmt in sizes:
        ours = results[f"{fmt} retrainer"]
        again.append(
            [
                fmt,
                seconds(ours["again_seconds"]),
                f"{ours['again_inserted']:,}",
                f"{ours['again_duplicates']:,}",
                f"{ours['stored']:,}",
                f"{ours['again_seconds'] / ours['seconds']:.2f}",
            ]
        )
    files = ", ".join(f"{fmt} {megabytes(mb)}" for fmt, mb in sizes.items())
    load_before, load_after = loads
    return "\n".join(
        [
            "## Ingestion: `retrainer ingest` vs the physical floor",
            "",
            "```",
            "python -m bench --only ingestion" + (" --quick" if quick else ""),
            "```",
            "",
            f"{n:,} labelled rows (integer id, timestamp, 0/1 target, {len(NUMERIC)} numeric "
            f"features with 1% missing in five, {len(CATEGORICAL)} categorical; seeded numpy), "
            f"one file per format ({files}), each ingested into a fresh SQLite store. Floor: "
            "pandas reads the file and pyarrow writes the same rows to Parquet, with no "
            "validation. retrainer: `ingest_file`, the call behind `retrainer ingest` (read a "
            "chunk at a time, validate every row, de-duplicate by id and time, write columnar "
            "segments into the store in one transaction). "
            + (
                "Quick mode: all in one process, so no peak memory."
                if quick
                else "Each in its own process; peak RSS with the growth over the process before "
                "the read in brackets."
            )
            + f" The store holds N rows, and a sample of {SAMPLE} holds the file's target and "
            "features.",
            "",
            table(
                [
                    "path",
                    "read",
                    "write",
                    "total",
                    "rows/s",
                    "time ratio to floor",
                    "peak RSS (growth)",
                ],
                rows,
            ),
            "",
            "### Re-ingesting the same file",
            "",
            "The same file again into the same store: every (id, time) is already stored, so "
            "nothing is added. A row whose id and time are stored counts as a duplicate whatever "
            "its values: a corrected label sent again under the same id and time is not "
            "applied. The check reads only the segments of the file's time range.",
            "",
            table(
                [
                    "file",
                    "wall time",
                    "inserted",
                    "duplicates",
                    "rows stored after",
                    "time vs first ingest",
                ],
                again,
            ),
            "",
            f"Load average (1 min) on this shared {os.cpu_count()}-core machine: "
            f"{load_before:.1f} before, {load_after:.1f} after.",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingestion", description="one worker")
    parser.add_argument("worker", choices=sorted(WORKERS))
    parser.add_argument("path", type=Path)
    parser.add_argument("db", type=Path)
    parser.add_argument("rows", type=int)
    args = parser.parse_args(argv)
    emit(WORKERS[args.worker](args.path, args.db, args.rows))


if __name__ == "__main__":
    main()

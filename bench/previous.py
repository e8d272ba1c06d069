"""The previous actual's data path at 100,000 and 1,000,000 stored rows: what filling the
column costs a training read and a batch prediction, beside the floor (the same lookup on
arrays already in memory) and pandas' ``merge_asof`` (the peer a hand-written job would use).

A regression of 8 numeric features; ``n`` rows one a minute (1,000,000 rows: 694 days),
ingested into a fresh SQLite store (untimed). Timed, each once after a warm-up read:

- the training read: ``sources.training_frame`` then ``time_inputs.with_time_inputs`` (the
  previous-actual column: one read of the newest row before the window, a sort and a binary
  search per row) against ``store.training_frame`` alone (the rows without the column);
- a batch's lookup: ``time_inputs.stored_inputs`` for ``n`` rows to score whose times
  span the stored rows (every stored row between them is read: the worst case, a batch as
  long as the store), against the floor (``searchsorted`` on the stored times and actuals
  already in memory) and ``pandas.merge_asof`` on the same frames in memory;

Every path's values are checked to be the same. Peak RSS is the process's so far.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from typing import Any

from .common import WORK, megabytes, peak_rss_mb, table

FULL, QUICK = (100_000, 1_000_000), (20_000,)
FEATURES = [f"f{i}" for i in range(8)]


def _frame(n: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.random((n, len(FEATURES)))
    df = pd.DataFrame(x, columns=FEATURES)
    df.insert(0, "at", pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="min"))
    df.insert(0, "row_id", [f"r{i}" for i in range(n)])
    df["y"] = np.cumsum(rng.normal(0, 1, n))
    return df


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def measure_one(n: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from retrainer.core.spec import parse_spec
    from retrainer.lifecycle.ingest import ingest_frame
    from retrainer.lifecycle.sources import training_frame
    from retrainer.lifecycle.time_inputs import (
        PREVIOUS,
        TimeInputs,
        stored_inputs,
        with_time_inputs,
    )
    from retrainer.plumbing.workspace import Workspace

    folder = WORK / f"previous-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    raw = {
        "store": f"sqlite:///{folder / 'r.db'}",
        "artifacts": str(folder / "a"),
        "models": {
            "m": {
                "task": "regression",
                "target": "y",
                "id_column": "row_id",
                "time_column": "at",
                "features": {"numeric": FEATURES},
            }
        },
    }
    df = _frame(n)
    with Workspace(parse_spec(raw, environ={})) as ws:
        spec = ws.model_spec("m")
        ingest_frame(ws, "m", df)
        ws.store.training_frame("m")  # warm the file cache
        plain_s, plain = _timed(ws.store.training_frame, "m")
        inputs = TimeInputs(previous_actual=True)
        read_s, frame = _timed(lambda: with_time_inputs(ws, spec, training_frame(ws, spec), inputs))
        batch = df.drop(columns=["y"]).assign(at=df["at"] + pd.Timedelta(seconds=30))
        lookup_s, found = _timed(stored_inputs, ws, spec, batch, inputs)
        looked = found[PREVIOUS]
    at = plain["event_time"].to_numpy(dtype="datetime64[ns]")
    y = plain["target"].to_numpy(dtype=np.float64)
    times = batch["at"].to_numpy(dtype="datetime64[ns]")

    def floor() -> Any:
        idx = np.searchsorted(at, times, side="left") - 1
        out = np.full(len(times), np.nan)
        out[idx >= 0] = y[idx[idx >= 0]]
        return out

    floor_s, floored = _timed(floor)
    left = pd.DataFrame({"at": times})
    right = pd.DataFrame({"at": at, "y": y})
    peer_s, merged = _timed(lambda: pd.merge_asof(left, right, on="at", allow_exact_matches=False))
    assert np.allclose(looked, floored, equal_nan=True), "the lookup differs from the floor"
    assert np.allclose(merged["y"], floored, equal_nan=True), "merge_asof differs"
    assert np.allclose(frame[PREVIOUS].iloc[1:], y[:-1]), "the training column is not y[t-1]"
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "rows": n,
        "plain": plain_s,
        "read": read_s,
        "lookup": lookup_s,
        "floor": floor_s,
        "peer": peer_s,
        "rss": peak_rss_mb(),
    }


def measure(sizes: Sequence[int]) -> list[dict[str, Any]]:
    return [measure_one(n) for n in sizes]


def run(quick: bool) -> str:
    results = measure(QUICK if quick else FULL)
    heads = ["stored rows", "training read, rows only", "with the previous actual",
             "column's cost", "batch lookup (rows to score = stored rows)", "per row",
             "floor: searchsorted in memory", "pandas merge_asof in memory",
             "peak RSS (so far)"]  # fmt: skip
    rows = [
        [
            f"{r['rows']:,}", f"{r['plain']:.2f} s", f"{r['read']:.2f} s",
            f"{(r['read'] - r['plain']) / r['plain']:+.0%}", f"{r['lookup']:.2f} s",
            f"{r['lookup'] / r['rows'] * 1e6:.2f} µs", f"{r['floor'] * 1e3:.0f} ms",
            f"{r['peer'] * 1e3:.0f} ms", megabytes(r["rss"]),
        ]
        for r in results
    ]  # fmt: skip
    text = (
        "A regression of 8 numeric features whose rows come one a minute, stored in a fresh "
        "SQLite file (ingest untimed). The training read is `sources.training_frame` then "
        "`time_inputs.with_time_inputs` (each row's previous actual: one read of the newest "
        "stored row before the window, a sort and a binary search per row) against "
        "`store.training_frame` alone. The batch lookup is `time_inputs.stored_inputs` for "
        "as many rows to score as are stored, spanning them (every stored row between the "
        "batch's first and last time is read: the worst case), against the floor, "
        "`numpy.searchsorted` on the stored times and actuals already in memory, and "
        "`pandas.merge_asof` on the same frames; all three give the same values, and the "
        "training column is each row's predecessor's actual. "
        "`python -m bench --only previous`."
    )
    return (
        "## The previous actual: the column on a training read and a batch's lookup\n\n"
        + text
        + "\n\n"
        + table(heads, rows)
        + "\n"
    )


if __name__ == "__main__":
    print(run(quick=True))

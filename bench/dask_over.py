"""A training window larger than each Dask worker's memory limit.

The ``dask`` benchmark's model and data (:mod:`bench.dask_window`), on more rows and more
workers: 7,200,000 rows x 24 numeric features, 4 worker processes of 1 thread, each worker's
``memory_limit`` :data:`FRACTION` of the window's in-memory size (the frame a local
training holds). Spilling and pausing are off and the nanny's terminate (at 95% of the
limit) on, so a worker that needed the window, or more than the limit, would be killed and
the run would fail: a row of the table is a training that stayed under. The local engine
trains the same rows in one process, for the memory and the accuracy it is compared with.
"""

from __future__ import annotations

from .common import table
from .dask_window import FAMILIES, FEATURES, HEADER, QUICK_ROWS, measure

ROWS = 7_200_000
WORKERS = 4
FRACTION = 0.85  # each worker's memory_limit, of the window's size


def run(quick: bool) -> str:
    rows = QUICK_ROWS if quick else ROWS
    fraction = None if quick else FRACTION  # a quick window is smaller than a worker's imports
    body = measure(rows, WORKERS, dict.fromkeys(FAMILIES, fraction))
    return page(rows, body)


def page(rows: int, body: list[list[str]]) -> str:
    """The benchmark's section of docs/benchmarks.md around its table."""
    return (
        "## Dask: a window larger than each worker's memory limit\n\n"
        f"{rows:,} rows x {len(FEATURES)} numeric features, 40 rounds, `training.choice` off, "
        f"{WORKERS} worker processes of 1 thread on this machine's 2 CPUs, each with the "
        f"`memory_limit` shown ({FRACTION:.0%} of the window, the frame a local training "
        "holds, `memory_usage(deep=True)`; none in a quick run, whose window is smaller than "
        "a worker's imports); spilling and pausing off, the nanny's terminate (at 95% "
        "of the limit) on, so a worker that needed the window would have been killed and the "
        "run would have failed.\n\n"
        + table(HEADER, body)
        + "\n\nNo worker holds the window: each reads its partitions' columns from the store "
        "for every pass and holds the float32 matrix of its share of the rows during a fit "
        "(LightGBM's Dask interface a second, concatenated copy; XGBoost 1 byte a value once "
        "quantised), on top of about 490 MB of imports and a partition's reading. A worker's "
        "peak is therefore about 490 MB plus 1.5 times its share of the window (2,400,000 "
        "rows on 2 workers: 814-889 MB), under the window once the share is small enough: "
        f"here 1/{WORKERS} of it. Accuracy is the holdout's against the local engine's on the "
        "same rows. The wall times are 4 workers and the training process sharing 2 CPUs; "
        "on a cluster of machines the workers' passes run side by side. "
        "Rerun: `python -m bench --only dask-over`.\n"
    )

"""The monitor's fold of the prediction log on a Dask cluster.

For a model the drift check runs on the cluster for (``training.engine: dask`` and a store
the workers can open, :func:`retrainer.lifecycle.dask_drift.unsupported`), the predictions
above the monitor's watermark are cut into id ranges from one query
(:func:`retrainer.store.monitor_reads.plan_prediction_ranges`), each range is read and folded
into hour buckets by a worker (:func:`~retrainer.store.monitor_reads.fold_prediction_range`
with the monitor's own folder, a pure function of the rows), the buckets are summed on the
cluster, and this process adds the sums and moves the watermark in one transaction
(:meth:`~retrainer.store.monitor_store.MonitorStore.add_folded_predictions`): the buckets of
the local fold (sums in another order: floats equal within rounding).

The actuals are folded afterwards by the local fold, in this process: their labelled pairs
feed state that follows the log's order (the error stream of concept drift and the naive
baselines' last values), and they are a small part of the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..core.errors import DistributedError, RetrainerError
from ..core.spec import ModelSpec
from ..families import dask_faults
from ..plumbing.workspace import Workspace
from ..store.monitor_reads import fold_prediction_range, plan_prediction_ranges
from ..store.monitor_store import STATS
from .dask_engine import connect, where
from .dask_rows import store_url

Fold = Callable[[Sequence[Any]], list[dict[str, Any]]]
log = logging.getLogger(__name__)


def fold_predictions(ws: Workspace, spec: ModelSpec, fold: Fold) -> int:
    """Fold ``spec``'s predictions above the watermark on the cluster (see the module
    docstring); returns how many were folded (0 when another fold moved the watermark
    meanwhile: the local fold then takes them). DistributedError naming the scheduler when it
    cannot be reached or the cluster fails; nothing is added then. At most one range
    (FOLD_CHUNK predictions) is left to the local fold: 0."""
    url = store_url(ws)
    assert url is not None  # dask_drift.unsupported() said so before
    after = ws.store.prediction_watermark(spec.name)
    ranges = plan_prediction_ranges(ws.store, spec.name, after)
    if len(ranges) <= 1:  # one local fold's chunk: the cluster would only add its overhead
        return 0
    with connect(spec.training, "The monitor folded nothing") as client:
        try:
            buckets = _compute(client, url, spec.name, ranges, fold)
        except RetrainerError:
            raise
        except Exception as exc:
            raise DistributedError(
                f"The monitor's fold of {spec.name!r} on the Dask engine "
                f"({where(spec.training)}) failed: {type(exc).__name__}: {exc}. Nothing was "
                "folded; check the cluster's workers and run the monitor again",
                stage="monitor",
            ) from exc
    upto = ranges[-1][1]
    if not ws.store.add_folded_predictions(spec.name, after, upto, buckets):
        log.info("%s: another fold moved the watermark; the local fold takes over", spec.name)
        return 0
    return int(sum(b.get("n_pred", 0) for b in buckets))


def _compute(
    client: Any, url: str, model: str, ranges: list[tuple[int, int]], fold: Fold
) -> list[dict[str, Any]]:
    import dask

    read = dask.delayed(_fold_range, pure=True)
    lose = dask_faults.task_folder()  # a test's lost worker; None in production
    parts = [read(url, model, ids, fold, lose) for ids in ranges]
    add = dask.delayed(sum_buckets, pure=True)
    while len(parts) > 1:  # pairwise, log2(len) levels deep
        pairs = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    result: list[dict[str, Any]] = client.compute(parts[0]).result()
    return result


def _fold_range(
    url: str, model: str, ids: tuple[int, int], fold: Fold, lose: str | None
) -> list[dict[str, Any]]:
    """On a worker: one id range folded (``lose``: the test hook's directory)."""
    dask_faults.lose_in_task(lose)
    return fold_prediction_range(url, model, ids, fold)


def sum_buckets(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bucket rows of two folds summed by (version, arm, hour).

    >>> h = "2026-01-01 10:00"
    >>> sum_buckets([{"version": "1", "arm": "c", "hour": h, "n_pred": 2}],
    ...             [{"version": "1", "arm": "c", "hour": h, "n_pred": 3}])[0]["n_pred"]
    5
    """
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in (*a, *b):
        key = (row["version"], row["arm"], row["hour"])
        acc = merged.get(key)
        if acc is None:
            merged[key] = dict(row)
            continue
        for s in STATS:
            if s in row:
                acc[s] = acc.get(s, 0) + row[s]
    return list(merged.values())

"""A drift check over the prediction log read in partitions on a Dask cluster.

For a model with ``training.engine: dask`` and a store the workers can open (a SQLite file
or PostgreSQL, as for training: :func:`retrainer.lifecycle.dask_rows.store_url`), the
window's logged inputs never come to the process that runs the check:

- the window is cut into ranges of inputs from the store's metadata
  (:func:`retrainer.store.predlog_reads.plan_input_ranges`: positions and keys, no bodies);
- each range is read by a worker from the store by its URL and decoded into the same frames
  as a local check reads (:func:`~retrainer.store.predlog_reads.read_input_range`); the
  worker counts them (:class:`~retrainer.monitoring.window.WindowCounts`: missing values,
  decile bins, categorical counts) and keeps the numeric features as one partition of a
  ``dask.dataframe``;
- the counts are merged on the cluster, and one task per numeric feature gathers that
  column of every partition on one worker, sorts its finite values and computes KS and
  Wasserstein against the reference sketch (:func:`~retrainer.monitoring.drift.numeric_distances`);
- the process that runs the check gets the merged counts and two numbers per numeric
  feature, and builds the report with the local check's code
  (:func:`~retrainer.monitoring.drift.report_from_counts`): the same values.

So no process holds the window: a worker holds its partitions' numeric columns (8 bytes a
value) and, while it computes one feature's statistics, that one column of the window.

The cluster is used when it pays: a named ``training.scheduler`` (a standing cluster; a
LocalCluster started for one check costs seconds and more memory on the same machine than
the check itself, ``python -m bench --only dask-drift``) and a window of more than one
range (:data:`~retrainer.store.predlog_reads.BUDGET_BYTES`, about 8,000 JSON inputs or 8 MB
of batches). Otherwise the check reads the window in this process, as without Dask; the
results are the same either way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import DistributedError, RetrainerError
from ..core.spec import ModelSpec
from ..families import dask_faults
from ..monitoring.drift import FeatureDrift, numeric_distances, report_from_counts
from ..monitoring.reference import ReferenceStats
from ..monitoring.window import WindowCounts
from ..plumbing.workspace import Workspace
from ..store.predlog_reads import InputRange, plan_input_ranges, read_input_range
from .dask_engine import connect, where
from .dask_rows import store_url


def unsupported(ws: Workspace, spec: ModelSpec) -> str | None:
    """Why ``spec``'s drift check reads the window in this process, or None when it may read
    it on the Dask cluster (``training.engine: dask``, a ``training.scheduler`` and a store
    the workers can open; :func:`window_report` still keeps a one-range window here).

    >>> from retrainer.core.spec import parse_spec
    >>> m = {"task": "classification", "target": "y", "id_column": "id",
    ...      "time_column": "t", "features": {"numeric": ["x"]}}
    >>> spec = parse_spec({"models": {"m": m}}, environ={})
    >>> unsupported(None, spec.models["m"])
    'engine: local'
    """
    if spec.training.engine != "dask":
        return "engine: local"
    if spec.training.scheduler is None:
        return "no training.scheduler (a LocalCluster for one check costs more than the check)"
    if store_url(ws) is None:
        return "an in-memory SQLite store (the workers cannot open it)"
    return None


def window_report(
    ws: Workspace,
    spec: ModelSpec,
    reference: ReferenceStats,
    since: datetime,
    until: datetime,
) -> tuple[int, list[FeatureDrift]] | None:
    """The rows of ``spec``'s logged window [since, until] and its drift report against
    ``reference``, read and computed on the cluster (see the module docstring); None when
    the window is one range (the caller reads it: a cluster would only add its overhead).
    DistributedError naming the scheduler when it cannot be reached or the cluster fails."""
    url = store_url(ws)
    assert url is not None  # unsupported() said so before
    ranges = plan_input_ranges(ws.store, spec.name, since, until)
    if len(ranges) <= 1:
        return None
    with connect(spec.training, "The drift check read nothing and stored nothing") as client:
        try:
            counts, distances = _compute(client, url, spec.name, since, until, ranges, reference)
        except RetrainerError:  # raised by a worker (a feature that is not numbers): as is
            raise
        except Exception as exc:
            raise DistributedError(
                f"The drift check of {spec.name!r} on the Dask engine "
                f"({where(spec.training)}) failed: {type(exc).__name__}: {exc}. Nothing was "
                "stored; check the cluster's workers and run the check again",
                stage="drift",
            ) from exc
    return counts.n_rows, report_from_counts(reference, counts.result(), distances, spec.drift)


def _compute(
    client: Any,
    url: str,
    model: str,
    since: datetime,
    until: datetime,
    ranges: list[InputRange],
    reference: ReferenceStats,
) -> tuple[WindowCounts, dict[str, tuple[float, float]]]:
    import dask.dataframe as dd

    import dask

    if not ranges:
        return WindowCounts(reference), {}
    # once to every worker, as one object (a delayed argument would be walked value by value)
    ref = client.scatter(reference, broadcast=True, hash=False)
    read = dask.delayed(_read_part, pure=True, nout=2)
    lose = dask_faults.task_folder()  # a test's lost worker; None in production
    parts = [read(url, model, since, until, r, ref, lose) for r in ranges]
    meta = pd.DataFrame({c: pd.Series(dtype="float64") for c in reference.numeric})
    frame = dd.from_delayed([p[1] for p in parts], meta=meta, verify_meta=False)
    counts = _tree(dask.delayed(_merge, pure=True), [p[0] for p in parts])
    column = dask.delayed(_distances, pure=True)
    columns = {c: column(ref, c, frame[c].to_delayed()) for c in reference.numeric}
    futures = client.compute([counts, *columns.values()])
    merged, *found = client.gather(futures)
    return merged, {c: d for c, d in zip(columns, found, strict=True) if d is not None}


def _tree(merge: Any, items: list[Any]) -> Any:
    """Pairwise merges, log2(len) levels deep (no task waits on every partition)."""
    while len(items) > 1:
        pairs = [merge(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        items = pairs + ([items[-1]] if len(items) % 2 else [])
    return items[0]


def _read_part(
    url: str,
    model: str,
    since: datetime,
    until: datetime,
    part: InputRange,
    reference: ReferenceStats,
    lose: str | None = None,
) -> tuple[WindowCounts, pd.DataFrame]:
    """On a worker: one range of the window, counted, and its numeric features as floats
    (missing as NaN; each frame converted as a local check converts it). ``lose``: the
    test hook's directory (:mod:`retrainer.families.dask_faults`)."""
    dask_faults.lose_in_task(lose)
    counts = WindowCounts(reference)
    numeric: dict[str, list[np.ndarray]] = {c: [] for c in reference.numeric}
    for chunk in read_input_range(url, model, since, until, part):
        for c, arr in counts.update(chunk).items():
            numeric[c].append(arr)
    frame = pd.DataFrame({c: np.concatenate(v) if v else np.empty(0) for c, v in numeric.items()})
    return counts, frame


def _merge(a: WindowCounts, b: WindowCounts) -> WindowCounts:
    return a.merge(b)


def _distances(
    reference: ReferenceStats, feature: str, pieces: list[pd.Series]
) -> tuple[float, float] | None:
    """On a worker: one numeric feature's column of the window, finite values sorted, against
    the reference sketch; None without values on either side."""
    arr = np.concatenate([p.to_numpy(dtype=np.float64) for p in pieces]) if pieces else np.empty(0)
    values = arr[np.isfinite(arr)]
    del arr
    values.sort()
    ref = reference.numeric[feature]
    if len(values) == 0 or ref.count == 0:
        return None
    return numeric_distances(ref, values)

"""The monitor of a ``training.engine: dask`` model folds the prediction log on the workers,
in id ranges, into the local fold's hour buckets (counts equal, sums within 1e-9), then the
actuals in this process; a second fold continues from the watermark."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cluster_help import lose_one_worker, whole
from sqlalchemy import select

from retrainer.lifecycle import dask_monitor
from retrainer.lifecycle.dask_monitor import fold_predictions
from retrainer.lifecycle.feedback import record_feedback
from retrainer.lifecycle.monitor import monitor
from retrainer.plumbing.workspace import Workspace
from retrainer.store import monitor_reads
from retrainer.store import schema as t
from retrainer.store.predlog import request_record

pytest.importorskip("distributed")

MODEL = "weather"
NOW = datetime(2030, 1, 8, 12, 30)


def _log(ws: Workspace, seed: int, n: int) -> list[str]:
    """n requests scored by a champion and a shadow over 48 hours; returns their entities."""
    rng = np.random.default_rng(seed)
    records, ids = [], []
    for i in range(n):
        at = NOW - timedelta(minutes=int(rng.integers(0, 48 * 60)))
        entity = f"e{seed}-{i}"
        for version, arm in (("1.0.0", "champion"), ("1.1.0", "shadow")):
            proba = float(np.clip(rng.normal(0.5, 0.2), 0.01, 0.99))
            records.append(request_record(MODEL, f"r{seed}-{i}", version, arm, at, '{"rows": []}',
                                          [entity], [int(proba > 0.5)], [proba]))  # fmt: skip
        ids.append(entity)
    ws.store.log_predictions(records)
    return ids


def _buckets(ws: Workspace) -> list[dict[str, Any]]:
    c = t.monitor_aggregates.c
    q = select(t.monitor_aggregates).where(c.model == MODEL).order_by(c.version, c.arm, c.hour)
    with ws.store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


@pytest.mark.parametrize("lost", [False, True], ids=["", "a worker lost"])
def test_the_fold_on_the_workers_gives_the_local_buckets(
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lost: bool,
) -> None:
    """With ``lost``, the worker of the first range folded ends its process (the test hook
    of ``dask_faults``): Dask folds the lost ranges again on the other worker, and the buckets
    are still the local fold's."""
    tokens = lose_one_worker(tmp_path, monkeypatch) if lost else None
    try:
        _fold_both(scheduler, make_workspace, tmp_path, monkeypatch)
    finally:
        if tokens is not None:
            whole(scheduler)
    if tokens is not None:
        assert [p.name for p in tokens.iterdir()] == ["used-0"]


def _fold_both(
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(monitor_reads, "FOLD_CHUNK", 150)  # 4 ranges of the first 600
    on_cluster: list[int] = []

    def spy(*args: Any) -> int:
        on_cluster.append(fold_predictions(*args))
        return on_cluster[-1]

    monkeypatch.setattr(dask_monitor, "fold_predictions", spy)
    training = {"engine": "dask", "scheduler": scheduler, "window_days": 1500}
    spaces = {
        "local": make_workspace(store=f"sqlite:///{tmp_path / 'local.db'}"),
        "dask": make_workspace(store=f"sqlite:///{tmp_path / 'dask.db'}", training=training),
    }
    folded = {}
    for name, ws in spaces.items():
        ids = _log(ws, 1, 300)
        labelled = ids[::2]
        record_feedback(ws, MODEL, pd.DataFrame({"day_id": labelled, "rain": [1] * len(labelled)}))
        first = monitor(ws, MODEL, window="7d", now=NOW)
        _log(ws, 2, 100)
        second = monitor(ws, MODEL, window="7d", now=NOW)
        folded[name] = (first.folded, second.folded, _buckets(ws))
    assert on_cluster == [600, 200]  # the dask workspace's predictions, none of the local's
    local, dask = folded["local"], folded["dask"]
    assert dask[:2] == local[:2] == ({"predictions": 600, "actuals": 150},
                                     {"predictions": 200, "actuals": 0})  # fmt: skip
    assert len(dask[2]) == len(local[2]) > 48
    for a, b in zip(local[2], dask[2], strict=True):
        assert a.keys() == b.keys()
        for k, v in a.items():
            if isinstance(v, float):
                assert b[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
            else:
                assert b[k] == v, k

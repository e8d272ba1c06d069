"""The drift check of a ``training.engine: dask`` model reads the prediction log on the
workers, in ranges of inputs, and gives the local check's report: the same counts, and KS and
Wasserstein computed on the same sorted values (floats within 1e-9, identical verdicts), on a
SQLite file and on PostgreSQL. An unreachable scheduler is exit 1 naming it, nothing kept."""

from __future__ import annotations

import dataclasses
import math
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from cluster_help import lose_one_worker, whole
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.entities import ModelVersion
from retrainer.lifecycle import dask_drift, dask_engine
from retrainer.lifecycle.drift_check import DriftCheck, check_drift, last_drift
from retrainer.monitoring.reference import ReferenceStats
from retrainer.plumbing.workspace import Workspace
from retrainer.store import SqlStore, predlog_reads
from retrainer.store.predlog import request_record
from retrainer.store.segments import encode
from weather_spec import weather_model

pytest.importorskip("distributed")

MODEL = "weather"
NUMERIC = ["x", "price", "count"]
CATEGORICAL = ["plan", "code"]  # code: integers with missing values (floats in a frame)
DAY1 = datetime(2026, 3, 1)  # logged like the training rows
DAY2 = datetime(2026, 3, 2)  # drifted


def _frame(rng: np.random.Generator, n: int, drifted: bool) -> pd.DataFrame:
    x = rng.normal(0.6 if drifted else 0.0, 1.0, n)
    x[rng.random(n) < 0.03] = np.nan
    code = rng.integers(1, 5, n).astype(object)
    code[rng.random(n) < 0.05] = None
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.2, 0.3, 0.5] if drifted else None)
    plan[rng.random(n) < 0.02] = "enterprise" if drifted else "basic"  # unseen when drifted
    return pd.DataFrame(
        {
            "x": x,
            "price": np.round(rng.lognormal(3.0, 0.4, n), 2),
            "count": rng.poisson(6.0 if drifted else 5.0, n).astype(float),
            "plan": plan,
            "code": code,
        }
    )


def _register(store: SqlStore, rng: np.random.Generator) -> None:
    reference = ReferenceStats.from_frame(_frame(rng, 3000, False), NUMERIC, CATEGORICAL)
    at = datetime(2026, 2, 1)
    draft = ModelVersion(
        MODEL, "0.0.0", None, "lightgbm", {}, at, "manual", "test", "initial", at, at, 3000,
        "f" * 64, {"numeric": NUMERIC, "categorical": CATEGORICAL}, {}, "mem://x", "0" * 64,
        None, 1, details={"reference": reference.to_dict()},
    )  # fmt: skip
    store.register(draft, "major", deploy=True)


def _json(row: dict[str, Any]) -> str:
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
    return pd.io.json.ujson_dumps({"row": clean})  # type: ignore[attr-defined,no-any-return]


def _log_day(store: SqlStore, rng: np.random.Generator, day: datetime, drifted: bool) -> int:
    """1,300 one-row JSON requests, three 5-row JSON requests and two 300-row Parquet batches,
    interleaved: pages of 1,000 inputs, JSON runs cut by batches, ranges cut at both."""
    sizes = [1] * 700 + [5, 300, 5] + [1] * 600 + [300, 5]
    frame = _frame(rng, sum(sizes), drifted)
    records, i, at = [], 0, day
    for n in sizes:
        part, i, at = frame.iloc[i : i + n], i + n, at + timedelta(seconds=10)
        if n == 300:
            body: str | bytes = encode(pa.Table.from_pandas(part, preserve_index=False))
        elif n == 5:
            rows = [_json(r)[7:-1] for r in part.to_dict("records")]
            body = '{"rows": [' + ", ".join(rows) + "]}"
        else:
            body = _json(part.iloc[0].to_dict())
        records.append(request_record(MODEL, f"r{at}", "1.0.0", "champion", at, body,
                                      [None] * n, [0] * n))  # fmt: skip
    store.log_predictions(records)
    return len(frame)


def _same(local: DriftCheck, dask: DriftCheck) -> None:
    assert (dask.rows, dask.version, dask.since) == (local.rows, local.version, local.since)
    assert dask.summary == local.summary
    for a, b in zip(local.features, dask.features, strict=True):
        for field in dataclasses.fields(a):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if isinstance(x, float):
                assert y == pytest.approx(x, rel=0, abs=1e-9), (a.feature, field.name)
            else:
                assert x == y, (a.feature, field.name)


@pytest.mark.parametrize("lost", [False, True], ids=["", "a worker lost"])
def test_the_partitioned_check_equals_the_local_one(
    store_url: str,
    scheduler: str,
    make_workspace: Callable[..., Workspace],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lost: bool,
) -> None:
    """With ``lost``, the worker of the first range read ends its process (the test hook of
    ``dask_faults``): Dask runs the lost tasks again on the other worker, and the check
    still gives the local one's report."""
    monkeypatch.setattr(predlog_reads, "BUDGET_BYTES", 300 * 1024)  # ~300 JSON inputs a range
    tokens = lose_one_worker(tmp_path, monkeypatch) if lost else None
    try:
        _check_both(store_url, scheduler, make_workspace)
    finally:
        if tokens is not None:
            whole(scheduler)
    if tokens is not None:
        assert [p.name for p in tokens.iterdir()] == ["used-0"]


def _check_both(store_url: str, scheduler: str, make_workspace: Callable[..., Workspace]) -> None:
    rng = np.random.default_rng(7)
    local = make_workspace(store=store_url)
    _register(local.store, rng)
    rows = {day: _log_day(local.store, rng, day, day == DAY2) for day in (DAY1, DAY2)}
    dask = make_workspace(
        store=store_url, training={"engine": "dask", "scheduler": scheduler, "window_days": 1500}
    )
    assert dask_drift.unsupported(dask, dask.model_spec(MODEL)) is None
    for day, drifted in ((DAY1, False), (DAY2, True)):
        now = day + timedelta(hours=23)
        since = now - timedelta(days=1)
        assert len(predlog_reads.plan_input_ranges(dask.store, MODEL, since, now)) >= 4
        checks = {}
        for name, ws in (("local", local), ("dask", dask)):
            checks[name] = check_drift(ws, MODEL, window="1d", now=now)
            checks[name + " kept"] = last_drift(ws, MODEL)
        _same(checks["local"], checks["dask"])
        assert checks["dask"].rows == rows[day]
        assert checks["dask"].summary.drift is drifted
        assert checks["dask kept"] == checks["local kept"]


def test_an_unreachable_scheduler_is_exit_1_naming_it_and_nothing_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    url = f"sqlite:///{tmp_path / 'retrainer.db'}"
    store = SqlStore(url)
    rng = np.random.default_rng(3)
    _register(store, rng)
    _log_day(store, rng, DAY1, False)
    model = weather_model(training={"engine": "dask", "scheduler": address})
    cfg = tmp_path / "retrainer.yaml"
    cfg.write_text(
        yaml.safe_dump({"store": url, "artifacts": "artifacts", "models": {MODEL: model}})
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.setattr(dask_engine, "CONNECT_SECONDS", 2)  # refused at once; retried till then
    monkeypatch.setattr(predlog_reads, "BUDGET_BYTES", 100 * 1024)  # a window of many ranges
    res = CliRunner().invoke(app, ["-c", str(cfg), "drift", MODEL, "--window", "3650d"])
    msg = " ".join(res.output.split())
    assert res.exit_code == 1, msg
    assert address in msg and "cannot be reached" in msg and "stored nothing" in msg
    assert store.get_state(MODEL, "drift") is None
    store.close()

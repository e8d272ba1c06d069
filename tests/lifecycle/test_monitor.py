"""Live monitoring: bucket sums equal metrics recomputed from the raw pairs, each check folds
only what is new, windows exclude old hours, degradation against the holdout baseline; store
parts on SQLite and PostgreSQL, the CLI on SQLite."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.clock import utcnow
from retrainer.core.entities import ModelVersion
from retrainer.core.metrics import METRICS, compute_all
from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle.feedback import record_feedback
from retrainer.lifecycle.monitor import monitor
from retrainer.plumbing.workspace import Workspace

MODEL = "weather"
NOW = datetime(2030, 1, 8, 12, 30)


def log_scored(
    ws: Workspace,
    n: int,
    rng: np.random.Generator,
    *,
    start: int = 0,
    regression: bool = False,
    age: timedelta = timedelta(hours=0),
) -> pd.DataFrame:
    """n entities scored by 1.0.0 (champion) and 1.1.0 (shadow, same request) over 48 hours
    before NOW - age; returns one row per prediction with the true outcome."""
    records, truth = [], []
    for i in range(start, start + n):
        at = NOW - age - timedelta(minutes=int(rng.integers(0, 48 * 60)))
        y = float(rng.normal(10, 3)) if regression else int(rng.random() < 0.4)
        for version, arm in (("1.0.0", "champion"), ("1.1.0", "shadow")):
            if regression:
                out: Any = y + float(rng.normal(0, 1 if arm == "champion" else 2))
                proba = None
            else:
                proba = float(np.clip(rng.normal(0.65 if y else 0.35, 0.2), 0.01, 0.99))
                out = int(proba > 0.5)
            records.append(
                {
                    "model": MODEL,
                    "request_id": f"req{i}",
                    "entity_id": f"e{i}",
                    "version": version,
                    "arm": arm,
                    "features": json.dumps({f: 0.0 for f in WEATHER_FEATURES}),
                    "output": out,
                    "proba": proba,
                    "created_at": at,
                }
            )
            truth.append({"entity_id": f"e{i}", "version": version, "arm": arm, "y": y,
                          "out": out, "proba": proba, "at": at})  # fmt: skip
    ws.store.log_predictions(records)
    return pd.DataFrame(truth)


def expected(task: str, raw: pd.DataFrame, labelled: set[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for version, part in raw.groupby("version"):
        pairs = part[part["entity_id"].isin(labelled)]
        y, p = pairs["y"].to_numpy(), pairs["out"].to_numpy()
        proba = pairs["proba"].to_numpy(dtype=float) if task == "classification" else None
        metrics = compute_all(task, y, p, proba)
        conf = np.maximum(part["proba"], 1 - part["proba"]).mean() if proba is not None else None
        out[str(version)] = {"metrics": metrics, "n": len(part), "labelled": len(pairs),
                             "conf": conf}  # fmt: skip
    return out


def check(report: Any, want: dict[str, dict[str, Any]]) -> None:
    assert sorted(v.version for v in report.versions) == sorted(want)
    for v in report.versions:
        w = want[v.version]
        assert (v.predictions, v.labelled) == (w["n"], w["labelled"])
        if w["conf"] is not None:
            assert v.mean_confidence == pytest.approx(w["conf"], rel=1e-9)
        for name, value in w["metrics"].items():
            if name == "roc_auc":
                assert v.metrics[name] is None  # not summable: omitted, with a note
            else:
                assert v.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def feedback_for(ws: Workspace, raw: pd.DataFrame, fraction: float, target: str) -> set[str]:
    ids = sorted(set(raw["entity_id"]))
    chosen = ids[: int(len(ids) * fraction)]
    truth = raw.drop_duplicates("entity_id").set_index("entity_id")["y"]
    record_feedback(ws, MODEL, pd.DataFrame({"day_id": chosen, target: truth[chosen].tolist()}))
    return set(chosen)


def test_incremental_buckets_match_raw_recompute(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    rng = np.random.default_rng(7)
    ws = make_workspace(store=store_url)
    old = log_scored(ws, 30, rng, start=10_000, age=timedelta(days=10))  # outside the 7d window
    feedback_for(ws, old, 1.0, "rain")
    raw = log_scored(ws, 200, rng)
    labelled = feedback_for(ws, raw, 0.7, "rain")
    first = monitor(ws, MODEL, now=NOW)
    assert first.folded == {"predictions": 460, "actuals": 170}
    assert first.window == "7d" and any("roc_auc" in n for n in first.notes)
    check(first, expected("classification", raw, labelled))
    assert {v.arm for v in first.versions} == {"champion", "shadow"}

    more = log_scored(ws, 50, rng, start=500)
    labelled |= feedback_for(ws, more, 0.5, "rain")
    second = monitor(ws, MODEL, now=NOW)
    assert second.folded == {"predictions": 100, "actuals": 25}  # only what is new
    both = pd.concat([raw, more])
    check(second, expected("classification", both, labelled))
    third = monitor(ws, MODEL, now=NOW)
    assert third.folded == {"predictions": 0, "actuals": 0}
    check(third, expected("classification", both, labelled))
    wide = monitor(ws, MODEL, window="30d", now=NOW)
    check(wide, expected("classification", pd.concat([both, old]), labelled | set(old.entity_id)))


def test_regression_metrics_are_exact(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    rng = np.random.default_rng(11)
    ws = make_workspace(
        store=store_url,
        task="regression",
        target="temperature",
        features={"numeric": [f for f in WEATHER_FEATURES if f != "temperature"]},
    )
    raw = log_scored(ws, 120, rng, regression=True)
    labelled = feedback_for(ws, raw, 0.8, "temperature")
    report = monitor(ws, MODEL, window="3d", now=NOW)
    check(report, expected("regression", raw, labelled))
    assert all(v.mean_confidence is None for v in report.versions)


def draft(accuracy: float) -> ModelVersion:
    return ModelVersion(
        model=MODEL, version="0.0.0", parent=None, family="lightgbm", params={},
        created_at=datetime(2029, 1, 1), created_by="manual", reason="test", kind="initial",
        train_start=None, train_end=None, n_rows=10, fingerprint="f" * 64,
        feature_schema={}, metrics={"accuracy": accuracy, "roc_auc": math.nan},
        artifact_uri="mem://none", sha256="0" * 64, hmac=None, size_bytes=1,
    )  # fmt: skip


def test_degradation_against_the_holdout_baseline(
    make_workspace: Callable[..., Workspace],
) -> None:
    rng = np.random.default_rng(3)
    ws = make_workspace(monitor={"min_samples": 50})
    ws.store.register(draft(0.95), "major", deploy=True)  # 1.0.0; artifact missing on purpose
    raw = log_scored(ws, 100, rng)
    labelled = feedback_for(ws, raw, 0.3, "rain")  # 30 labelled: below min_samples
    report = monitor(ws, MODEL, now=NOW)
    v1 = report.version("1.0.0")
    assert v1.baseline == {"accuracy": 0.95, "roc_auc": None} and v1.degradation is None
    assert any("fewer than monitor.min_samples=50" in n for n in report.notes)
    labelled |= feedback_for(ws, raw, 0.9, "rain")
    v1 = monitor(ws, MODEL, now=NOW).version("1.0.0")
    live = expected("classification", raw, labelled)["1.0.0"]["metrics"]["accuracy"]
    assert v1.metrics["accuracy"] == pytest.approx(live)
    assert v1.degradation == pytest.approx(METRICS["accuracy"].degradation(live, 0.95))
    assert v1.degradation is not None and v1.degradation > 0
    shadow = monitor(ws, MODEL, now=NOW).version("1.1.0")
    assert shadow.baseline == {} and shadow.degradation is None  # no such registered version


runner = CliRunner()


def test_cli_monitor_json_shape_and_exit_codes(
    config_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    config = config_file()

    def cli(*args: str, code: int) -> str:
        res = runner.invoke(app, ["-c", str(config), *args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        assert res.exit_code == code, res.output
        return res.output

    assert "no predictions logged in the last 7d" in cli("monitor", MODEL, code=0)
    with Workspace.open(config) as ws:
        raw = log_scored(ws, 20, np.random.default_rng(5), age=NOW - utcnow())
        feedback_for(ws, raw, 1.0, "rain")
    body = json.loads(cli("monitor", MODEL, "--window", "4d", "--json", code=0))
    assert set(body) == {"model", "window", "since", "until", "primary_metric", "versions",
                         "folded", "notes", "concept_drift", "baselines"}  # fmt: skip
    assert (body["model"], body["window"], body["primary_metric"]) == (MODEL, "4d", "accuracy")
    first = body["versions"][0]
    assert set(first) == {"version", "arm", "predictions", "labelled", "metrics",
                          "mean_confidence", "baseline", "degradation",
                          "confusion_matrix", "interval_coverage"}  # fmt: skip
    assert (first["predictions"], first["labelled"]) == (20, 20)
    assert first["metrics"]["roc_auc"] is None and 0 <= first["metrics"]["accuracy"] <= 1
    # the naive baselines on the same 20 actuals (each entity new: the stream's previous
    # actual; the first actual has nothing before it), no season configured
    naive = {b["version"]: b for b in body["baselines"]}
    assert set(naive) == {"naive:last", "naive:mean"}
    assert naive["naive:last"]["arm"] == "baseline" and naive["naive:last"]["labelled"] == 19
    assert naive["naive:mean"]["description"] == "the majority class"
    table = cli("monitor", MODEL, code=0)
    assert "1.0.0" in table and "naive:last" in table and "best naive baseline" in table
    assert "is not a duration" in cli("monitor", MODEL, "--window", "soon", code=2)
    assert "not in the spec" in cli("monitor", "nomodel", code=2)

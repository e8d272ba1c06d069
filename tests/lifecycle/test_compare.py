"""Family comparison: one table on the same window and folds; nothing registered unless asked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from retrainer.apps import compare as compare_mod
from retrainer.cli.main import app
from retrainer.core.errors import FamilyUnavailableError
from retrainer.core.spec import load_spec
from retrainer.lifecycle import fitting
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.plumbing.workspace import Workspace

WALK = {"scheme": "walk_forward", "folds": 2}
FAMILIES = "lightgbm,randomforest,linear"
SMALL_FOREST = {"family": "randomforest", "params": {"n_estimators": 20}}


def _year(df: pd.DataFrame, year: int) -> pd.DataFrame:
    return df[df["date"].dt.year == year]


def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measure in this process (fast); the subprocess path is covered by the CLI test."""

    def measure(*args: Any) -> compare_mod.FamilyRow:
        return compare_mod.FamilyRow(**compare_mod.measure(*args))

    monkeypatch.setattr(compare_mod, "measure_in_subprocess", measure)
    monkeypatch.setattr(
        compare_mod, "predict_latencies", lambda *_a: dict.fromkeys(compare_mod.LATENCY_KEYS, 1.0)
    )


def test_cli_json_shape_and_nothing_registered(
    config_file: Callable[..., Path], weather_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_process(monkeypatch)
    config = config_file(validation=WALK, **SMALL_FOREST)
    spec = load_spec(config, environ={})
    with Workspace(spec) as ws:
        ingest_frame(ws, "weather", _year(weather_df, 1960))
    result = CliRunner().invoke(
        app,
        ["-c", str(config), "compare", "weather", "--families", FAMILIES, "--json"],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model"] == "weather" and body["primary_metric"] == "accuracy"
    assert (body["folds"], body["window"]["rows"], body["batch_rows"]) == (2, 366, 1000)
    assert body["registered"] == {}
    keys = [c["key"] for c in body["columns"]]
    assert keys[0] == "accuracy" and "fine_tune_cpu_s" in keys and "peak_rss_mb" in keys
    assert {c["key"]: c["bigger_is_better"] for c in body["columns"]}["log_loss"] is False
    assert all(set(c["best"]) <= {"lightgbm", "randomforest", "linear"} for c in body["columns"])
    rows = {r["family"]: r for r in body["rows"]}
    assert list(rows) == ["lightgbm", "randomforest", "linear"]
    for row in rows.values():
        assert row["status"] == "ok", row["note"]
        assert set(row["metrics"]["accuracy"]) == {"mean", "std"}
        assert 0.5 < row["metrics"]["accuracy"]["mean"] <= 1.0
        assert len(row["folds"]) == 2 and row["fit_cpu_s"] >= 0
        assert set(row["predict_ms"]) == set(compare_mod.LATENCY_KEYS)
        assert row["artifact_bytes"] > 0 and row["peak_rss_mb"] >= row["base_rss_mb"] > 0
        assert row["version"] is None
    assert rows["lightgbm"]["fine_tune_cpu_s"] is not None
    # the linear family does not fine-tune, and its row says so
    assert rows["linear"]["fine_tune_cpu_s"] is None
    assert rows["linear"]["fine_tune_note"] == "the 'linear' family cannot warm-start"
    with Workspace(spec) as ws:
        assert ws.store.list_versions("weather") == []


def test_each_family_is_measured_in_its_own_process(
    make_workspace: Callable[..., Workspace], weather_df: pd.DataFrame
) -> None:
    spec = make_workspace().model_spec("weather")
    frame = _year(weather_df, 1960).rename(columns={"rain": "target"}).reset_index(drop=True)
    row = compare_mod.measure_in_subprocess(spec, "lightgbm", frame, 2, 0)
    assert row.status == "ok", row.note
    assert row.fine_tune_cpu_s is not None and len(row.folds) == 2
    assert all(ms > 0 for ms in row.predict_ms.values()) and row.artifact_bytes
    assert row.peak_rss_mb is not None and row.peak_rss_mb > 50  # the child's, with its imports


def test_unknown_family_is_bad_input(config_file: Callable[..., Path]) -> None:
    config = config_file()
    result = CliRunner().invoke(
        app, ["-c", str(config), "compare", "weather", "--families", "lightgbm,nope", "--json"]
    )
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body["error"] == "input_invalid" and "nope" in body["message"]


def test_register_trains_each_family_without_deploying(
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _in_process(monkeypatch)
    ws = make_workspace(validation=WALK, **SMALL_FOREST)
    ingest_frame(ws, "weather", _year(weather_df, 1960))
    result = compare_mod.compare(ws, "weather", ["lightgbm", "randomforest"], register=True)
    versions = ws.store.list_versions("weather")
    assert [v.family for v in versions] == ["lightgbm", "randomforest"]
    assert [r.version for r in result.rows] == [v.version for v in versions]
    assert ws.store.roles("weather").champion is None
    assert result.to_dict()["registered"] == {"lightgbm": "1.0.0", "randomforest": "2.0.0"}


def test_unavailable_family_is_a_row_with_a_note(
    make_workspace: Callable[..., Workspace],
    weather_df: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _in_process(monkeypatch)
    real = fitting.family_class

    def family_class(name: str) -> Any:
        if name == "catboost":
            raise FamilyUnavailableError("catboost is not installed here")
        return real(name)

    monkeypatch.setattr(fitting, "family_class", family_class)
    ws = make_workspace()  # holdout scheme: the comparison uses 5 folds
    ingest_frame(ws, "weather", _year(weather_df, 1960))
    result = compare_mod.compare(ws, "weather", ["catboost", "lightgbm"])
    catboost, lightgbm = result.rows
    assert (catboost.status, catboost.note) == ("unavailable", "catboost is not installed here")
    assert lightgbm.status == "ok" and len(lightgbm.folds) == result.folds == 5
    assert result.best()["accuracy"] == ("lightgbm",)

"""Deployment criteria through the real CLI: latency and memory budgets measured at training
time and recorded on the version, the holdout confusion matrix, and a plain comparison
(``significance: null``) with ``min_improvement``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from retrainer.cli.main import app

MODEL = "weather"
PARAMS = {"n_estimators": 20, "num_threads": 1}
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def run(config: Path, *args: Any, code: int = 0) -> Result:
    res = runner.invoke(app, ["-c", str(config), *[str(a) for a in args]])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, f"exit {res.exit_code}, expected {code}:\n{res.output}"
    return res


def set_gate(config: Path, **gate: Any) -> None:
    data = yaml.safe_load(config.read_text())
    data["models"][MODEL]["gate"] = gate
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def test_latency_and_memory_budgets_are_measured_recorded_and_enforced(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]
) -> None:
    config = config_file(params=PARAMS)
    set_gate(config, max_latency_ms=60_000, max_memory_mb=10_000)
    run(config, "ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    first = json.loads(run(config, "train", MODEL, "--deploy", "--json").stdout)
    assert first["deployed"] and first["gate"]["verdict"] == "pass"
    assert first["gate"]["budgets_only"] and "budgets held" in first["gate"]["summary"]

    (v,) = json.loads(run(config, "versions", MODEL, "--detail", "--json").stdout)
    cost = v["serving_cost"]
    one, batch = cost["latency_ms"]["single_row"], cost["latency_ms"]["batch"]
    assert 0 < one["p50"] <= one["p95"] and 0 < batch["p50"] <= batch["p95"]
    assert batch["rows"] == 100 and cost["memory_mb"] >= 0
    assert "peak RSS growth" in cost["memory_method"]
    cm = v["confusion_matrix"]
    assert len(cm["matrix"]) == len(cm["labels"]) >= 2
    text = " ".join(run(config, "versions", MODEL, "--detail").output.split())
    assert "serving cost: single row p50" in text and "holdout confusion" in text

    # the same recipe again against a memory budget it cannot hold: recorded, refused
    run(config, "ingest", MODEL, weather_csv("1951-01-01", "1951-07-01"))
    set_gate(config, max_latency_ms=60_000, max_memory_mb=0.0001)
    second = json.loads(run(config, "train", MODEL, "--deploy", "--json").stdout)
    gate = second["gate"]
    assert not second["deployed"] and gate["verdict"] == "reject"
    assert gate["memory_mb"] > 0.0001 and gate["max_memory_mb"] == 0.0001
    assert gate["latency_ms"] > 0 and gate["max_latency_ms"] == 60_000
    assert any("exceeds the 0.0001 MB budget" in r for r in gate["reasons"])


def test_plain_comparison_with_min_improvement(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]
) -> None:
    config = config_file(params=PARAMS)
    run(config, "ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    run(config, "train", MODEL, "--deploy")
    run(config, "ingest", MODEL, weather_csv("1951-01-01", "1951-07-01"))
    # another recipe (other parameters) must improve accuracy by 0.5: a plain comparison
    data = yaml.safe_load(config.read_text())
    data["models"][MODEL]["params"] = {"n_estimators": 30, "num_threads": 1}
    data["models"][MODEL]["gate"] = {
        "significance": None,
        "min_improvement": 0.5,
        "guards": {"f1": {"min_improvement": 0.01}},
    }
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    out = json.loads(run(config, "train", MODEL, "--deploy", "--json").stdout)
    gate = out["gate"]
    assert gate["test"] == "plain_comparison" and gate["p_value"] is None
    assert gate["verdict"] == "reject" and not out["deployed"]
    assert "needs 0.5" in gate["reasons"][0]
    (f1,) = gate["guards"]
    assert f1["metric"] == "f1" and f1["min_improvement"] == 0.01 and f1["p_value"] is None
    # the same criteria with no improvement required: the observed change alone decides
    data["models"][MODEL]["gate"] = {"significance": None, "min_improvement": 0.0}
    data["models"][MODEL]["params"] = {"n_estimators": 40, "num_threads": 1}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    out = json.loads(run(config, "train", MODEL, "--json").stdout)
    gate = out["gate"]
    expected = "pass" if gate["improvement"] >= 0 else "reject"
    assert gate["test"] == "plain_comparison" and gate["verdict"] == expected


def test_a_bad_gate_metric_is_a_spec_error_naming_the_key(
    config_file: Callable[..., Path],
) -> None:
    config = config_file(params=PARAMS)
    set_gate(
        config,
        metrics={"failure_rate": {"expression": "fn / open(tp)", "greater_is_better": False}},
    )
    res = run(config, "train", MODEL, "--dry-run", code=2)
    assert "gate.metrics.failure_rate" in res.output and "function call" in res.output
    set_gate(config, guards={"recall_at_k": 0.01})
    res = run(config, "train", MODEL, "--dry-run", code=2)
    assert "gate.guards.recall_at_k" in " ".join(res.output.split())

"""Live confusion matrix per version: the same joined pairs as the live metrics, counted by
(actual, predicted), over the monitor window; in ``monitor --json`` and its text."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_monitor import MODEL, NOW, draft, feedback_for, log_scored  # same folder (on sys.path)
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.cli.version_cmds import confusion_text
from retrainer.core.clock import utcnow
from retrainer.datasets import WEATHER_FEATURES
from retrainer.lifecycle.monitor import live_confusion, monitor
from retrainer.plumbing.workspace import Workspace


def raw_counts(raw: pd.DataFrame, labelled: set[str], version: str) -> list[list[int]]:
    """The confusion matrix recomputed from the raw pairs: rows actual, columns predicted."""
    part = raw[(raw["version"] == version) & raw["entity_id"].isin(labelled)]
    m = [[0, 0], [0, 0]]
    for y, out in zip(part["y"], part["out"], strict=True):
        m[int(y)][int(out)] += 1
    return m


def test_live_confusion_from_counts() -> None:
    assert live_confusion(["no", "yes"], {"tp": 3, "fp": 2, "tn": 9, "fn": 1}) == {
        "labels": ["no", "yes"],
        "matrix": [[9, 2], [1, 3]],
    }
    assert live_confusion(None, {"tp": 0, "fp": 0, "tn": 0, "fn": 0}) is None
    assert live_confusion(None, {"tp": 1, "fp": 0, "tn": 0, "fn": 0}) == {
        "labels": ["negative", "positive"],
        "matrix": [[0, 0], [0, 1]],
    }
    assert live_confusion([0, 1, 2], {"tp": 0, "fp": 0, "tn": 0, "fn": 0}) is None


def test_monitor_reports_each_versions_live_matrix_over_its_window(
    store_url: str, make_workspace: Callable[..., Workspace]
) -> None:
    rng = np.random.default_rng(11)
    ws = make_workspace(store=store_url)
    old = log_scored(ws, 40, rng, start=50_000, age=timedelta(days=10))  # outside 7d
    feedback_for(ws, old, 1.0, "rain")
    raw = log_scored(ws, 150, rng)
    labelled = feedback_for(ws, raw, 0.6, "rain")
    report = monitor(ws, MODEL, now=NOW)
    for version in ("1.0.0", "1.1.0"):
        v = report.version(version)
        cm = v.confusion_matrix
        # versions without an artifact here: the labels are named by their role
        assert cm is not None and cm["labels"] == ["negative", "positive"]
        assert cm["matrix"] == raw_counts(raw, labelled, version)
        assert sum(map(sum, cm["matrix"])) == v.labelled  # every joined pair, once
        accuracy = (cm["matrix"][0][0] + cm["matrix"][1][1]) / v.labelled
        assert v.metrics["accuracy"] == pytest.approx(accuracy)
    # more feedback: the next check folds only the new pairs into the same counts
    labelled |= feedback_for(ws, raw, 0.9, "rain")
    again = monitor(ws, MODEL, now=NOW).version("1.0.0")
    assert again.confusion_matrix is not None
    assert again.confusion_matrix["matrix"] == raw_counts(raw, labelled, "1.0.0")
    assert again.to_dict()["confusion_matrix"] == again.confusion_matrix


def test_labels_come_from_the_version(make_workspace: Callable[..., Workspace]) -> None:
    """A registered version names its classes (here from its recorded holdout matrix, its
    artifact being absent); the matrix is in that order."""
    ws = make_workspace()
    held = {"labels": [0, 1], "matrix": [[5, 1], [2, 3]]}
    ws.store.register(replace(draft(0.9), details={"confusion_matrix": held}), "major", deploy=True)
    raw = log_scored(ws, 60, np.random.default_rng(9))
    labelled = feedback_for(ws, raw, 1.0, "rain")
    report = monitor(ws, MODEL, now=NOW)
    assert report.version("1.0.0").confusion_matrix == {
        "labels": [0, 1],
        "matrix": raw_counts(raw, labelled, "1.0.0"),
    }


def test_regression_versions_have_no_matrix(make_workspace: Callable[..., Workspace]) -> None:
    ws = make_workspace(
        task="regression",
        target="temperature",
        features={"numeric": [f for f in WEATHER_FEATURES if f != "temperature"]},
    )
    raw = log_scored(ws, 30, np.random.default_rng(2), regression=True)
    feedback_for(ws, raw, 1.0, "temperature")
    report = monitor(ws, MODEL, now=NOW)
    assert report.versions and all(v.confusion_matrix is None for v in report.versions)


def test_cli_monitor_shows_the_live_matrix(
    config_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "2000")
    config = config_file()
    with Workspace.open(config) as ws:
        raw = log_scored(ws, 40, np.random.default_rng(4), age=NOW - utcnow())
        labelled = feedback_for(ws, raw, 1.0, "rain")
    runner = CliRunner()
    res = runner.invoke(app, ["-c", str(config), "monitor", MODEL, "--json"])
    assert res.exit_code == 0, res.output
    first = json.loads(res.output)["versions"][0]
    want = raw_counts(raw, labelled, first["version"])
    assert first["confusion_matrix"] == {"labels": ["negative", "positive"], "matrix": want}
    res = runner.invoke(app, ["-c", str(config), "monitor", MODEL])
    assert res.exit_code == 0, res.output
    assert "1.0.0 (champion) live confusion (rows actual):" in res.output
    assert confusion_text({"labels": ["negative", "positive"], "matrix": want}) in res.output

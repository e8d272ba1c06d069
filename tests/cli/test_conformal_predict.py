"""A regression with ``calibration: conformal`` through the CLI: the version records its
interval, ``predict --out`` writes each row's ``lower`` and ``upper`` bound, and a holdout too
small to measure the interval fails the training before anything is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from clihelp import Cli, text, write_config

MODEL = "load"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def _rows(start: int, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n), rng.uniform(0, 3, n)
    return pd.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(start, start + n)],
            "ts": pd.date_range("2024-01-01", periods=start + n, freq="h")[start:],
            "a": a.round(4),
            "b": b.round(4),
            "load": (2 * a + b**2 + rng.normal(0, 0.5, n)).round(4),
        }
    )


def _cli(tmp_path: Path, **overrides: Any) -> Cli:
    model = {
        "task": "regression",
        "target": "load",
        "id_column": "row_id",
        "time_column": "ts",
        "features": {"numeric": ["a", "b"]},
        "family": "lightgbm",
        "params": {"n_estimators": 40, "num_leaves": 7, "num_threads": 1},
        "calibration": "conformal",
        "calibration_coverage": 0.8,
        **overrides,
    }
    return Cli(write_config(tmp_path / "retrainer.yaml", {MODEL: model}))


def test_predict_out_writes_the_interval_of_a_conformal_model(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    _rows(0, 600, seed=1).to_csv("history.csv", index=False)
    cli("ingest", MODEL, "history.csv")
    made = cli.json("train", MODEL, "--deploy")
    assert made["deployed"]
    (version,) = cli.json("versions", MODEL, "--detail")
    interval = version["interval"]
    assert interval["method"] == "conformal" and interval["coverage"] == 0.8
    assert interval["residuals"] == 120 and interval["half_width"] > 0  # the 20% holdout
    assert "interval: prediction ±" in text(cli("versions", MODEL, "--detail"))

    new = _rows(600, 400, seed=2)
    new.drop(columns=["load"]).to_csv("new.csv", index=False)
    said = text(cli("predict", MODEL, "new.csv", "--out", "scored.csv"))
    assert "400 predictions" in said and "scored.csv" in said
    scored = pd.read_csv("scored.csv")
    assert list(scored.columns[-3:]) == ["prediction", "lower", "upper"]
    width = scored["upper"] - scored["lower"]
    assert np.allclose(width, 2 * interval["half_width"])
    assert (scored["lower"] < scored["prediction"]).all()
    assert (scored["prediction"] < scored["upper"]).all()
    # rows from the same distribution: about 80% of their actuals fall inside
    inside = (new["load"] >= scored["lower"]) & (new["load"] <= scored["upper"])
    assert 0.65 < inside.mean() < 0.95, inside.mean()


def test_a_holdout_too_small_for_the_interval_fails_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    cli = _cli(
        tmp_path,
        calibration_coverage=0.99,  # needs 99 held-out residuals
        training={"holdout_fraction": 0.1},
    )
    _rows(0, 600, seed=1).to_csv("history.csv", index=False)
    cli("ingest", MODEL, "history.csv")
    msg = text(cli("train", MODEL, "--deploy", code=2))
    assert "A 0.99 prediction interval needs at least 99 held-out rows to measure" in msg
    assert "there are 60" in msg and "training.holdout_fraction" in msg
    assert cli.json("versions", MODEL) == []
    stored = [p for p in Path("artifacts").rglob("*") if p.is_file()]
    assert stored == [], stored  # measured before the artifact is written

"""Spec rules a user meets through the CLI: params kept per family (the family switched by
one environment variable), and ``train --dry-run`` refusing what training would refuse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clihelp import MODEL, Cli, text, write_config

from retrainer.core.spec import parse_spec
from retrainer.lifecycle.fitting import make_model
from weather_spec import weather_model

PER_FAMILY = {
    "randomforest": {"n_estimators": 12, "n_jobs": 1},
    "lightgbm": {"n_estimators": 30, "num_leaves": 7, "num_threads": 1},
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def make_cli(tmp_path: Path, **overrides: Any) -> Cli:
    return Cli(write_config(tmp_path / "retrainer.yaml", {MODEL: weather_model(**overrides)}))


def test_family_switched_by_environment_takes_its_own_params(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    cli = make_cli(tmp_path, family="randomforest", params=PER_FAMILY)
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    first = cli.json("train", MODEL, "--deploy")
    assert first["family"] == "randomforest"

    switched = cli.with_env(RETRAINER_WEATHER__FAMILY="lightgbm")
    plan = switched.json("train", MODEL, "--dry-run")
    assert plan["family"] == "lightgbm" and plan["bump"] == "major"
    second = switched.json("train", MODEL)
    assert second["family"] == "lightgbm" and second["version"] == "2.0.0"
    detail = {v["version"]: v for v in cli.json("versions", MODEL, "--detail")}
    assert detail["1.0.0"]["params"]["n_estimators"] == 12
    assert detail["2.0.0"]["params"]["num_leaves"] == 7
    assert "n_jobs" not in detail["2.0.0"]["params"]

    # one family's parameter overridden by environment, inside its own section
    tuned = switched.with_env(RETRAINER_WEATHER__PARAMS__LIGHTGBM__NUM_LEAVES="5")
    third = tuned.json("train", MODEL)
    detail = {v["version"]: v for v in cli.json("versions", MODEL, "--detail")}
    assert detail[third["version"]]["params"]["num_leaves"] == 5


def test_flat_params_of_the_old_family_fail_the_switch_with_the_fix(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, family="randomforest", params={"n_estimators": 12, "n_jobs": 1})
    cli("status")  # valid as written
    res = cli.with_env(RETRAINER_WEATHER__FAMILY="lightgbm")("train", MODEL, "--dry-run", code=2)
    msg = text(res)
    assert "models.weather: params: parameter(s) ['n_jobs']" in msg
    assert "not accepted by the 'lightgbm' family" in msg and "num_threads" in msg
    assert "params: {<family>: {...}}" in msg


def test_fallback_family_trains_with_its_own_section() -> None:
    spec = parse_spec(
        {"models": {MODEL: weather_model(family="xgboost", params=PER_FAMILY)}}, environ={}
    ).model(MODEL)
    assert make_model(spec, "randomforest", 0).effective_params["n_estimators"] == 12
    assert make_model(spec, "lightgbm", 0).effective_params["num_leaves"] == 7
    assert make_model(spec, "xgboost", 0).params == {}


def test_unknown_param_is_refused_by_dry_run_with_did_you_mean(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, params={"lightgbm": {"num_leafs": 7}})
    res = cli("train", MODEL, "--dry-run", code=2)
    msg = text(res)
    assert "models.weather: params.lightgbm: parameter(s) ['num_leafs']" in msg
    assert "'lightgbm' family" in msg and "did you mean 'num_leaves'" in msg
    assert "Accepted: bagging_fraction" in msg


def test_mixed_flat_and_per_family_params_are_refused(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, params={"lightgbm": {"num_leaves": 7}, "n_estimators": 5})
    msg = text(cli("status", code=2))
    assert "params mixes per-family sections ['lightgbm'] with flat parameters" in msg


def test_calibration_on_a_regression_is_refused(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, task="regression", calibration="sigmoid")
    for args in (("train", MODEL, "--dry-run"), ("status",)):
        msg = text(cli(*args, code=2))
        assert "calibration 'sigmoid' applies to classifiers only" in msg
        assert "Use 'conformal' for a calibrated prediction interval, or 'none'" in msg


def test_unknown_schedule_time_zone_is_refused(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, schedule={"maintain": "0 22 * * *", "timezone": "Mars/Olympus"})
    msg = text(cli("status", code=2))
    assert "models.weather.schedule.timezone: 'Mars/Olympus' is not an IANA time zone" in msg

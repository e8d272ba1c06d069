"""Global and per-command options through the real CLI: --log-level, train --all, --as-of."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clihelp import MODEL, Cli, text, write_config

from weather_spec import weather_model

PARAMS = {"n_estimators": 20, "num_threads": 1}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def make_cli(tmp_path: Path, **models: dict[str, Any]) -> Cli:
    bodies = models or {MODEL: weather_model(params=PARAMS)}
    return Cli(write_config(tmp_path / "retrainer.yaml", bodies))


# ---- --log-level ------------------------------------------------------------------------


def test_debug_log_level_says_what_the_command_does(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    cli = make_cli(tmp_path)
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    res = cli("--log-level", "DEBUG", "train", MODEL)
    assert "DEBUG retrainer.cli: train: model='weather'" in res.stderr
    assert "store sqlite:///" in res.stderr and "models weather" in res.stderr
    assert "train weather: fit lightgbm" in res.stderr
    assert "DEBUG" not in res.stdout  # logs go to stderr only

    quiet = cli("--log-level", "warning", "status")
    assert "DEBUG" not in quiet.stderr
    by_env = cli.with_env(RETRAINER_LOG_LEVEL="debug")("status")
    assert "DEBUG retrainer.cli: status" in by_env.stderr
    after = cli("status")  # the next command in this process logs as by default again
    assert "DEBUG" not in after.stderr and "DEBUG" not in after.stdout


@pytest.mark.parametrize("how", ["option", "env"])
def test_bad_log_level_is_a_usage_error(tmp_path: Path, how: str) -> None:
    cli = make_cli(tmp_path)
    if how == "option":
        res = cli("--log-level", "LOUD", "status", code=2)
    else:
        res = cli.with_env(RETRAINER_LOG_LEVEL="LOUD")("status", code=2)
    msg = text(res)
    assert "'LOUD' is not a log level" in msg and "DEBUG, INFO, WARNING, ERROR" in msg


# ---- train --all ------------------------------------------------------------------------


def test_train_all_gives_one_result_per_model_and_the_worst_exit_code(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    rows = weather_csv("1949-01-01", "1951-01-01")
    cli = make_cli(
        tmp_path,
        weather=weather_model(params=PARAMS),
        rf=weather_model(family="randomforest", params={"n_estimators": 10, "n_jobs": 1}),
    )
    cli("ingest", "weather", rows)
    res = cli("train", "--all", "--json", code=2)  # rf has no rows: exit 2, weather trained
    results = {r["model"]: r for r in json.loads(res.stdout)}
    assert set(results) == {"weather", "rf"}
    assert results["weather"]["exit"] == 0 and results["weather"]["result"]["version"] == "1.0.0"
    assert results["rf"]["exit"] == 2 and "has no training rows" in results["rf"]["message"]

    cli("ingest", "rf", rows)
    res = cli("train", "--all")
    assert "2 of 2 models trained" in text(res)
    assert "weather 1.1.0" in text(res) and "rf 1.0.0" in text(res)
    plans = cli.json("train", "--all", "--dry-run")
    assert [p["model"] for p in plans] == ["weather", "rf"]
    assert all(p["exit"] == 0 and p["result"]["family"] for p in plans)


def test_train_needs_a_model_or_all_but_not_both(tmp_path: Path) -> None:
    cli = make_cli(tmp_path)
    for args in (("train",), ("train", MODEL, "--all")):
        assert "name one MODEL, or pass --all" in text(cli(*args, code=2))


# ---- --as-of ----------------------------------------------------------------------------


def test_as_of_runs_monitor_drift_and_maintain_as_if_now_were_then(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    from datetime import timedelta

    from retrainer.core.clock import utcnow

    cli = make_cli(tmp_path)
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    cli("train", MODEL, "--deploy")
    trained_at = utcnow()
    scored = tmp_path / "scored.csv"
    cli("predict", MODEL, weather_csv("1951-01-01", "1951-03-01"), "-o", scored)
    month_ago = (utcnow() - timedelta(days=30)).replace(microsecond=0)

    assert cli.json("monitor", MODEL)["versions"][0]["predictions"] == 59
    then = cli.json("monitor", MODEL, "--as-of", month_ago.isoformat())
    assert then["versions"] == []  # the predictions came after that moment
    assert then["until"].startswith((month_ago + timedelta(hours=1)).strftime("%Y-%m-%dT%H"))

    assert "drift over 59 rows" in text(cli("drift", MODEL))
    assert "drift over 0 rows" in text(cli("drift", MODEL, "--as-of", month_ago.isoformat()))

    decision = cli.json("maintain", MODEL, "--dry-run", "--as-of", f"{trained_at.isoformat()}Z")
    assert decision["taken_at"] == trained_at.isoformat()
    assert not decision["numbers"].get("live_samples")  # nothing scored yet at that time
    res = cli("maintain", MODEL, "--as-of", month_ago.isoformat(), code=2)
    assert "is before champion 1.0.0 of 'weather' was created" in text(res)
    everyone = cli("maintain", "--all", "--json", "--as-of", month_ago.isoformat(), code=2)
    assert json.loads(everyone.stdout)[0]["error"] == "input_invalid"


@pytest.mark.parametrize(
    ("value", "message"),
    [("yesterday", "'yesterday' is not a time"), ("2999-01-01", "is in the future")],
)
def test_bad_as_of_is_a_usage_error(tmp_path: Path, value: str, message: str) -> None:
    cli = make_cli(tmp_path)
    for command in ("monitor", "drift", "maintain"):
        assert message in text(cli(command, MODEL, "--as-of", value, code=2))


# ---- monitor's wording ------------------------------------------------------------------


def test_monitor_says_worse_or_better_by_the_metric_direction(
    tmp_path: Path, weather_csv: Callable[[str, str], Path]
) -> None:
    cli = make_cli(tmp_path, weather=weather_model(params=PARAMS, monitor={"min_samples": 10}))
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    cli("train", MODEL, "--deploy")
    live = weather_csv("1951-01-01", "1951-03-01")
    cli("predict", MODEL, live, "-o", tmp_path / "scored.csv")
    cli("feedback", MODEL, live)
    report = cli.json("monitor", MODEL)["versions"][0]
    degradation = report["degradation"]
    assert degradation is not None and degradation != 0
    word = "worse" if degradation > 0 else "better"
    shown = text(cli("monitor", MODEL))
    assert f"{word} by {abs(degradation):.1%}" in shown
    assert f"{degradation:+.1%}" not in shown

"""Every path that produces a candidate goes through the same gate and the same rollout:
a scheduled full retrain under `rollout: {mode: ab}` starts an A/B challenger (it deployed
directly before), a chosen version is put on a canary with `retrainer rollout start`, and the
new alert events reach a webhook receiver on loopback. All through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from retrainer.cli.main import app
from retrainer.plumbing.workspace import Workspace
from webhooks import Webhook

PARAMS = {"n_estimators": 20, "num_threads": 1}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def cli(config: Path, *args: Any, code: int = 0) -> Result:
    res = CliRunner().invoke(app, ["-c", str(config), *map(str, args)])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, f"exit {res.exit_code}, expected {code}:\n{res.output}"
    return res


def as_json(config: Path, *args: Any, code: int = 0) -> Any:
    return json.loads(cli(config, *args, "--json", code=code).stdout)


def test_a_scheduled_full_retrain_honours_the_ab_rollout(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path], webhook: Webhook
) -> None:
    config = config_file(
        params=PARAMS,
        rollout={"mode": "ab", "fraction": 0.2},
        gate={"refresh_tolerance": 0.5},
        schedule={"full_retrain": "0 * * * *"},
        alerts={"webhooks": [webhook.url], "events": ["challenger_started", "retrained", "deploy"]},
    )
    cli(config, "ingest", "weather", weather_csv("1949-01-01", "1952-01-01"))
    cli(config, "train", "weather", "--deploy")  # no champion yet: deployed directly
    assert webhook.wait_for("deploy")["attachments"][0]["title"] == "deployed 1.0.0"
    cli(config, "ingest", "weather", weather_csv("1952-01-01", "1953-01-01"))
    runs = as_json(config, "scheduler", "--once")["runs"]
    [run] = runs
    assert (run["job"], run["outcome"]) == ("full_retrain", "ok"), run
    assert run["detail"] == "gate pass vs 1.0.0: 1.1.0 started as ab challenger at 20%"
    status = as_json(config, "status", "weather")
    serving = status[0] if isinstance(status, list) else status
    assert serving["champion"]["version"] == "1.0.0"
    assert serving["challenger"]["version"] == "1.1.0"
    assert (serving["challenger"]["mode"], serving["challenger"]["fraction"]) == ("ab", 0.2)
    history = as_json(config, "history", "weather")
    last = history[-1]
    assert (last["action"], last["to_version"], last["triggered_by"]) == (
        "start_challenger",
        "1.1.0",
        "schedule",
    )
    started = webhook.wait_for("challenger_started")
    assert started["text"] == "[weather] challenger_started: 1.1.0 started as ab challenger at 20%"
    assert "retrained" in webhook.events()


def test_rollout_start_and_stop_a_chosen_version(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]
) -> None:
    config = config_file(params=PARAMS)  # rollout.mode direct: the command picks the mode
    cli(config, "ingest", "weather", weather_csv("1949-01-01", "1952-01-01"))
    cli(config, "train", "weather", "--deploy")
    cli(config, "train", "weather")  # 1.1.0, registered only
    body = as_json(
        config,
        "rollout",
        "start",
        "weather",
        "1.1.0",
        "--mode",
        "canary",
        "--fraction",
        "0.2",
        "--reason",
        "try the refresh",
    )
    assert body["result"] == "1.1.0 started as canary challenger at 20%"
    assert body["challenger"]["mode"] == "canary" and body["challenger"]["fraction"] == 0.2
    event = as_json(config, "history", "weather")[-1]
    assert (event["action"], event["to_version"], event["reason"], event["triggered_by"]) == (
        "start_challenger",
        "1.1.0",
        "try the refresh",
        "manual",
    )
    again = cli(config, "rollout", "start", "weather", "1.1.0", "--mode", "ab", code=1)
    assert "already has canary challenger 1.1.0" in " ".join(again.output.split())
    champ = cli(config, "rollout", "start", "weather", "1.0.0", "--mode", "ab", code=1)
    assert "version 1.0.0 is the champion" in " ".join(champ.output.split())
    stopped = as_json(config, "rollout", "stop", "weather")
    assert stopped["result"] == "stopped canary challenger 1.1.0 (was at 20%)"
    assert stopped["challenger"] is None and stopped["champion"]["version"] == "1.0.0"
    assert as_json(config, "history", "weather")[-1]["action"] == "stop_challenger"
    shadow = cli(
        config,
        "rollout",
        "start",
        "weather",
        "1.1.0",
        "--mode",
        "shadow",
        "--fraction",
        "0.3",
        code=2,
    )
    assert "--fraction does not apply to a shadow rollout" in " ".join(shadow.output.split())
    bad = cli(
        config, "rollout", "start", "weather", "1.1.0", "--mode", "ab", "--fraction", "1.5", code=2
    )
    assert "--fraction must be a share of traffic in (0, 1)" in " ".join(bad.output.split())
    direct = cli(config, "rollout", "start", "weather", "1.1.0", code=2)
    assert "rollout.mode 'direct'" in " ".join(direct.output.split())
    nothing = cli(config, "rollout", "stop", "weather", code=1)
    assert "no challenger on traffic" in " ".join(nothing.output.split())


def test_a_shrinking_training_set_is_alerted_to_a_webhook(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path], webhook: Webhook
) -> None:
    config = config_file(
        params=PARAMS,
        alerts={"webhooks": [webhook.url], "events": ["training_shrunk"], "training_shrink": 0.3},
    )
    cli(config, "ingest", "weather", weather_csv("1949-01-01", "1953-01-01"))
    cli(config, "train", "weather", "--deploy")  # 1461 rows
    cli(config, "train", "weather", "--days", 1200)  # 1201 rows: 18% fewer, below the 30%
    cli(config, "train", "weather", "--days", 400)  # 401 rows: 73% fewer
    body = webhook.wait_for("training_shrunk")
    assert webhook.events() == ["training_shrunk"]
    assert body["text"] == "[weather] training_shrunk: training set of 1.2.0 shrank by 73%"
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert (fields["rows"], fields["champion"], fields["champion_rows"]) == ("401", "1.0.0", "1461")
    with Workspace.open(config) as ws:  # recorded on the version too
        shrunk = {
            v.version: v.details.get("training_shrunk") for v in ws.store.list_versions("weather")
        }
    assert shrunk["1.1.0"] is None
    assert shrunk["1.2.0"] == {
        "rows": 401,
        "champion": "1.0.0",
        "champion_rows": 1461,
        "fraction": 0.7255,
        "limit": 0.3,
    }


def test_a_scheduled_fine_tune_past_max_fine_tunes_is_a_full_retrain(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]
) -> None:
    config = config_file(
        params=PARAMS, schedule={"fine_tune": "0 * * * *"}, policy={"max_fine_tunes": 0}
    )
    cli(config, "ingest", "weather", weather_csv("1949-01-01", "1952-01-01"))
    cli(config, "train", "weather", "--deploy")
    cli(config, "ingest", "weather", weather_csv("1952-01-01", "1953-01-01"))
    [run] = as_json(config, "scheduler", "--once")["runs"]
    assert (run["job"], run["outcome"]) == ("fine_tune", "ok"), run
    assert run["detail"].startswith(
        "0 fine-tunes since the last full retrain reach policy.max_fine_tunes (0): this "
        "scheduled fine-tune is a full retrain; gate "
    )
    with Workspace.open(config) as ws:
        newest = ws.store.list_versions("weather")[-1]
    assert (newest.version, newest.kind, newest.created_by) == ("1.1.0", "full_retrain", "schedule")


def test_a_scheduled_fine_tune_after_a_feature_was_added_is_a_full_retrain(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]
) -> None:
    """The champion cannot continue on a feature it never saw: the job retrains in full (as
    maintain would), instead of failing every time it fires."""
    from retrainer.datasets import WEATHER_FEATURES

    config = config_file(
        params=PARAMS,
        schedule={"fine_tune": "0 * * * *"},
        features={"numeric": WEATHER_FEATURES[:-1]},
        training={"window_days": 365},
    )
    cli(config, "ingest", "weather", weather_csv("1949-01-01", "1952-01-01"))
    cli(config, "train", "weather", "--deploy")
    every = {"params": PARAMS, "schedule": {"fine_tune": "0 * * * *"}}
    config_file(**every, training={"window_days": 365})  # every feature from now on
    cli(config, "ingest", "weather", weather_csv("1952-01-01", "1953-01-01"))
    [run] = as_json(config, "scheduler", "--once")["runs"]
    assert (run["job"], run["outcome"]) == ("fine_tune", "ok"), run["detail"]
    assert "differ from champion 1.0.0's" in run["detail"]
    assert "this scheduled fine-tune is a full retrain" in run["detail"]
    with Workspace.open(config) as ws:
        newest = ws.store.list_versions("weather")[-1]
    assert (newest.version, newest.kind) == ("2.0.0", "full_retrain")

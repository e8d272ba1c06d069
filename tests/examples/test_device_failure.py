"""examples/device-failure: the README's story, run as a user runs it, on a simulated clock.

RandomForest first, scored and updated daily (a warm-start update whenever 100 new labelled
readings exist); the family comparison written as JSON; a backup; the migration to LightGBM
by one environment setting (each family keeps its own params), forced over REST as the team
did it, and its status read back; more days on LightGBM; one command back to RandomForest.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from storyhelp import HTTP, Story, free_port, open_story, served, wait_for

MODEL = "device_failure"
TOKEN = "example-token"
SWITCH = {"RETRAINER_DEVICE_FAILURE__FAMILY": "lightgbm"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # messages never wrap


def _days(story: Story, days: range, env: dict[str, str] | None = None) -> list[str]:
    """Each day: score the morning's readings, take yesterday's labels, maintain."""
    actions = []
    for day in days:
        story.at(f"2026-05-{day - 120:02d}T06:00:00")
        scored = story.json("predict", MODEL, f"data/day-{day}.csv", "--out", "scored.csv")
        assert scored["rows"] == 60
        story.clock.advance(days=1)
        assert story.json("feedback", MODEL, f"data/labels-{day}.csv")["matched"] == 60
        story.clock.advance(minutes=30)
        actions.append(story.json("maintain", MODEL, env=env)["action"])
    return actions


def _job(url: str, job_id: str, auth: dict[str, str]) -> Any:
    body = HTTP.get(f"{url}/v1/jobs/{job_id}", headers=auth, timeout=30).json()
    return body if body["state"] in ("succeeded", "failed") else None


def test_device_failure_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    story = open_story("device-failure", tmp_path, "2026-05-01T05:00:00")

    # the first champion: RandomForest, as the team ran it
    assert story.json("ingest", MODEL, "data/history.csv")["inserted"] == 7200
    first = story.json("train", MODEL, "--deploy")
    assert first["deployed"] and first["family"] == "randomforest"

    # the team's compare_models.py --output comparison_results.json
    compared = story.json("compare", MODEL, "--families", "randomforest,lightgbm", "--folds", "3")
    Path("comparison.json").write_text(json.dumps(compared))
    families = {row["family"]: row for row in compared["rows"]}
    assert {f: r["status"] for f, r in families.items()} == {"randomforest": "ok", "lightgbm": "ok"}

    # five days on RandomForest: an update whenever 100 new labelled readings exist
    actions = _days(story, range(121, 126))
    assert actions == ["nothing", "fine_tune", "nothing", "fine_tune", "nothing"], actions
    updated = story.json("status", MODEL)["champion"]["version"]
    assert updated.startswith("1.0.") and updated != first["version"]  # patch versions

    # back up before the migration
    story("backup", "backups/before-lightgbm.tar.gz")
    with tarfile.open("backups/before-lightgbm.tar.gz") as tar:
        assert "manifest.json" in tar.getnames()
    rf_champion = story.json("status", MODEL)["champion"]["version"]

    # the migration is one setting; LightGBM takes its own params from its own entry, and
    # --force deploys it as the team's {"force_retrain": true} did
    said = " ".join(story("train", MODEL, "--deploy", "--force", env=SWITCH).output.split())
    assert ": lightgbm, 7500 rows" in said and " — deployed" in said, said
    if "gate reject" in said:  # the gate's reasons once, and the forcing said
        assert "(forced past the gate)" in said and said.count("p = ") == 1, said
    moved = story.json("status", MODEL)["champion"]
    detail = {v["version"]: v for v in story.json("versions", MODEL, "--detail")}
    assert detail[moved["version"]]["family"] == "lightgbm"
    params = detail[moved["version"]]["params"]
    assert params["num_leaves"] == 15 and "min_samples_leaf" not in params

    # five more days on LightGBM (the setting stays in the environment)
    actions = _days(story, range(126, 131), env=SWITCH)
    assert actions.count("fine_tune") == 2, actions

    # a retrain over REST, as the team's POST /api/predictions/train; the status read back
    monkeypatch.setenv(*next(iter(SWITCH.items())))
    with served(story.folder, free_port(), TOKEN) as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        job = HTTP.post(
            f"{url}/v1/models/{MODEL}/train", json={"days_back": 180}, headers=auth, timeout=30
        )
        assert job.status_code == 202, job.text
        done = wait_for(lambda: _job(url, job.json()["id"], auth), "the REST training job")
        assert done["state"] == "succeeded", done
        assert done["result"]["family"] == "lightgbm"
        status = HTTP.get(f"{url}/v1/models/{MODEL}/status", timeout=30).json()
        if done["result"]["deployed"]:
            assert status["champion"]["version"] == done["result"]["version"]
        else:  # the gate kept the champion: the reason is on the job's result
            assert done["result"]["gate"]["verdict"] != "pass", done
        served_version = status["champion"]["version"]
    monkeypatch.delenv(next(iter(SWITCH)))

    # one command back to the RandomForest champion
    versions = {v["version"]: v for v in story.json("versions", MODEL)}
    assert versions[served_version]["family"] == "lightgbm"
    story.json("rollback", MODEL, "--to", rf_champion)
    assert story.json("status", MODEL)["champion"]["version"] == rf_champion

"""examples/churn-workload: the README's story, run as a user runs it, on a simulated clock.

Two models in one spec. Churn: a manual training refused for too short a span of data, the
monthly scheduled retrain that trains past it with the warnings recorded, a day of members
the model cannot tell apart (low confidence: a fine-tune), a strike (accuracy 5 points down
and under the 0.85 floor: a full retrain), decided by `maintain --dry-run` first and then by
the daily scheduled check, whose retrain takes 10% of members as an A/B challenger.
Workload: budgets measured and recorded at training time and enforced, weekly scheduled
retrains on new weeks of the team's Parquet export, a feature added to the spec (a full
retrain naming it, a new major version), retention keeping five.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from storyhelp import Story, open_story

TIGHT = {"RETRAINER_WORKLOAD__GATE__MAX_MEMORY_MB": "0.001"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")


def _scheduled(story: Story) -> dict[tuple[str, str], dict[str, Any]]:
    """``retrainer scheduler --once``: the jobs that ran, by (model, job)."""
    runs = story.json("scheduler", "--once")["runs"]
    return {(r["model"], r["job"]): r for r in runs}


def _versions(story: Story, model: str) -> dict[str, dict[str, Any]]:
    return {v["version"]: v for v in story.json("versions", model, "--detail")}


def test_churn_workload_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    story = open_story("churn-workload", tmp_path, "2026-04-30T12:00:00")

    # the first export spans 60 days: a manual training refuses (quality.severity.manual)
    assert story.json("ingest", "churn", "data/churn-recent.csv")["inserted"] == 1440
    said = story("train", "churn", "--deploy", code=1).output
    assert "min_days  -       59     90" in said, said
    assert "quality.severity.manual: warn" in " ".join(said.split())

    # the monthly scheduled retrain (1st, 03:00) records the same finding and trains
    story.at("2026-05-01T03:00:00")
    ran = _scheduled(story)
    assert set(ran) == {("churn", "full_retrain")}
    assert ran["churn", "full_retrain"]["outcome"] == "ok"
    first = _versions(story, "churn")["1.0.0"]
    assert first["created_by"] == "schedule" and first["role"] == "champion"
    assert any("below min_days 90" in w for w in first["quality_warnings"]), first
    assert first["holdout"]["days"] == 30 and first["holdout"]["start"] >= "2026-03-31"
    assert story.json("ingest", "churn", "data/churn-older.csv")["inserted"] == 2880

    # workload: budgets measured in a fresh process at training time, recorded, enforced
    work = story.json("train", "workload", "--deploy")
    assert work["version"] == "1.0.0" and work["deployed"]
    cost = _versions(story, "workload")["1.0.0"]["serving_cost"]
    assert 0 < cost["latency_ms"]["single_row"]["p95"] < 100 and 0 < cost["memory_mb"] < 50
    squeezed = story.json("train", "workload", "--deploy", env=TIGHT)
    assert not squeezed["deployed"] and squeezed["gate"]["verdict"] == "reject"
    assert any("memory" in r for r in squeezed["gate"]["reasons"]), squeezed["gate"]
    assert story.json("status", "workload")["champion"]["version"] == "1.0.0"

    # churn, day 1: ordinary members; the daily check finds nothing to do
    story.at("2026-05-01T05:30:00")
    assert story.json("predict", "churn", "data/churn-day-1.csv", "--out", "s1.csv")["rows"] == 60
    story.at("2026-05-01T06:00:00")
    ran = _scheduled(story)
    assert ran["churn", "maintain"]["detail"].startswith("nothing"), ran

    # day 2: a thousand members the model cannot tell apart; confidence falls below 0.7
    story.at("2026-05-02T05:30:00")
    assert story.json("feedback", "churn", "data/churn-labels-1.csv")["matched"] == 60
    story("predict", "churn", "data/churn-day-2.csv", "--out", "s2.csv")
    story.at("2026-05-02T05:50:00")
    d = story.json("maintain", "churn", "--dry-run")
    assert (d["action"], d["numbers"]["rule"]) == ("fine_tune", "low_confidence"), d
    assert "(policy.min_confidence)" in d["reasons"][0] and d["numbers"]["mean_confidence"] < 0.7
    assert d["dry_run"] and story.json("status", "churn")["champion"]["version"] == "1.0.0"

    # day 3: a strike — members who looked safe leave; their outcomes come back on day 4
    story.at("2026-05-03T05:30:00")
    story("predict", "churn", "data/churn-day-3.csv", "--out", "s3.csv")
    story.at("2026-05-04T05:00:00")
    assert story.json("feedback", "churn", "data/churn-labels-3.csv")["matched"] == 60
    d = story.json("maintain", "churn", "--dry-run")
    assert (d["action"], d["numbers"]["rule"]) == ("full_retrain", "critical_degradation"), d
    assert "floors" in d["numbers"]["fired"], d["numbers"]["fired"]
    said = " ".join(d["reasons"])
    assert "(policy.critical_degradation_points: 0.05)" in said
    assert "below its floor 0.85 (policy.floors.accuracy)" in said
    assert d["numbers"]["degradation_points"] > 0.05
    assert len(story.json("versions", "churn")) == 1  # the dry run changed nothing

    # the daily check at 06:00 acts: a full retrain, on 10% of members as an A/B challenger
    story.at("2026-05-04T06:00:00")
    ran = _scheduled(story)
    assert ran["churn", "maintain"]["detail"].startswith("full_retrain"), ran
    status = story.json("status", "churn")
    assert "1.1.0 started as ab challenger at 10%" in ran["churn", "maintain"]["detail"], ran
    challenger = status["challenger"]
    assert (challenger["version"], challenger["mode"], challenger["fraction"]) == (
        "1.1.0",
        "ab",
        0.1,
    ), challenger
    assert status["champion"]["version"] == "1.0.0"  # 90% of members stay with it
    decided = story.json("decisions", "churn")
    assert decided[-1]["action"] == "full_retrain" and not decided[-1]["dry_run"], decided[-1]

    # workload: weekly retrains on Mondays at 04:00 as each week's export arrives
    for week, monday in enumerate(["2026-05-04", "2026-05-11"], start=1):
        shutil.copy(f"data/workload-weeks/week-{week}.parquet", "data/workload/")
        story.at(f"{monday}T04:00:00")
        ran = _scheduled(story)
        assert ran["workload", "full_retrain"]["outcome"] == "ok", ran

    # the team adds shift_percentage to the spec: the daily check retrains in full, naming it
    spec = Path("retrainer.yaml")
    spec.write_text(
        spec.read_text().replace(
            "numeric: [members, open_cases, grievances_last_week]",
            "numeric: [members, open_cases, grievances_last_week, shift_percentage]",
        )
    )
    story.at("2026-05-12T06:00:00")
    d = story.json("maintain", "workload", "--dry-run")
    assert (d["action"], d["numbers"]["rule"]) == ("full_retrain", "new_features"), d
    assert d["numbers"]["new_features"] == ["shift_percentage"]
    assert "shift_percentage" in d["reasons"][0]
    done = story.json("maintain", "workload")
    assert done["action"] == "full_retrain" and done["version"].startswith("2.0."), done

    # two more weeks: retention keeps the newest five (and the champions)
    for week, monday in enumerate(["2026-05-18", "2026-05-25"], start=3):
        shutil.copy(f"data/workload-weeks/week-{week}.parquet", "data/workload/")
        story.at(f"{monday}T04:00:00")
        assert _scheduled(story)["workload", "full_retrain"]["outcome"] == "ok"
    listed = story.json("versions", "workload")
    deleted = [v["version"] for v in listed if v["status"] == "deleted"]
    assert len(listed) == 7 and deleted == ["1.0.0", "1.1.0"], listed

"""examples/demand-3-tier: the README's story, run as a user runs it, on a simulated clock.

One CatBoost model of visitors per place and hour. Each Sunday the week ahead is forecast and
last week's counts come back; the spec's weekly job (``schedule.maintain``, run here by
``retrainer scheduler --once`` at each Sunday 02:00) decides what to do. The generator puts
the story's events at known weeks, and each rule is asserted where it must act: five weekly
warm-start fine-tunes (one of them for a moderate MAE degradation), a full retrain instead of
the sixth, an off-season in which the weekly job has nothing to learn from, the full retrain
91 days after the last one, and an emergency full retrain with a critical alert delivered to a
webhook on loopback when demand jumps.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from storyhelp import Story, open_story, wait_for

from webhooks import Webhook

MODEL = "demand"
START = datetime(2026, 1, 4)  # a Sunday: week 1 of the story (generate.START)
WEEK_ROWS = 24 * 15 * 7  # 24 places, open 15 hours a day


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")


def sunday(week: int, hour: int) -> str:
    """The Sunday that starts story week ``week``, at ``hour``:00."""
    return (START + timedelta(days=7 * (week - 1), hours=hour)).isoformat()


def weekly_job(story: Story, week: int) -> dict[str, Any]:
    """The spec's Sunday 02:00 job, as the scheduler runs it; the decision it stored."""
    story.at(sunday(week, 2))
    runs = story.json("scheduler", "--once")["runs"]
    assert [(r["job"], r["outcome"]) for r in runs] == [("maintain", "ok")], runs
    assert runs[0]["scheduled_for"] == sunday(week, 2)
    decision: dict[str, Any] = story.json("decisions", MODEL, "--limit", "1")[0]
    assert decision["taken_at"] == sunday(week, 2)
    return decision


def forecast_and_count(story: Story, week: int) -> None:
    """Sunday 03:00: forecast the week's open hours; the next Sunday 01:00: the counts."""
    story.at(sunday(week, 3))
    assert story.json("predict", MODEL, f"data/week-{week:02d}.csv", "--out", "f.csv")["rows"] == (
        WEEK_ROWS
    )
    story.at(sunday(week + 1, 1))
    got = story.json("feedback", MODEL, f"data/actuals-{week:02d}.csv")
    # every count joins the forecast of its own (place_id, timestamp) row
    assert (got["matched"], got["unmatched"], got["training_rows_added"]) == (
        WEEK_ROWS,
        0,
        WEEK_ROWS,
    ), got


def champion(story: Story) -> dict[str, Any]:
    versions = {v["version"]: v for v in story.json("versions", MODEL)}
    name = story.json("status", MODEL)["champion"]["version"]
    return versions[name]


def test_demand_3_tier_story(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RETRAINER_DEMAND__ALERTS__WEBHOOKS", json.dumps([webhook.url]))
    story = open_story("demand-3-tier", tmp_path, "2026-01-04T00:30:00")

    # the first model: 12 weeks of history, one row per (place_id, timestamp)
    assert story.json("ingest", MODEL, "data/history.csv")["inserted"] == 30240
    again = story.json("ingest", MODEL, "data/history.csv")
    assert (again["inserted"], again["duplicates"]) == (0, 30240)  # the composite key
    first = story.json("train", MODEL, "--deploy")
    assert first["deployed"] and first["family"] == "catboost" and first["version"] == "1.0.0"

    d = weekly_job(story, 1)  # an hour and a half after the first training: nothing to do
    assert d["action"] == "nothing", d

    # tier 1: weeks 1-6, a warm-start fine-tune each Sunday. From week 3 a new metro line
    # lifts demand beside a third of the places: the live MAE degrades by more than 15%
    # (but not 25%), and that week's fine-tune is for the degradation
    rules = []
    for week in range(1, 6):
        forecast_and_count(story, week)
        d = weekly_job(story, week + 1)
        assert d["action"] == "fine_tune" and d["outcome"].startswith("gate pass"), d
        rules.append(d["numbers"]["rule"])
        if week == 3:
            n = d["numbers"]
            assert 0.15 < n["degradation"] < 0.25, n
            assert d["reasons"][0].startswith("live mae "), d["reasons"]
            assert "(policy.degradation: 15%)" in d["reasons"][0], d["reasons"]
            assert any("policy.max_days_since_update" in r for r in d["reasons"]), d["reasons"]
        else:
            assert d["numbers"]["degradation"] < 0.15, d["numbers"]
    assert rules == ["days_since_update"] * 2 + ["degradation"] + ["days_since_update"] * 2
    tuned = champion(story)
    assert tuned["version"] == "1.0.5" and tuned["kind"] == "fine_tune"
    detail = {v["version"]: v for v in story.json("versions", MODEL, "--detail")}
    assert detail["1.0.5"]["rows"] == WEEK_ROWS  # a fine-tune learns the new week only

    # after five fine-tunes the next due one is a full retrain
    forecast_and_count(story, 6)
    d = weekly_job(story, 7)
    assert d["action"] == "full_retrain" and d["numbers"]["rule"] == "days_since_update", d
    said = d["reasons"][0]
    assert "5 fine-tunes since the last full retrain reach policy.max_fine_tunes (5)" in said, said
    refreshed = champion(story)
    assert refreshed["version"] == "1.1.0" and refreshed["kind"] == "full_retrain"

    # the off-season (weeks 7-17): no rows, so the weekly job has nothing to fine-tune on
    for week in range(8, 19):
        d = weekly_job(story, week)
        assert d["action"] == "nothing", d
        assert any("fine_tune.min_rows" in r for r in d["reasons"]), d["reasons"]
    assert champion(story)["version"] == "1.1.0"

    # reopened in week 18: a fine-tune; in week 19, 91 days after the full retrain, tier 2
    forecast_and_count(story, 18)
    d = weekly_job(story, 19)
    assert d["action"] == "fine_tune" and d["numbers"]["rule"] == "days_since_update", d
    forecast_and_count(story, 19)
    d = weekly_job(story, 20)
    assert d["action"] == "full_retrain" and d["numbers"]["rule"] == "full_retrain_age", d
    assert d["reasons"][0] == (
        "91 days since the last full retrain (policy.max_days_since_full_retrain: 90)"
    ), d["reasons"]
    assert champion(story)["version"] == "1.2.0"
    assert "critical_degradation" not in webhook.events()

    # tier 3: in week 20 a competitor has closed and demand jumps: the live MAE is more than
    # 25% worse, so an emergency full retrain, and a critical alert reaches the webhook
    forecast_and_count(story, 20)
    d = weekly_job(story, 21)
    assert d["action"] == "full_retrain" and d["numbers"]["rule"] == "critical_degradation", d
    assert d["numbers"]["degradation"] > 0.25, d["numbers"]
    assert "(policy.critical_degradation: 25%)" in d["reasons"][0], d["reasons"]
    emergency = champion(story)
    assert emergency["version"] == "1.3.0" and emergency["kind"] == "full_retrain"
    wait_for(lambda: "critical_degradation" in webhook.events(), "the critical alert")
    body = webhook.bodies[webhook.events().index("critical_degradation")]
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert (fields["metric"], fields["action"]) == ("mae", "full_retrain"), fields
    assert body["text"] == "[demand] critical_degradation: critical degradation of champion 1.2.0"

    # every version in the registry, with the tier that made it
    kinds = [(v["version"], v["kind"], v["created_by"]) for v in story.json("versions", MODEL)]
    assert [k for _, k, _ in kinds] == ["initial"] + ["fine_tune"] * 5 + [
        "full_retrain",
        "fine_tune",
        "full_retrain",
        "full_retrain",
    ], kinds
    assert {by for _, _, by in kinds[1:]} == {"schedule"}, kinds

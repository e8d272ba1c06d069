"""examples/stock-nightly: the README's story, run as a user runs it.

The original feature set trained and serving; the enhanced set (one flag) trained as a
shadow challenger, then in an A/B test through the real server; nightly predictions with
their calibrated interval and the next evening's actuals; the A/B verdict and the promotion
or withdrawal it calls for; the flag flipped back to the original; and the fallback to the
original set when the rows lack the enhanced columns, recorded on the version.

The server runs on the wall clock, so the story's clock follows it (evenings are compressed
into seconds): predictions, actuals, rollouts and the A/B window all sit on one timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from storyhelp import HTTP, Story, free_port, open_story, served, wait_for

from retrainer.core.cron import cron_trigger

MODEL = "stock_nightly"
TOKEN = "example-token"
ORIGINAL = {"RETRAINER_STOCK_NIGHTLY__FEATURE_SET": "original"}
CHAOS = {"hurst_60", "sample_entropy_20", "fractal_dim_30"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")


def _now(story: Story) -> None:
    story.clock.set(datetime.now(UTC).replace(tzinfo=None))


def _predict(url: str, row: dict[str, Any], sent: list[int]) -> dict[str, Any]:
    """One row scored over REST; ``sent`` counts every request the server must log."""
    res = HTTP.post(f"{url}/v1/models/{MODEL}/predict", json={"row": row}, timeout=30)
    assert res.status_code == 200, res.text
    sent[0] += 1
    body: dict[str, Any] = res.json()
    return body


def _evening(story: Story, url: str, day: int, sent: list[int]) -> list[dict[str, Any]]:
    """One evening: score the day's rows over REST (one request per ticker, so the A/B split
    is by ticker-day), then record the previous evening's actuals."""
    rows = pd.read_csv(f"data/day-{day}.csv").to_dict("records")
    answers = []
    for row in rows:
        body = _predict(url, row, sent)
        assert body["lower"][0] < body["predictions"][0] < body["upper"][0], body
        answers.append(body)
    _now(story)

    def logged() -> bool:  # the server logs in the background: wait for every request
        _now(story)
        live = story.json("monitor", MODEL)["versions"]
        return sum(v["predictions"] for v in live if v["arm"] != "shadow") >= sent[0]

    wait_for(logged, f"the server to log day {day}'s predictions")
    got = story.json("feedback", MODEL, f"data/actuals-{day}.csv")
    assert got["matched"] == len(rows), got
    return answers


def _features(story: Story) -> dict[str, set[str]]:
    detail = story.json("versions", MODEL, "--detail")
    return {
        v["version"]: set(v["features"]["numeric"]) | set(v["features"]["categorical"])
        for v in detail
    }


def test_stock_nightly_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    start = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    story = open_story("stock-nightly", tmp_path, start)

    # the nightly job: 22:00 in New York, weeknights, whatever the UTC offset
    trigger = cron_trigger("0 22 * * 1-5", "America/New_York")
    fire = trigger.get_next_fire_time(None, datetime(2026, 7, 3, 12, tzinfo=UTC))
    assert (fire.hour, fire.weekday(), fire.utcoffset().total_seconds()) == (22, 4, -4 * 3600)

    # the original model, as the team ran it (the flag at "original")
    assert story.json("ingest", MODEL, "data/history.csv")["inserted"] == 1920
    first = story.json("train", MODEL, "--deploy", env=ORIGINAL)
    assert first["deployed"] and first["version"] == "1.0.0"
    # the enhanced set by the spec's flag: a new major version, started as a shadow
    _now(story)
    enhanced = story.json("train", MODEL, "--deploy")
    assert enhanced["version"] == "2.0.0" and not enhanced["deployed"]
    status = story.json("status", MODEL)
    assert status["challenger"]["version"] == "2.0.0", status
    assert status["challenger"]["mode"] == "shadow", status
    features = _features(story)
    assert CHAOS.isdisjoint(features["1.0.0"]) and features["2.0.0"] >= CHAOS
    detail = {v["version"]: v for v in story.json("versions", MODEL, "--detail")}
    assert detail["2.0.0"]["feature_set"] == {"name": "enhanced"}
    assert detail["1.0.0"]["feature_set"] == {"name": "original"}
    interval = detail["1.0.0"]["interval"]
    assert interval["coverage"] == 0.9 and interval["half_width"] > 0
    # the team's kind of claim, measured: the enhanced set's walk-forward R² is far higher in
    # relative terms (a ratio of two small numbers), its errors only a few percent lower
    fold = {v: detail[v]["folds_summary"] for v in ("1.0.0", "2.0.0")}
    assert fold["2.0.0"]["r2"]["mean"] / fold["1.0.0"]["r2"]["mean"] > 1.5, fold
    assert 0.95 < fold["2.0.0"]["mae"]["mean"] / fold["1.0.0"]["mae"]["mean"] < 1, fold

    sent = [0]  # requests the server answered (and logs), probes included
    with served(story.folder, free_port(), TOKEN) as url:
        # five evenings with the enhanced set in shadow: every answer is the champion's
        for day in range(261, 266):
            assert {a["arm"] for a in _evening(story, url, day, sent)} == {"champion"}
        _now(story)
        live = {(v["version"], v["arm"]): v for v in story.json("monitor", MODEL)["versions"]}
        assert live[("2.0.0", "shadow")]["labelled"] == 40, live
        coverage = live[("1.0.0", "champion")]["interval_coverage"]
        assert coverage["target"] == 0.9 and 0.5 <= coverage["live"] <= 1.0, coverage

        # then an A/B test: half the ticker-days to each arm, each with its own features
        story("rollout", "stop", MODEL)
        story("rollout", "start", MODEL, "2.0.0", "--mode", "ab", "--fraction", "0.5")
        probe = pd.read_csv("data/day-266.csv").to_dict("records")

        def ab_live() -> bool:
            return "challenger" in {_predict(url, r, sent)["arm"] for r in probe}

        wait_for(ab_live, "the server to route A/B traffic")
        arms: list[str] = []
        for day in range(266, 281):
            arms += [a["arm"] for a in _evening(story, url, day, sent)]
        assert {"champion", "challenger"} <= set(arms), arms

    _now(story)
    verdict = story.json("abtest", MODEL)
    said = story("abtest", MODEL).output
    assert "2.0.0" in said and "1.0.0" in said and "verdict:" in said
    # a significance test on the live errors of both arms, not a ratio of two offline scores
    comparison = verdict["comparison"]
    assert comparison["metric"] == "mae" and comparison["p_value"] is not None, comparison
    assert comparison["n_champion"] > 0 and comparison["n_challenger"] > 0, comparison
    # routing is by ticker-day, so the seeded story's verdict is fixed: 15 evenings of live
    # errors cannot tell the enhanced set from the original (the README says so), so the
    # challenger comes off traffic and the original stays champion
    assert comparison["verdict"] == "inconclusive" and comparison["p_value"] > 0.05, comparison
    assert "no significant difference yet" in said
    story("rollout", "stop", MODEL)
    status = story.json("status", MODEL)
    assert status["challenger"] is None and status["champion"]["version"] == "1.0.0", status

    # the flag at "original" again: one setting; the champion's recipe on newer rows (a minor
    # version, a refresh), started as the spec's shadow like every candidate
    _now(story)
    back = story.json("train", MODEL, "--deploy", env=ORIGINAL)
    assert back["feature_set"] == {"name": "original"}, back
    assert back["version"] == "1.1.0" and back["role"] == "challenger", back
    assert CHAOS.isdisjoint(_features(story)[back["version"]])

    # the fallback: rows without the chaos columns (the team's database before them) train
    # the original set although the flag says enhanced, and the version says why
    fresh = {"RETRAINER_STORE": f"sqlite:///{tmp_path / 'fresh.db'}"}
    assert story.json("ingest", MODEL, "data/history-original.csv", env=fresh)["inserted"] == 1920
    planned = " ".join(story("train", MODEL, "--dry-run", env=fresh).output.split())
    assert "feature set original (fell back from enhanced: feature set 'enhanced'" in planned
    said = " ".join(story("train", MODEL, "--deploy", env=fresh).output.split())
    assert "stock_nightly 1.0.0: ensemble, 1920 rows" in said and "deployed" in said, said
    assert "feature set original (fell back from enhanced" in said, said
    detail = {v["version"]: v for v in story.json("versions", MODEL, "--detail", env=fresh)}
    record = detail["1.0.0"]["feature_set"]
    assert record["name"] == "original" and record["requested"] == "enhanced", record
    assert sorted(record["missing"]) == sorted(CHAOS), record

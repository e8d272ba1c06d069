"""A full retrain chooses its training window and recency weighting on the newest rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from daily_rows import choice_workspace, two_a_day

from retrainer.core.entities import Decision
from retrainer.core.errors import ConfigError
from retrainer.lifecycle.choice import change_seen, last_change, reuse_choice
from retrainer.lifecycle.fine_tune import fine_tune
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.maintain import choice_note
from retrainer.lifecycle.train import train

DAYS = 4 * 365


def _stream(flip_at: int | None, seed: int = 0) -> pd.DataFrame:
    """Two rows a day for four years; y = x0 > 0.5 (10% noise), the relation reversed from
    day ``flip_at`` on."""
    rng = np.random.default_rng(seed)
    n = 2 * DAYS
    x = rng.random((n, 3))
    day = np.arange(n) // 2
    y = x[:, 0] > 0.5
    if flip_at is not None:
        y = np.where(day >= flip_at, ~y, y)
    noise = rng.random(n) < 0.1
    return two_a_day(x, (y ^ noise).astype(int))


def test_an_abrupt_change_makes_the_retrain_learn_the_recent_rows(tmp_path: Path) -> None:
    with choice_workspace(tmp_path) as ws:
        ingest_frame(ws, "m", _stream(flip_at=int(DAYS * 0.6)))
        v = train(ws, "m").version
    choice = v.details["training_choice"]
    chosen = choice["chosen"]
    assert chosen["window"] == "1/4", choice
    assert chosen["p_value"] < 0.05
    assert v.details["window_rows"] == 2 * DAYS
    assert v.n_rows < 2 * DAYS  # the version learnt the chosen window and the holdout
    assert pd.Timestamp(v.train_start) == pd.Timestamp(chosen["start"])
    assert choice["cpu_seconds"] <= v.details["fit_cpu_seconds"]
    names = [(c["window"], c["half_life"]) for c in choice["candidates"]]
    assert names[:3] == [("all", "none"), ("1/4", "none"), ("since_change", "none")]
    since = choice["candidates"][2]
    assert since["skipped"] == "no concept drift or critical degradation detected"


def test_a_stationary_stream_keeps_every_row_unweighted(tmp_path: Path) -> None:
    with choice_workspace(tmp_path) as ws:
        ingest_frame(ws, "m", _stream(flip_at=None))
        v = train(ws, "m").version
    chosen = v.details["training_choice"]["chosen"]
    assert (chosen["window"], chosen["half_life"]) == ("all", "none")
    assert v.n_rows == 2 * DAYS


def test_a_candidate_too_short_is_skipped_and_said(tmp_path: Path) -> None:
    choice = {"windows": ["all", "10d"], "half_lives": ["none", "30d"]}
    with choice_workspace(tmp_path, training={"choice": choice}) as ws:
        ingest_frame(ws, "m", _stream(flip_at=None))
        v = train(ws, "m").version
    short = v.details["training_choice"]["candidates"][1]
    assert short["window"] == "10d" and "fewer than 100 (quality.min_rows)" in short["skipped"]
    weighted = v.details["training_choice"]["candidates"][2]
    assert weighted["half_life_days"] == 30.0 and weighted["value"] > 0.5


def test_a_family_without_weights_skips_the_weighting(tmp_path: Path) -> None:
    with choice_workspace(tmp_path, family="river", params={"n_models": 2}) as ws:
        ingest_frame(ws, "m", _stream(flip_at=None).iloc[:400])
        v = train(ws, "m").version
    skipped = [c for c in v.details["training_choice"]["candidates"] if c["half_life"] != "none"]
    assert skipped and skipped[0]["skipped"] == "the river family takes no row weights"


def test_choice_off_trains_the_whole_window_as_before(tmp_path: Path) -> None:
    with choice_workspace(tmp_path, training={"choice": {"enabled": False}}) as ws:
        ingest_frame(ws, "m", _stream(flip_at=int(DAYS * 0.6)))
        v = train(ws, "m").version
    assert "training_choice" not in v.details and v.n_rows == 2 * DAYS


def test_a_fine_tune_records_the_rounds_early_stopping_chose(tmp_path: Path) -> None:
    frame = _stream(flip_at=None)
    with choice_workspace(tmp_path) as ws:
        ingest_frame(ws, "m", frame.iloc[: 2 * 3 * 365])
        train(ws, "m", deploy=True)
        ingest_frame(ws, "m", frame.iloc[2 * 3 * 365 :])
        v = fine_tune(ws, "m").version
    rounds = v.details["training_choice"]["rounds"]
    assert 0 <= rounds["added"] <= rounds["most"] == 100
    assert rounds["chosen_by"].startswith("early stopping on ")


@pytest.mark.parametrize(
    ("setting", "bad", "said"),
    [
        ("windows", ["all", "3/2"], "not a fraction in (0, 1]"),
        ("windows", [], "at least one candidate"),
        ("windows", ["lately"], "lately"),
        ("half_lives", ["0/4"], "not a fraction in (0, 1]"),
        ("every_max", 2, "below training.choice.every (4)"),
    ],
)
def test_bad_candidates_are_spec_errors(
    tmp_path: Path, setting: str, bad: list[str] | int, said: str
) -> None:
    with pytest.raises(ConfigError, match=f"training.choice.{setting}") as err:
        choice_workspace(tmp_path, training={"choice": {setting: bad}})
    assert said in str(err.value)


def _decision(day: int, drift: bool, dry: bool = False) -> Decision:
    at = datetime(2026, 1, day, tzinfo=UTC)
    return Decision("m", "nothing", (), {"concept_drift": drift}, at, dry)


def test_the_last_change_is_where_the_newest_drift_run_began() -> None:
    newest_first = [_decision(d, drift) for d, drift in [(9, True), (8, True), (7, False)]]
    newest_first += [_decision(5, True)]
    assert last_change(newest_first) == pd.Timestamp("2026-01-08")
    assert last_change([_decision(3, False)]) is None
    assert last_change([_decision(4, True, dry=True)]) is None


def test_a_change_run_spans_checks_that_could_not_judge_and_starts_at_its_live_window() -> None:
    """After a daily stream's change, the first check sees it on its live window; the new
    champion then has too few labelled rows for a live metric for a few checks, and its own
    critical degradation continues the run. The change began where the first check's live
    window did; it was last seen at the newest check."""

    def check(day: int, fired: bool, live: float | None, since: str | None = None) -> Decision:
        numbers: dict[str, Any] = {
            "fired": ["critical_degradation"] if fired else [],
            "live_metric": live,
        }
        if since:
            numbers["live_since"] = since
        return Decision("m", "nothing", (), numbers, datetime(2026, 3, day, tzinfo=UTC))

    newest_first = [
        check(20, True, 4.1, "2026-03-10T00:00:00"),
        check(15, False, None),  # the new champion: too few labelled rows to judge
        check(10, True, 3.5, "2026-02-20T00:00:00+00:00"),
        check(5, False, 1.0),  # judged and quiet: before the change
        check(1, True, 9.0),
    ]
    assert last_change(newest_first) == pd.Timestamp("2026-02-20")
    assert change_seen(newest_first) == pd.Timestamp("2026-03-20")
    assert last_change(newest_first[:1]) == pd.Timestamp("2026-03-10")
    assert change_seen([check(5, False, 1.0)]) is None


def test_after_a_detected_change_the_candidates_are_judged_on_the_rows_since_it(
    tmp_path: Path,
) -> None:
    """A change the monitor saw 200 days ago: every candidate is judged on the newest rows
    since it (not the gate's 290-day holdout, mostly the old concept), and the rows since
    the change win."""
    flip = DAYS - 200
    frame = _stream(flip_at=flip)
    frame["y"] = np.where(frame["t"] >= frame["t"].iloc[0] + pd.Timedelta(days=flip), 1, -1) * (
        10 * frame["x0"]
    ) + np.random.default_rng(1).normal(0, 0.3, len(frame))
    with choice_workspace(tmp_path, task="regression") as ws:
        ingest_frame(ws, "m", frame)
        changed = pd.Timestamp(frame["t"].iloc[0] + pd.Timedelta(days=flip)).to_pydatetime()
        ws.store.add_decision(
            Decision("m", "full_retrain", ("concept drift",), {"concept_drift": True}, changed)
        )
        v = train(ws, "m").version
    choice = v.details["training_choice"]
    assert choice["holdout"].startswith("the rows since the change on ")
    assert choice["holdout_rows"] == v.details["holdout_rows"] == 100  # 20% of 400, at least 100
    assert choice["chosen"]["window"] == "since_change", choice
    assert v.metrics["mae"] < 1.0  # the new relation learnt (the old one errs by ~6.7)


def test_a_critical_degradation_counts_as_a_change() -> None:
    at = datetime(2026, 1, 9, tzinfo=UTC)
    d = Decision("m", "full_retrain", (), {"fired": ["critical_degradation"]}, at)
    assert last_change([d]) == pd.Timestamp("2026-01-09")


def test_the_choice_is_reused_until_every_nth_retrain(tmp_path: Path) -> None:
    """One retrain in ``training.choice.every`` chooses; the ones between fit the last choice
    alone, and each says which version's choice it reused."""
    with choice_workspace(tmp_path, training={"choice": {"every": 3}}) as ws:
        ingest_frame(ws, "m", _stream(flip_at=None))
        records = [train(ws, "m").version.details["training_choice"] for _ in range(4)]
    made = [r for r in records if "reused_from" not in r]
    # a made choice tries the previous label, then the time features last; a reused one keeps
    # the champion's inputs
    assert [len(r["candidates"]) for r in records] == [6, 1, 1, 6]
    assert all(r["candidates"][-1]["time_features"] for r in made)
    assert len(made) == 2 and records[1]["reused_from"] == records[2]["reused_from"] == "1.0.0"
    assert records[1]["chosen"]["window"] == records[0]["chosen"]["window"]


def test_a_choice_that_confirms_the_one_before_it_doubles_the_wait(tmp_path: Path) -> None:
    """On a stationary stream every choice picks the window and weighting of the one before
    it: the wait between choices doubles from ``every`` up to ``every_max``."""
    choice = {"every": 2, "every_max": 4}
    with choice_workspace(tmp_path, training={"choice": choice}) as ws:
        ingest_frame(ws, "m", _stream(flip_at=None))
        records = [train(ws, "m").version.details["training_choice"] for _ in range(6)]
    made = ["reused_from" not in r for r in records]
    assert made == [True, False, True, False, False, False], records
    assert records[0]["chosen"]["window"] == records[2]["chosen"]["window"]
    assert records[5]["reused_from"] == "1.2.0"


def test_a_change_since_the_last_choice_makes_the_retrain_choose_anew(tmp_path: Path) -> None:
    with choice_workspace(tmp_path) as ws:
        ingest_frame(ws, "m", _stream(flip_at=None))
        v = train(ws, "m").version
        spec = ws.model_spec("m")
    kept, reused = reuse_choice(spec, [v], change_seen=None)
    made = v.details["training_choice"]
    assert reused is not None and (reused.version, reused.anew) == ("1.0.0", spec)
    assert (reused.value, reused.se) == (made["chosen"]["value"], made["value_se"])
    assert kept.training.choice.windows == [made["chosen"]["window"]]
    after = pd.Timestamp(v.created_at) + pd.Timedelta(seconds=1)
    assert reuse_choice(spec, [v], change_seen=after) == (spec, None)
    every_time = spec.model_copy(
        update={"training": spec.training.model_copy(
            update={"choice": spec.training.choice.model_copy(update={"every": 1})})}
    )  # fmt: skip
    assert reuse_choice(every_time, [v], change_seen=None) == (every_time, None)


def test_a_reused_choice_that_scores_worse_beyond_chance_is_made_anew(tmp_path: Path) -> None:
    """The first choice is made on three stationary years; the relation then reverses, with
    no change decision recorded. The next retrain would reuse the choice, but its recipe
    scores far worse on the new holdout than when chosen: the retrain chooses anew, says
    why, and counts the reused fit's CPU time."""
    frame = _stream(flip_at=DAYS - 400)
    with choice_workspace(tmp_path, training={"choice": {"every": 3}}) as ws:
        ingest_frame(ws, "m", frame.iloc[: 2 * 3 * 365])
        first = train(ws, "m", deploy=True).version.details["training_choice"]
        ingest_frame(ws, "m", frame.iloc[2 * 3 * 365 :])
        v = train(ws, "m").version
    record = v.details["training_choice"]
    assert first["chosen"]["window"] == "all" and first["chosen"]["value"] > 0.7
    assert "reused_from" not in record, record
    assert record["anew"].startswith("the reused choice's accuracy worsened from ")
    assert "(on 1.0.0's holdout)" in record["anew"] and "chosen anew" in record["anew"]
    assert len(record["candidates"]) > 1  # every candidate, not the reused one alone
    assert record["value_se"] > 0
    assert record["cpu_seconds"] > sum(c.get("cpu_seconds", 0) for c in record["candidates"])
    assert choice_note(record).startswith(f"; {record['anew']}; chose window ")  # maintain's

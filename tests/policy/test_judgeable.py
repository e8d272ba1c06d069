"""A fine-tune is chosen only when the gate could judge it on its validation slice."""

from __future__ import annotations

from datetime import datetime

from retrainer.core.spec_sections import Policy, Rollout
from retrainer.policy.decide import decide
from retrainer.policy.state import LivePerformance, MaintenanceState

NOW = datetime(2024, 1, 1)


def _state(rows: int, **kw: object) -> MaintenanceState:
    return MaintenanceState(
        model="m",
        now=NOW,
        champion="1.0.0",
        days_since_full_retrain=10,
        days_since_update=30,
        fine_tunes_since_full_retrain=0,
        rows_since_champion=rows,
        fine_tune_rows_needed=1000,
        **kw,
    )


def test_staleness_fires_on_age_with_few_new_rows_and_says_what_is_judged() -> None:
    d = decide(_state(200, fine_tune_min_rows=50), Policy(max_days_since_update=7), Rollout())
    assert (d.action, d.numbers["rule"]) == ("fine_tune", "days_since_update")
    assert d.reasons[0] == (
        "30 days since the last update (policy.max_days_since_update: 7); a fine-tune on the "
        "200 new rows there are, judged on what is there (the gate wants 1000 to judge it "
        "fully and keeps the champion when its slice is too small)"
    )


def test_staleness_without_rows_to_learn_from_waits_and_notes_why() -> None:
    d = decide(_state(20, fine_tune_min_rows=50), Policy(max_days_since_update=7), Rollout())
    assert d.action == "nothing"
    assert any(
        "only 20 new rows: a fine-tune needs at least 50 (fine_tune.min_rows)" in r
        for r in d.reasons
    )


def test_staleness_with_enough_new_rows_fine_tunes() -> None:
    assert decide(_state(1500), Policy(max_days_since_update=7), Rollout()).action == "fine_tune"


def test_degradation_without_enough_rows_escalates_to_full_retrain() -> None:
    perf = LivePerformance("accuracy", 0.70, 0.85, 500)  # 17.6% worse: the fine-tune band
    d = decide(_state(200, performance=perf), Policy(max_days_since_update=7), Rollout())
    assert d.action == "full_retrain"
    assert "could not be judged" in d.reasons[0]

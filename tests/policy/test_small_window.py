"""The policy plans a fine-tune with the gate's minimum scaled to a small window, and says so."""

from __future__ import annotations

from datetime import datetime

from retrainer.core.spec_sections import Gate, Policy, Rollout
from retrainer.evaluation.min_rows import min_rows_for
from retrainer.policy.decide import decide
from retrainer.policy.state import LivePerformance, MaintenanceState

NOTE = "min_rows 60 (scaled: the holdout of a window of 300 rows holds 60)"


def _state(rows: int) -> MaintenanceState:
    need = min_rows_for(Gate(), 60, 300)
    return MaintenanceState(
        model="m",
        now=datetime(2024, 1, 1),
        champion="1.0.0",
        days_since_full_retrain=10,
        days_since_update=30,
        rows_since_champion=rows,
        fine_tune_rows_needed=need.fine_tune_rows_needed(0.1),
        gate_min_rows=need.rows,
        gate_min_rows_note=need.note,
        performance=LivePerformance("mae", live=1.2, baseline=1.0, n_samples=100),
    )


def test_a_block_of_100_rows_is_fine_tuned_on_a_300_row_window() -> None:
    d = decide(_state(100), Policy(new_data_fraction=None), Rollout())
    assert (d.action, d.numbers["rule"]) == ("fine_tune", "degradation")
    assert d.numbers["fine_tune_rows_needed"] == 90
    assert (d.numbers["gate_min_rows"], d.numbers["gate_min_rows_note"]) == (60, NOTE)


def test_too_few_rows_for_the_scaled_slice_is_a_full_retrain_that_says_why() -> None:
    d = decide(_state(70), Policy(new_data_fraction=None), Rollout())
    assert d.action == "full_retrain"
    assert d.reasons[0].endswith(
        f"a fine-tune on 70 new rows could not be judged (the gate needs 90 for its "
        f"validation slice; gate {NOTE}), so a full retrain"
    )

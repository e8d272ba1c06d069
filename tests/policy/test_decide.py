from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrainer.core.errors import InputError
from retrainer.core.spec_sections import Policy, Rollout
from retrainer.policy.decide import QUALITY_BLOCK, RULE_NAMES, SEVERITY, decide
from retrainer.policy.state import (
    Capabilities,
    DataDrift,
    LivePerformance,
    LiveRegression,
    MaintenanceState,
    NaiveComparison,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)
# The age limits these cases were written for (the defaults are 365 days and unset).
POLICY, ROLLOUT = Policy(max_days_since_full_retrain=90, max_days_since_update=7), Rollout()


def healthy(**changes: Any) -> MaintenanceState:
    base = MaintenanceState(
        model="churn",
        now=NOW,
        champion="1.2.0",
        days_since_full_retrain=10,
        fine_tunes_since_full_retrain=1,
        days_since_update=2,
        performance=LivePerformance("accuracy", live=0.86, baseline=0.87, n_samples=500),
        drift=DataDrift(share=0.1, drift=False),
        new_rows_since_update=20,
    )
    return replace(base, **changes)


def perf(live: float, baseline: float = 0.87, n: int = 500) -> LivePerformance:
    return LivePerformance("accuracy", live=live, baseline=baseline, n_samples=n)


def regression(live: float = 0.80, previous: float = 0.87, n: int = 500) -> LiveRegression:
    return LiveRegression("accuracy", "1.3.0", "1.2.0", live=live, previous=previous, n_samples=n)


def act(state: MaintenanceState, policy: Policy = POLICY, rollout: Rollout = ROLLOUT) -> str:
    return decide(state, policy, rollout).action


# --- each branch -------------------------------------------------------------------------


def test_healthy_model_does_nothing_and_says_why() -> None:
    d = decide(healthy(), POLICY, ROLLOUT)
    assert d.action == "nothing"
    assert d.model == "churn" and d.taken_at == NOW
    assert d.reasons[0].startswith("no threshold crossed: degradation 1.1% (fine-tune above 15%)")
    assert "10 days since full retrain (limit 90)" in d.reasons[0]
    assert d.numbers["rule"] is None and d.numbers["fired"] == []


def test_no_champion_trains_from_scratch() -> None:
    d = decide(healthy(champion=None, quality_ok=False), POLICY, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "no_champion")
    assert d.reasons == ("the model has no champion yet: train one from scratch",)


def test_quality_failure_blocks_and_says_what_was_held_back() -> None:
    state = healthy(
        quality_ok=False,
        quality_problems=("missing fraction of 'age' is 0.31 (max 0.2)",),
        performance=perf(0.6),
    )
    d = decide(state, POLICY, ROLLOUT)
    assert d.action == "nothing"
    assert d.reasons[0] == f"{QUALITY_BLOCK}: missing fraction of 'age' is 0.31 (max 0.2)"
    assert d.reasons[1].startswith("held back: full_retrain because critical degradation")
    assert d.numbers["quality_ok"] is False


def test_live_regression_rolls_back() -> None:
    d = decide(healthy(regression=regression()), POLICY, ROLLOUT)
    assert d.action == "rollback"
    assert d.reasons[0] == (
        "live accuracy of 1.3.0 is 0.8, 8% (0.07 points) below previous champion 1.2.0 at 0.87 "
        "on 500 samples (rollout.auto_rollback_drop: 5%)"
    )
    assert d.numbers["regression_drop"] == pytest.approx(0.07 / 0.87)


def test_live_regression_in_points() -> None:
    """The team's "accuracy < current - 0.05": 0.07 points crosses 0.05 points even where
    the relative limit is not crossed (8% < 10%)."""
    relative_only = ROLLOUT.model_copy(update={"auto_rollback_drop": 0.1})
    assert decide(healthy(regression=regression()), POLICY, relative_only).action == "nothing"
    both = relative_only.model_copy(update={"auto_rollback_points": 0.05})
    d = decide(healthy(regression=regression()), POLICY, both)
    assert d.action == "rollback"
    assert d.reasons[0].endswith("(rollout.auto_rollback_points: 0.05)")
    assert (
        decide(
            healthy(regression=regression()),
            POLICY,
            relative_only.model_copy(update={"auto_rollback_points": 0.08}),
        ).action
        == "nothing"
    )


def test_live_regression_needs_samples_a_big_drop_and_the_switch() -> None:
    assert act(healthy(regression=regression(n=50))) == "nothing"
    assert act(healthy(regression=regression(live=0.85))) == "nothing"  # 2.3% < 5%
    off = Policy(rollback_on_regression=False)
    d = decide(healthy(regression=regression()), off, ROLLOUT)
    assert d.action == "nothing"
    assert any("rollback_on_regression is off" in r for r in d.reasons)
    few = decide(healthy(regression=regression(n=50)), POLICY, ROLLOUT)
    assert any("50 samples since the deployment" in r for r in few.reasons)


def test_critical_degradation_and_critical_drift_retrain_fully() -> None:
    d = decide(healthy(performance=perf(0.6)), POLICY, ROLLOUT)
    assert d.action == "full_retrain"
    assert d.reasons[0] == (
        "critical degradation: live accuracy 0.6 is 31% below baseline 0.87 "
        "(policy.critical_degradation: 25%)"
    )
    drift = DataDrift(share=0.7, drift=True, critical=True, drifted=("age", "plan"))
    d = decide(healthy(drift=drift), POLICY, ROLLOUT)
    assert (d.action, d.reasons[0]) == (
        "full_retrain",
        "critical data drift: 70% of features drifted (age, plan)",
    )


def test_age_and_fine_tune_count_force_a_full_retrain_unless_disabled() -> None:
    old = healthy(days_since_full_retrain=91.5)
    d = decide(old, POLICY, ROLLOUT)
    assert (d.action, d.reasons[0]) == (
        "full_retrain",
        "91.5 days since the last full retrain (policy.max_days_since_full_retrain: 90)",
    )
    assert act(old, Policy(max_days_since_full_retrain=None)) == "nothing"
    assert act(healthy(fine_tunes_since_full_retrain=9)) == "nothing"  # nothing due


def test_moderate_degradation_fine_tunes_or_retrains_without_warm_start() -> None:
    state = healthy(performance=perf(0.712, baseline=0.871))
    d = decide(state, POLICY, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("fine_tune", "degradation")
    assert d.reasons == (
        "live accuracy 0.712 is 18.3% below baseline 0.871 (policy.degradation: 15%)",
    )
    assert d.numbers["degradation"] == pytest.approx((0.871 - 0.712) / 0.871)
    cold = replace(state, capabilities=Capabilities(warm_start=False))
    d = decide(cold, POLICY, ROLLOUT)
    assert d.action == "full_retrain"
    assert d.reasons[0].endswith("the family cannot warm start, so a full retrain")


def test_degradation_of_a_smaller_is_better_metric() -> None:
    mae = LivePerformance("mae", live=12.0, baseline=10.0, n_samples=500)
    assert act(healthy(performance=mae)) == "fine_tune"  # 20% worse
    better = LivePerformance("mae", live=8.0, baseline=10.0, n_samples=500)
    assert act(healthy(performance=better)) == "nothing"


def test_degradation_on_too_few_samples_does_not_count() -> None:
    state = healthy(performance=perf(0.5, n=40))
    d = decide(state, POLICY, ROLLOUT)
    assert d.action == "nothing"
    assert "measured on 40 samples, fewer than the 100 needed" in d.reasons[1]
    assert decide(state, POLICY, ROLLOUT, min_samples=40).action == "full_retrain"
    nan = decide(healthy(performance=perf(float("nan"))), POLICY, ROLLOUT)
    assert nan.action == "nothing" and nan.numbers["degradation"] is None


def test_data_drift_and_concept_drift_fine_tune() -> None:
    d = decide(healthy(drift=DataDrift(0.4, drift=True, drifted=("age",))), POLICY, ROLLOUT)
    assert (d.action, d.reasons[0]) == ("fine_tune", "data drift: 40% of features drifted (age)")
    d = decide(healthy(concept_drift=True), POLICY, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("fine_tune", "concept_drift")


def test_incremental_families_update_after_enough_rows() -> None:
    inc = Capabilities(warm_start=True, incremental=True)
    d = decide(healthy(capabilities=inc, new_rows_since_update=100), POLICY, ROLLOUT)
    assert (d.action, d.reasons[0]) == (
        "incremental_update",
        "100 new labelled rows since the last update (policy.incremental_update_threshold: 100)",
    )
    assert act(healthy(capabilities=inc, new_rows_since_update=99)) == "nothing"
    assert act(healthy(new_rows_since_update=10_000)) == "nothing"  # not incremental


def test_stale_model_fine_tunes_unless_disabled() -> None:
    d = decide(healthy(days_since_update=8), POLICY, ROLLOUT)
    assert (d.action, d.reasons[0]) == (
        "fine_tune",
        "8 days since the last update (policy.max_days_since_update: 7)",
    )
    assert act(healthy(days_since_update=8), Policy(max_days_since_update=None)) == "nothing"
    cold = Capabilities(warm_start=False)
    assert act(healthy(days_since_update=8, capabilities=cold)) == "full_retrain"


def test_enough_new_rows_retrain_in_full_and_a_rejected_attempt_waits_as_long_again() -> None:
    state = healthy(champion_rows=3650, new_rows_since_update=365)
    d = decide(state, Policy(), ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "new_data")
    assert d.reasons[0] == (
        "365 new labelled rows since the last training, 10% of the champion's 3650 "
        "(policy.new_data_fraction: 10%)"
    )
    assert act(replace(state, new_rows_since_update=364), Policy()) == "nothing"
    assert act(state, Policy(new_data_fraction=None)) == "nothing"
    assert act(replace(state, champion_rows=0), Policy()) == "nothing"  # unknown size


def test_the_default_policy_has_no_calendar_fine_tune() -> None:
    assert Policy().max_days_since_update is None
    assert act(healthy(days_since_update=300), Policy()) == "nothing"


def test_low_confidence_fine_tunes_only_when_enabled() -> None:
    state = healthy(mean_confidence=0.55)
    assert act(state) == "nothing"
    d = decide(state, Policy(min_confidence=0.6), ROLLOUT)
    assert (d.action, d.reasons[0]) == (
        "fine_tune",
        "mean confidence 0.55 is below 0.6 (policy.min_confidence)",
    )


def test_state_validation_names_field_and_value() -> None:
    with pytest.raises(InputError, match=r"new_rows_since_update must be at least 0. Got -1"):
        healthy(new_rows_since_update=-1)
    with pytest.raises(InputError, match=r"mean_confidence must be a fraction"):
        healthy(mean_confidence=1.5)
    with pytest.raises(InputError, match=r"metric 'acc' of LivePerformance is unknown"):
        LivePerformance("acc", 0.1, 0.2, 10)


def naive(
    live: float,
    baselines: dict[str, float],
    *,
    age: float = 30,
    n: int = 500,
    metric: str = "accuracy",
) -> NaiveComparison:
    return NaiveComparison(metric, "7d", live, baselines, n, champion_age_days=age, window_days=7)


def test_a_model_not_better_than_a_naive_baseline_retrains_in_full_debounced() -> None:
    policy = Policy(naive_margin=0.0)
    losing = naive(2.1, {"the previous actual": 1.4, "the mean so far": 3.0}, metric="mae")
    d = decide(healthy(performance=None, naive=losing), policy, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "naive_baseline")
    assert d.reasons[0] == (
        "over the last 7d the model's MAE is 2.1, the previous actual's 1.4 on 500 labelled "
        "actuals (policy.naive_margin: 0)"
    )
    assert d.numbers["naive_baselines"] == {"the previous actual": 1.4, "the mean so far": 3.0}
    # a champion trained within the window is not retrained again: the decision notes it
    young = decide(healthy(performance=None, naive=replace(losing, champion_age_days=2)),
                   policy, ROLLOUT)  # fmt: skip
    assert young.action == "nothing" and young.numbers["naive_not_better"]
    assert any("no retrain for it: the champion was trained 2 days ago" in r for r in young.reasons)
    # better than every baseline by more than the margin, too few actuals, or off: quiet
    winning = naive(1.0, {"the previous actual": 1.4}, metric="mae")
    assert act(healthy(naive=winning), policy) == "nothing"
    assert act(healthy(naive=winning), Policy(naive_margin=0.5)) == "full_retrain"
    assert act(healthy(naive=replace(losing, n_samples=99)), policy) == "nothing"
    assert act(healthy(naive=losing), Policy(naive_margin=None)) == "nothing"
    # bigger is better: accuracy 0.70 against a majority class at 0.72
    assert act(healthy(naive=naive(0.70, {"the majority class": 0.72})), policy) == "full_retrain"


def test_a_tested_gap_to_a_naive_baseline_fires_only_when_significant() -> None:
    policy = Policy(naive_margin=0.0)
    tie = replace(naive(0.875, {"the majority class": 0.875}, n=112),
                  p_values={"the majority class": 1.0})  # fmt: skip
    assert act(healthy(naive=tie), policy) == "nothing"  # noise of 112 actuals
    clear = replace(naive(0.70, {"the majority class": 0.80}),
                    p_values={"the majority class": 0.0004})  # fmt: skip
    d = decide(healthy(performance=None, naive=clear), policy, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "naive_baseline")
    assert "(p = 0.0004 < 0.05; policy.naive_margin: 0)" in d.reasons[0]
    # the best baseline the champion is not significantly better than is the one named
    two = replace(
        naive(0.70, {"the majority class": 0.80, "the last label": 0.83}),
        p_values={"the majority class": 0.0004, "the last label": 0.2},
    )
    assert two.not_better(0.0) == ("the majority class", 0.80)


# --- priority order ----------------------------------------------------------------------


def test_priority_order() -> None:
    everything = healthy(
        quality_ok=False,
        regression=regression(),
        performance=perf(0.5),
        drift=DataDrift(0.7, drift=True, critical=True),
        days_since_full_retrain=200,
        fine_tunes_since_full_retrain=9,
        days_since_update=30,
        concept_drift=True,
        mean_confidence=0.3,
        capabilities=Capabilities(incremental=True),
        new_rows_since_update=1000,
        champion_rows=5000,
        live_metrics={"accuracy": 0.5},
        new_features=("shift_percentage",),
        naive=naive(0.5, {"the majority class": 0.6}, age=30),
    )
    policy = POLICY.model_copy(
        update={"min_confidence": 0.6, "floors": {"accuracy": 0.65}, "fine_tune_every_rows": 500}
    )
    # (the rule expected to decide, its action, the change that silences it)
    expected: list[tuple[str | None, str, dict[str, Any]]] = [
        ("data_quality", "nothing", {"quality_ok": True}),
        ("live_regression", "rollback", {"regression": None}),
        ("new_features", "full_retrain", {"new_features": ()}),
        ("critical_degradation", "full_retrain", {"performance": perf(0.7)}),
        ("floors", "full_retrain", {"live_metrics": {"accuracy": 0.7}}),
        ("critical_drift", "full_retrain", {"drift": DataDrift(0.4, drift=True)}),
        ("full_retrain_age", "full_retrain", {"days_since_full_retrain": 5}),
        ("new_data", "full_retrain", {"champion_rows": 0}),
        ("naive_baseline", "full_retrain", {"naive": None}),
        # 9 fine-tunes made: max_fine_tunes (5) turns the due fine-tune into a full retrain
        ("degradation", "full_retrain", {"fine_tunes_since_full_retrain": 0}),
        ("degradation", "fine_tune", {"performance": perf(0.87)}),
        ("data_drift", "fine_tune", {"drift": None}),
        ("concept_drift", "fine_tune", {"concept_drift": False}),
        ("incremental_update", "incremental_update", {"capabilities": Capabilities()}),
        ("fine_tune_rows", "fine_tune", {"new_rows_since_update": 0}),
        ("days_since_update", "fine_tune", {"days_since_update": 1}),
        ("low_confidence", "fine_tune", {"mean_confidence": 0.9}),
        (None, "nothing", {}),
    ]
    assert list(dict.fromkeys(rule for rule, _, _ in expected[:-1])) == list(RULE_NAMES[1:])
    state = everything
    for rule, action, change in expected:
        d = decide(state, policy, ROLLOUT)
        assert (d.numbers["rule"], d.action) == (rule, action)
        state = replace(state, **change)


def test_every_reason_for_the_chosen_action_is_listed() -> None:
    state = healthy(performance=perf(0.6), days_since_full_retrain=120)
    d = decide(state, POLICY, ROLLOUT)
    assert d.action == "full_retrain"
    assert len(d.reasons) == 2 and "120 days" in d.reasons[1]
    assert d.numbers["fired"] == ["critical_degradation", "full_retrain_age", "degradation"]
    assert set(d.numbers["fired"]) <= set(RULE_NAMES)
    json.dumps(d.numbers, allow_nan=False)


# --- monotonicity ------------------------------------------------------------------------

states = st.builds(
    MaintenanceState,
    model=st.just("m"),
    now=st.just(NOW),
    champion=st.just("1.0.0"),
    capabilities=st.builds(Capabilities, st.booleans(), st.booleans()),
    days_since_full_retrain=st.none() | st.floats(0, 400),
    fine_tunes_since_full_retrain=st.integers(0, 10),
    days_since_update=st.none() | st.floats(0, 30),
    performance=st.builds(
        LivePerformance,
        metric=st.sampled_from(["accuracy", "mae"]),
        live=st.floats(0.01, 2),
        baseline=st.floats(0.01, 1),
        n_samples=st.integers(0, 1000),
    ),
    drift=st.none() | st.builds(DataDrift, st.floats(0, 1), st.booleans(), st.booleans()),
    concept_drift=st.booleans(),
    mean_confidence=st.none() | st.floats(0, 1),
    new_rows_since_update=st.integers(0, 300),
    champion_rows=st.integers(0, 3000),
    quality_ok=st.booleans(),
)
policies = st.builds(
    Policy,
    critical_degradation=st.floats(0.2, 0.5),
    degradation=st.floats(0.01, 0.19),
    max_days_since_full_retrain=st.none() | st.floats(1, 200),
    max_fine_tunes=st.none() | st.integers(0, 8),
    max_days_since_update=st.none() | st.floats(1, 20),
    min_confidence=st.none() | st.floats(0.1, 0.9),
)


def severity(state: MaintenanceState, policy: Policy) -> int:
    return SEVERITY[decide(state, policy, ROLLOUT).action]


@settings(max_examples=300, deadline=None)
@given(states, policies, st.floats(0.01, 2), st.floats(0.01, 2))
def test_more_degradation_never_yields_a_milder_action(
    state: MaintenanceState, policy: Policy, a: float, b: float
) -> None:
    assert state.performance is not None
    low, high = (
        replace(state.performance, live=v) for v in sorted([a, b], reverse=True)
    )  # for mae the larger live value is the worse one
    if state.performance.metric == "mae":
        low, high = high, low
    assert high.degradation >= low.degradation
    assert severity(replace(state, performance=high), policy) >= severity(
        replace(state, performance=low), policy
    )


@settings(max_examples=300, deadline=None)
@given(states, policies, st.floats(0, 400), st.floats(0, 400), st.integers(0, 10))
def test_older_models_and_more_fine_tunes_never_yield_a_milder_action(
    state: MaintenanceState, policy: Policy, d1: float, d2: float, extra: int
) -> None:
    young, old = sorted([d1, d2])
    base = severity(replace(state, days_since_full_retrain=young), policy)
    assert severity(replace(state, days_since_full_retrain=old), policy) >= base
    more = state.fine_tunes_since_full_retrain + extra
    assert severity(replace(state, fine_tunes_since_full_retrain=more), policy) >= severity(
        state, policy
    )


@settings(max_examples=200, deadline=None)
@given(states, policies)
def test_decisions_are_pure_and_json_safe(state: MaintenanceState, policy: Policy) -> None:
    first, second = decide(state, policy, ROLLOUT), decide(state, policy, ROLLOUT)
    assert first == second
    assert first.action in SEVERITY and first.reasons
    json.dumps(first.numbers, allow_nan=False)


# --- issue 14: points, floors, max_fine_tunes, age -------------------------------------


def test_degradation_in_absolute_points_fine_tunes_and_critical_points_retrain() -> None:
    policy = Policy(degradation_points=0.05, critical_degradation_points=0.10)
    # 0.87 -> 0.81: 6 points (6.9% relative: below the relative 15%)
    d = decide(healthy(performance=perf(0.81)), policy, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("fine_tune", "degradation")
    assert d.reasons[0] == (
        "live accuracy 0.81 is 0.06 points worse than baseline 0.87 "
        "(policy.degradation_points: 0.05)"
    )
    assert d.numbers["degradation_points"] == pytest.approx(0.06)
    assert decide(healthy(performance=perf(0.83)), policy, ROLLOUT).action == "nothing"
    crit = decide(healthy(performance=perf(0.76)), policy, ROLLOUT)
    assert (crit.action, crit.numbers["rule"]) == ("full_retrain", "critical_degradation")
    assert crit.reasons[0] == (
        "critical degradation: live accuracy 0.76 is 0.11 points worse than baseline 0.87 "
        "(policy.critical_degradation_points: 0.1)"
    )
    # both thresholds crossed: both named
    both = decide(healthy(performance=perf(0.70)), policy, ROLLOUT).reasons[0]
    assert "(policy.critical_degradation: 25%)" not in both  # 19.5% relative
    assert "below baseline 0.87 (policy.degradation: 15%)" not in both
    assert "0.17 points worse than baseline 0.87 (policy.critical_degradation_points: 0.1)" in both


def test_points_of_a_smaller_is_better_metric_count_upwards() -> None:
    mae = LivePerformance("mae", live=2.25, baseline=2.0, n_samples=500)  # 12.5% relative
    d = decide(healthy(performance=mae), Policy(degradation_points=0.2), ROLLOUT)
    assert d.action == "fine_tune"
    assert "live mae 2.25 is 0.25 points worse than baseline 2" in d.reasons[0]


def test_points_on_too_few_samples_do_not_count() -> None:
    d = decide(healthy(performance=perf(0.5, n=20)), Policy(degradation_points=0.05), ROLLOUT)
    assert d.action == "nothing"


def test_points_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match=r"degradation_points \(0.1\) must be below"):
        Policy(degradation_points=0.1, critical_degradation_points=0.05)


def test_a_live_metric_below_its_floor_retrains_in_full() -> None:
    policy = Policy(floors={"accuracy": 0.85})
    state = healthy(performance=perf(0.84), live_metrics={"accuracy": 0.84, "f1": 0.7})
    d = decide(state, policy, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "floors")
    assert d.reasons[0] == (
        "live accuracy 0.84 is below its floor 0.85 (policy.floors.accuracy) on 500 labelled rows"
    )
    assert d.numbers["floors"] == {"accuracy": 0.85}
    at_floor = replace(state, live_metrics={"accuracy": 0.85})
    assert decide(at_floor, policy, ROLLOUT).action == "nothing"
    few = replace(state, performance=perf(0.84, n=20))
    assert decide(few, policy, ROLLOUT).action == "nothing"


def test_a_ceiling_for_a_smaller_is_better_metric() -> None:
    mae = LivePerformance("mae", live=3.2, baseline=3.0, n_samples=500)
    state = healthy(performance=mae, live_metrics={"mae": 3.2})
    d = decide(state, Policy(floors={"mae": 3.1}), ROLLOUT)
    assert d.action == "full_retrain"
    assert d.reasons[0].startswith("live mae 3.2 is above its ceiling 3.1 (policy.floors.mae)")


def test_floors_name_known_metrics_of_the_task() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy'; did you mean 'accuracy'"):
        Policy(floors={"acuracy": 0.85})
    with pytest.raises(ValueError, match=r"policy.floors.mae: mae is a regression metric"):
        Policy(floors={"mae": 1.0}).check_task("classification")


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_max_fine_tunes_means_a_full_retrain_after_that_many(limit: int) -> None:
    """Count the fine-tunes a due trigger makes before the first full retrain."""
    policy = Policy(max_fine_tunes=limit)
    made = 0
    while True:
        state = healthy(performance=perf(0.72), fine_tunes_since_full_retrain=made)
        d = decide(state, policy, ROLLOUT)
        if d.action == "full_retrain":
            break
        assert d.action == "fine_tune"
        made += 1
    assert made == limit
    if limit:
        assert d.reasons[0].endswith(
            f"; {limit} fine-tunes since the last full retrain reach policy.max_fine_tunes "
            f"({limit}), so a full retrain instead of another"
        )
    unlimited = healthy(performance=perf(0.72), fine_tunes_since_full_retrain=50)
    assert decide(unlimited, Policy(max_fine_tunes=None), ROLLOUT).action == "fine_tune"


def test_max_fine_tunes_applies_to_an_age_fine_tune() -> None:
    state = healthy(days_since_update=8, fine_tunes_since_full_retrain=5)
    d = decide(state, POLICY, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "days_since_update")
    assert "reach policy.max_fine_tunes (5)" in d.reasons[0]


def test_new_data_fraction_is_its_own_rule() -> None:
    assert "new_data" in RULE_NAMES
    state = healthy(champion_rows=1000, new_rows_since_update=250)
    d = decide(state, Policy(new_data_fraction=0.25), ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "new_data")
    assert d.reasons[0].endswith("(policy.new_data_fraction: 25%)")


def test_fine_tune_every_rows_updates_a_batch_learner_on_what_is_there() -> None:
    from datetime import UTC, datetime

    from retrainer.core.spec_sections import Policy, Rollout
    from retrainer.policy.decide import decide
    from retrainer.policy.state import MaintenanceState

    def state(rows: int) -> MaintenanceState:
        return MaintenanceState(
            model="device",
            now=datetime(2026, 5, 3, tzinfo=UTC),
            champion="1.0.0",
            days_since_full_retrain=2,
            days_since_update=2,
            new_rows_since_update=rows,
            rows_since_champion=rows,
        )

    policy = Policy(fine_tune_every_rows=100, new_data_fraction=None)
    assert decide(state(99), policy, Rollout()).action == "nothing"
    d = decide(state(120), policy, Rollout())
    assert d.action == "fine_tune"  # far fewer than the gate's 1,000: judged on what is there
    assert d.reasons[0].startswith("120 new labelled rows since the last update")
    assert "policy.fine_tune_every_rows: 100" in d.reasons[0]
    assert decide(state(5000), Policy(new_data_fraction=None), Rollout()).action == "nothing"


def test_a_feature_the_champion_never_saw_is_a_full_retrain_naming_it() -> None:
    d = decide(healthy(new_features=("shift_percentage", "overtime_hours")), POLICY, ROLLOUT)
    assert (d.action, d.numbers["rule"]) == ("full_retrain", "new_features")
    assert d.reasons[0] == (
        "new feature(s) shift_percentage, overtime_hours in the spec, not in champion "
        "1.2.0's schema: a full retrain learns them"
    )
    assert d.numbers["new_features"] == ["shift_percentage", "overtime_hours"]
    assert decide(healthy(), POLICY, ROLLOUT).numbers["new_features"] == []


def test_an_error_metric_that_degrades_is_said_to_be_above_its_baseline() -> None:
    from datetime import UTC, datetime

    from retrainer.core.spec_sections import Policy, Rollout
    from retrainer.policy.decide import decide
    from retrainer.policy.state import LivePerformance, MaintenanceState

    state = MaintenanceState(
        model="demand",
        now=datetime(2026, 5, 3, tzinfo=UTC),
        champion="1.0.0",
        days_since_full_retrain=2,
        days_since_update=2,
        performance=LivePerformance("mae", live=2.08, baseline=1.72, n_samples=500),
    )
    reason = decide(state, Policy(), Rollout()).reasons[0]
    assert reason.startswith("live mae 2.08 is 20.9% above baseline 1.72"), reason


def test_the_decision_says_where_the_live_window_began() -> None:
    """A later full retrain dates a change the decision saw from ``live_since`` (see
    ``choice.last_change``); None when no live metric was measured."""
    since = datetime(2025, 1, 20, tzinfo=UTC)
    seen = perf(0.60, n=112)
    d = decide(healthy(performance=replace(seen, since=since)), POLICY, ROLLOUT)
    assert d.action == "full_retrain" and "critical_degradation" in d.numbers["fired"]
    assert d.numbers["live_since"] == since.isoformat()
    assert decide(healthy(performance=None), POLICY, ROLLOUT).numbers["live_since"] is None


def test_an_error_metric_is_judged_against_a_baseline_scaled_by_a_harder_stretch() -> None:
    """The previous actual errs 30% more on the live rows than on the holdout: a 36% rise of
    the model's MAE is 5% against the scaled baseline (no rule fires); 40% beyond the scaled
    baseline still retrains and says how it was scaled; an easier stretch never lowers it."""
    harder = LivePerformance("mae", live=0.30, baseline=0.22, n_samples=112, naive=(0.338, 0.26))
    assert act(healthy(performance=harder)) == "nothing"
    assert act(healthy(performance=replace(harder, naive=None))) == "full_retrain"
    worse = decide(healthy(performance=replace(harder, live=0.40)), POLICY, ROLLOUT)
    assert worse.action == "full_retrain"
    assert worse.reasons[0] == (
        "critical degradation: live mae 0.4 is 39.9% above baseline 0.286 (0.22 x 1.3: the "
        "previous actual's live mae 0.338 against 0.26 on the holdout) "
        "(policy.critical_degradation: 25%)"
    )
    assert worse.numbers["baseline_scale"] == pytest.approx(1.3)
    easier = replace(harder, naive=(0.20, 0.26))
    assert easier.bar == 0.22 and act(healthy(performance=easier)) == "full_retrain"
    accuracy = LivePerformance("accuracy", 0.70, 0.87, 500, naive=(0.5, 0.25))
    assert accuracy.bar == 0.87  # a score, not an error: never scaled

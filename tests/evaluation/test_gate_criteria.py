"""Deployment criteria as pure functions: a plain comparison, guards that require an
improvement, user metrics (expression and callable), the budgets and the one-line summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrainer.core.custom_metrics import evaluate, parse_expression
from retrainer.core.errors import ConfigError
from retrainer.core.spec_sections import Gate
from retrainer.evaluation.gate import (
    CatchUpFit,
    GateRecord,
    Verdict,
    budget_gate,
    run_gate,
    summary_line,
    verdict_text,
)


def noisy(y: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(len(y)) < accuracy, y, 1 - y)


def fraction_of_ones(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """A user metric for the callable form (imported by path in the test below)."""
    return float(np.mean(y_pred == 1))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("fn / (tp + fn", "not valid"),
        ("tp ** 2", "the operator Pow"),
        ("tp.real", "an attribute"),
        ("recall", "the unknown name 'recall'"),
        ("'a' + tp", "the constant 'a'"),
        ("1 + 2", "uses none of tp, fp, tn, fn"),
        ("(lambda: 1)()", "a function call"),
    ],
)
def test_an_expression_allows_only_arithmetic_on_the_counts(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=r"gate\.metrics\.x") as err:
        parse_expression(text, "gate.metrics.x")
    assert fragment in str(err.value)


def test_an_expression_divides_by_zero_into_nan() -> None:
    tree = parse_expression("fn / (tp + fn)", "k")
    out = evaluate(tree, {"tp": np.array([0.0, 3.0]), "fn": np.array([0.0, 1.0])})
    assert np.isnan(out[0]) and out[1] == 0.25
    assert float(evaluate(parse_expression("-tp + 2 * fp", "k"), {"tp": 1, "fp": 2})) == 3.0


def test_significance_null_is_a_plain_comparison() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    champion, challenger = noisy(y, 0.80, rng), noisy(y, 0.83, rng)
    plain = Gate(significance=None, min_improvement=0.01)
    r = run_gate(y, champion, challenger, task="classification", gate=plain)
    assert r.test == "plain_comparison" and r.p_value is None and r.ci_level is None
    assert r.verdict == ("pass" if r.improvement >= 0.01 else "reject")
    strict = Gate(significance=None, min_improvement=r.improvement + 0.001)
    assert run_gate(y, champion, challenger, task="classification", gate=strict).verdict == (
        "reject"
    )
    # a refresh with a plain comparison: rejected only when the observed change is worse
    # than the tolerance
    worse = noisy(y, 0.70, rng)
    refresh = run_gate(y, champion, worse, task="classification", gate=plain, refresh=True)
    assert (
        refresh.verdict == "reject" and "worse by more than 0.01 as observed" in refresh.reasons[0]
    )


def test_a_guard_can_require_an_improvement_with_or_without_the_test() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 600)
    champion, challenger = noisy(y, 0.75, rng), noisy(y, 0.90, rng)
    need = Gate(min_improvement=0.0, guards={"f1": {"min_improvement": 0.01}})
    r = run_gate(y, champion, challenger, task="classification", gate=need)
    (g,) = r.guards
    assert g.ok and g.min_improvement == 0.01 and g.p_value is not None and g.p_value < 0.05
    too_much = Gate(min_improvement=0.0, guards={"f1": {"min_improvement": 0.5}})
    r = run_gate(y, champion, challenger, task="classification", gate=too_much)
    assert r.verdict == "reject" and "guard f1" in r.reasons[0] and "needs 0.5" in r.reasons[0]
    plain = Gate(significance=None, min_improvement=0.0, guards={"f1": {"min_improvement": 0.01}})
    (g,) = run_gate(y, champion, challenger, task="classification", gate=plain).guards
    assert g.ok and g.p_value is None
    # the original form still bounds a loss
    loss = Gate(min_improvement=0.0, guards={"f1": 0.0})
    (g,) = run_gate(y, challenger, champion, task="classification", gate=loss).guards
    assert not g.ok and g.tolerance == 0.0


def test_user_metrics_as_primary_and_guard() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 600)
    champion, challenger = noisy(y, 0.75, rng), noisy(y, 0.90, rng)
    metrics = {
        "failure_rate": {"expression": "fn / (tp + fn)", "greater_is_better": False},
        "ones": {"function": f"{__name__}:fraction_of_ones", "greater_is_better": True},
    }
    gate = Gate(
        primary_metric="failure_rate",
        min_improvement=0.05,
        metrics=metrics,
        guards={"ones": 1.0},
    )
    r = run_gate(y, champion, challenger, task="classification", gate=gate)
    fn_rate = lambda p: np.sum((y == 1) & (p == 0)) / np.sum(y == 1)  # noqa: E731
    assert r.metric == "failure_rate" and not r.bigger_is_better
    assert r.champion == pytest.approx(fn_rate(champion))
    assert r.improvement == pytest.approx(fn_rate(champion) - fn_rate(challenger))
    assert r.verdict == "pass" and r.p_value is not None and r.p_value < 0.05
    assert r.guards[0].metric == "ones"
    with pytest.raises(ConfigError, match="'nope' is not a classification metric"):
        run_gate(y, y, y, task="classification", gate=Gate(primary_metric="nope"))


def test_the_summary_of_a_worse_refresh_says_shown_not_judged() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 800)
    champion, level = noisy(y, 0.80, rng), noisy(y, 0.795, rng)
    r = run_gate(y, champion, level, task="classification", gate=Gate(), refresh=True)
    assert r.verdict == "pass"
    line = summary_line({**r.to_dict(), "champion_version": "1.0.0"})
    assert "shown, not judged" in line and "gate pass" not in line
    assert line.startswith("refresh allowed vs 1.0.0")
    better = noisy(y, 0.95, rng)
    r = run_gate(y, champion, better, task="classification", gate=Gate())
    assert summary_line({**r.to_dict(), "champion_version": "1.0.0"}).startswith(
        "gate pass vs 1.0.0"
    )


def test_budgets_without_a_champion() -> None:
    assert budget_gate(Gate(), 1.0, 1.0, 10) is None
    held = budget_gate(Gate(max_latency_ms=5, max_memory_mb=50), 1.0, 20.0, 10)
    assert held is not None and held.verdict is Verdict.PASS and held.budgets_only
    over = budget_gate(Gate(max_latency_ms=5), 9.0, 20.0, 10)
    assert over is not None and over.verdict is Verdict.REJECT
    assert over.reasons == ("p95 single-row latency 9 ms exceeds the 5 ms budget",)
    # the stored JSON is the shape earlier versions wrote, and reads back to the same record
    stored = {
        "verdict": "reject",
        "budgets_only": True,
        "champion_version": None,
        "latency_ms": 9.0,
        "max_latency_ms": 5.0,
        "memory_mb": 20.0,
        "max_memory_mb": None,
        "size_bytes": 10,
        "max_size_bytes": None,
        "reasons": ["p95 single-row latency 9 ms exceeds the 5 ms budget"],
        "summary": "budgets exceeded (first version): p95 single-row latency 9 ms exceeds "
        "the 5 ms budget",
    }
    assert json.dumps(over.to_dict()) == json.dumps(stored)
    assert GateRecord.from_dict(stored) == over


def test_a_stored_gate_reads_back_as_the_record_it_was() -> None:
    """Every field of a comparison survives the store, a NaN included (stored as null), and
    a shape written before later fields existed still reads, with their neutral values."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    champion = np.where(rng.random(300) < 0.7, y, 1 - y)
    better = np.where(rng.random(300) < 0.9, y, 1 - y)
    r = run_gate(y, champion, better, task="classification", gate=Gate(guards={"f1": 0.01}))
    rec = GateRecord(r, "1.0.0", CatchUpFit("2024-01-01T00:00:00", 500, 0.25))
    stored = json.loads(json.dumps(rec.to_dict()))
    assert stored["verdict"] == "pass" and stored["summary"].startswith("gate pass vs 1.0.0")
    assert list(stored)[-3:] == ["champion_version", "catch_up_fit", "summary"]
    again = GateRecord.from_dict(stored)
    assert json.dumps(again.to_dict()) == json.dumps(stored)
    assert again.catch_up_fit == rec.catch_up_fit and again.comparison is not None
    assert again.comparison.guards == r.guards
    old = {  # the first release's shape: no refresh, memory or min_rows fields, no summary
        "verdict": "reject",
        "metric": "accuracy",
        "bigger_is_better": True,
        "n_rows": 200,
        "min_rows": 100,
        "champion": 0.8,
        "challenger": None,
        "improvement": None,
        "guards": [
            {
                "metric": "f1",
                "champion": 0.7,
                "challenger": 0.6,
                "regression": 0.1,
                "tolerance": 0.01,
                "ok": False,
            }
        ],
        "reasons": ["accuracy is undefined"],
        "champion_version": "1.0.0",
    }
    read = GateRecord.from_dict(old)
    assert read.verdict is Verdict.REJECT and not read.passed and read.comparison is not None
    assert read.comparison.refresh is False and read.comparison.guards[0].min_improvement is None
    assert read.summary == "gate reject vs 1.0.0: accuracy is undefined"
    assert verdict_text(read) == "gate reject vs 1.0.0"


def _counts(tp: int, fp: int, tn: int, fn: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions with exactly these confusion counts of class 1."""
    y = np.array([1] * tp + [0] * fp + [0] * tn + [1] * fn)
    p = np.array([1] * tp + [1] * fp + [0] * tn + [0] * fn)
    return y, p


FAILURE_RATE = {"failure_rate": {"expression": "fp / (tp + fp)", "greater_is_better": False}}


def test_a_guard_can_require_a_relative_improvement() -> None:
    # the same 1000 tasks scored twice: the champion lets 200 of 1000 approved tasks fail
    # (20%); the challenger approves ten failing tasks fewer: 190 of 990, 4% lower, not 5%
    y, champion = _counts(tp=800, fp=200, tn=0, fn=0)
    challenger = np.r_[champion[:800], np.zeros(10, int), champion[810:]]
    rule = {"failure_rate": {"min_relative_improvement": 0.05}}
    gate = Gate(significance=None, min_improvement=0.0, metrics=FAILURE_RATE, guards=rule)
    r = run_gate(y, champion, challenger, task="classification", gate=gate)
    (g,) = r.guards
    assert g.champion == pytest.approx(0.2) and g.challenger == pytest.approx(190 / 990)
    assert g.relative_improvement == pytest.approx((0.2 - 190 / 990) / 0.2)
    assert g.ok is False  # 190/990 is 4.04% lower, not 5%
    assert "needs 5.00%" in r.reasons[0] and "of the champion's value" in r.reasons[0]
    assert r.verdict == "reject"
    # 20 fewer approved failures: 180/980 is 8.2% lower: the guard holds
    better = np.r_[champion[:800], np.zeros(20, int), champion[820:]]
    r = run_gate(y, champion, better, task="classification", gate=gate)
    assert r.guards[0].ok and r.verdict == "pass"
    assert r.guards[0].min_relative_improvement == 0.05 and r.guards[0].min_improvement is None
    assert r.to_dict()["guards"][0]["relative_improvement"] == pytest.approx(1 - (180 / 980) / 0.2)


def test_a_relative_improvement_of_exactly_the_requirement_passes() -> None:
    # 0.20 -> 0.19 is 5% whatever the rounding of 0.01 / 0.20
    y, champion = _counts(tp=160, fp=40, tn=0, fn=0)
    challenger = champion.copy()
    challenger[160:162] = 0  # two of the 40 failures no longer approved: 38 of 200
    share = {"fail_share": {"expression": "fp / (tp + fp + tn + fn)", "greater_is_better": False}}
    gate = Gate(
        significance=None,
        min_improvement=0.0,
        metrics=share,
        guards={"fail_share": {"min_relative_improvement": 0.05}},
    )
    (g,) = run_gate(y, champion, challenger, task="classification", gate=gate).guards
    assert g.champion == pytest.approx(0.2) and g.challenger == pytest.approx(0.19)
    assert g.ok


def test_a_relative_guard_with_the_significance_test_and_a_zero_champion() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 800)
    champion, challenger = noisy(y, 0.75, rng), noisy(y, 0.90, rng)
    rule = {"failure_rate": {"min_relative_improvement": 0.05}}
    gate = Gate(min_improvement=0.0, metrics=FAILURE_RATE, guards=rule)
    (g,) = run_gate(y, champion, challenger, task="classification", gate=gate).guards
    assert g.ok and g.p_value is not None and g.p_value < 0.05
    # a champion that never approves a failing task: no relative improvement exists
    y, perfect = _counts(tp=50, fp=0, tn=50, fn=0)
    r = run_gate(y, perfect, perfect, task="classification", gate=gate)
    assert not r.guards[0].ok and r.guards[0].relative_improvement is None
    assert "undefined against a champion at 0" in " ".join(r.reasons)


def test_a_guard_rule_takes_exactly_one_requirement() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="min_relative_improvement"):
        Gate(guards={"f1": {"min_improvement": 0.01, "min_relative_improvement": 0.05}})
    with pytest.raises(ValidationError, match="less than 1"):
        Gate(guards={"f1": {"min_relative_improvement": 5}})
    assert Gate(guards={"f1": {"min_relative_improvement": 0.05}}).guards["f1"].max_loss is None

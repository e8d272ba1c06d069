"""Deployment criteria as pure functions: a plain comparison, guards that require an
improvement, user metrics (expression and callable), the budgets and the one-line summary."""

from __future__ import annotations

import numpy as np
import pytest

from retrainer.core.custom_metrics import evaluate, parse_expression
from retrainer.core.errors import ConfigError
from retrainer.core.spec_sections import Gate
from retrainer.evaluation.gate import budget_gate, run_gate, summary_line


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
    assert held is not None and held["verdict"] == "pass"
    over = budget_gate(Gate(max_latency_ms=5), 9.0, 20.0, 10)
    assert over is not None and over["verdict"] == "reject"
    assert over["reasons"] == ["p95 single-row latency 9 ms exceeds the 5 ms budget"]

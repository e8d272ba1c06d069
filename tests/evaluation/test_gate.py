from __future__ import annotations

import json

import numpy as np
import pytest

from retrainer.core.errors import ConfigError, InputError
from retrainer.core.metrics import METRICS, task_metrics
from retrainer.core.spec_sections import Gate
from retrainer.evaluation.gate import GateResult, _stat, _weights, paired_bootstrap, run_gate

RNG = np.random.default_rng(42)


def noisy_labels(y: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(len(y)) < accuracy, y, 1 - y)


def binary_problem(n: int = 600, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    weak = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, n), 0.01, 0.99)
    strong = np.clip(0.5 + (y - 0.5) * 0.8 + rng.normal(0, 0.2, n), 0.01, 0.99)
    return y, weak, strong


# --- the resampled metrics equal core.metrics ---------------------------------------------


def problems() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    rng = np.random.default_rng(7)
    n = 120
    yb = rng.integers(0, 2, n)
    pb = np.round(rng.random(n), 1)  # ties, as real scores have
    y3 = rng.integers(0, 3, n)
    p3 = rng.dirichlet([1, 1, 1], n)
    yr = rng.normal(10, 3, n)
    pr = yr + rng.normal(0, 1, n)
    return [
        ("classification", yb, (pb > 0.5).astype(int), pb),
        ("classification", yb, (pb > 0.5).astype(int), np.column_stack([1 - pb, pb])),
        ("classification", y3, p3.argmax(axis=1), p3),
        ("regression", yr, pr, None),
    ]


@pytest.mark.parametrize("case", range(4))
def test_resampled_metrics_equal_core_metrics(case: int) -> None:
    task, y, pred, proba = problems()[case]
    n = len(y)
    idx = np.vstack([np.arange(n), RNG.integers(0, n, size=(4, n))])
    for metric in task_metrics(task):
        got = _stat(metric, y, pred, proba)(_weights(idx))
        want = [metric.compute(y[r], pred[r], None if proba is None else proba[r]) for r in idx]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=metric.name)


def test_paired_bootstrap_is_direction_aware_and_seeded() -> None:
    y = RNG.normal(0, 1, 200)
    good, bad = y + RNG.normal(0, 0.1, 200), y + RNG.normal(0, 1, 200)
    mae = METRICS["mae"]
    d = paired_bootstrap(mae, y, (bad, None), (good, None), samples=300, seed=3)
    assert d.shape == (300,) and (d > 0).all()  # smaller MAE is an improvement
    again = paired_bootstrap(mae, y, (bad, None), (good, None), samples=300, seed=3)
    np.testing.assert_array_equal(d, again)


# --- verdicts -----------------------------------------------------------------------------


def test_clearly_better_challenger_passes() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    r = run_gate(
        y,
        noisy_labels(y, 0.80, rng),
        noisy_labels(y, 0.88, rng),
        task="classification",
        gate=Gate(),
        seed=0,
    )
    assert r.passed and r.verdict == "pass"
    assert r.p_value is not None and r.p_value < 0.01
    assert r.ci_low is not None and r.ci_high is not None and 0 < r.ci_low < r.improvement
    assert r.improvement == pytest.approx(r.challenger - r.champion)
    assert r.test == "paired_bootstrap" and r.bootstrap_samples == 1000 and r.ci_level == 0.9
    assert r.reasons[0].startswith("accuracy ")


def test_better_by_chance_only_is_rejected() -> None:
    # Both models agree except on 16 rows: the challenger wins 10, the champion 6.
    n = 300
    y = np.zeros(n, dtype=int)
    champion, challenger = y.copy(), y.copy()
    champion[:10] = 1  # champion wrong, challenger right
    challenger[10:16] = 1  # challenger wrong, champion right
    champion[16:76] = challenger[16:76] = 1  # both wrong
    r = run_gate(y, champion, challenger, task="classification", gate=Gate(), seed=0)
    assert r.improvement == pytest.approx(4 / 300) and r.improvement >= Gate().min_improvement
    assert r.verdict == "reject"
    assert r.p_value is not None and r.p_value >= 0.05
    assert r.reasons[0].endswith("may be chance")


def test_worse_challenger_is_rejected() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 800)
    r = run_gate(
        y,
        noisy_labels(y, 0.9, rng),
        noisy_labels(y, 0.8, rng),
        task="classification",
        gate=Gate(),
    )
    assert r.verdict == "reject" and r.improvement < 0
    assert r.p_value is not None and r.p_value > 0.9
    assert "improves by only -" in r.reasons[0]


def test_identical_models_have_p_value_one() -> None:
    y = RNG.integers(0, 2, 200)
    pred = noisy_labels(y, 0.8, RNG)
    r = run_gate(y, pred, pred, task="classification", gate=Gate(min_improvement=0))
    assert r.verdict == "reject" and r.p_value == 1.0


def test_guard_regression_rejects_and_tolerance_allows() -> None:
    y, weak, strong = binary_problem()
    overconfident = np.where(strong > 0.5, 1 - 1e-15, 1e-15)  # sure, and wrong 2% of the time
    args = dict(champion_proba=weak, challenger_proba=overconfident, seed=0)
    gate = Gate(primary_metric="accuracy", min_improvement=0.0, guards={"log_loss": 0.05})
    champion_pred = (weak > 0.5).astype(int)
    challenger_pred = (strong > 0.5).astype(int)
    r = run_gate(y, champion_pred, challenger_pred, task="classification", gate=gate, **args)
    (guard,) = r.guards
    assert guard.metric == "log_loss" and not guard.ok and guard.regression > 0.05
    assert guard.regression == pytest.approx(guard.challenger - guard.champion)
    assert r.verdict == "reject" and r.reasons[0].startswith("guard log_loss")
    loose = gate.model_copy(update={"guards": {"log_loss": 100.0}})
    r = run_gate(y, champion_pred, challenger_pred, task="classification", gate=loose, **args)
    assert r.verdict == "pass" and r.guards[0].ok


def test_roc_auc_primary_with_probabilities() -> None:
    y, weak, strong = binary_problem()
    gate = Gate(primary_metric="roc_auc", guards={"brier": 0.0})
    r = run_gate(
        y,
        (weak > 0.5).astype(int),
        (strong > 0.5).astype(int),
        task="classification",
        gate=gate,
        champion_proba=weak,
        challenger_proba=strong,
    )
    assert r.verdict == "pass" and r.metric == "roc_auc"
    assert r.champion == pytest.approx(METRICS["roc_auc"].compute(y, y, weak))
    assert r.challenger_metrics["roc_auc"] == r.challenger


def test_regression_metric_smaller_is_better() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(100, 20, 500)
    rough, sharp = y + rng.normal(0, 10, 500), y + rng.normal(0, 5, 500)
    gate = Gate(min_improvement=1.0, guards={"r2": 0.01})
    r = run_gate(y, rough, sharp, task="regression", gate=gate)
    assert r.metric == "mae" and not r.bigger_is_better
    assert r.improvement == pytest.approx(r.champion - r.challenger) and r.improvement > 1
    assert r.champion == pytest.approx(METRICS["mae"].compute(y, rough, None))
    assert r.verdict == "pass"
    assert run_gate(y, sharp, rough, task="regression", gate=gate).verdict == "reject"


def test_same_seed_same_result() -> None:
    y, weak, strong = binary_problem(300)

    def gate(seed: int) -> GateResult:
        return run_gate(
            y,
            (weak > 0.5) * 1,
            (strong > 0.5) * 1,
            task="classification",
            gate=Gate(primary_metric="roc_auc"),
            champion_proba=weak,
            challenger_proba=strong,
            seed=seed,
        )

    first, second, other = gate(11), gate(11), gate(12)
    assert first == second and first.to_dict() == second.to_dict()
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)
    assert other.improvement == first.improvement  # observed values do not depend on the seed


def test_inputs_must_be_one_value_per_row() -> None:
    y = RNG.integers(0, 2, 200)
    with pytest.raises(InputError, match=r"y_true has shape \(200, 1\)"):
        run_gate(y[:, None], y, y, task="classification", gate=Gate())
    proba = np.column_stack([np.full(200, 0.4), np.full(200, 0.6)])
    r = run_gate(
        y, y, y, task="classification", gate=Gate(), champion_proba=proba, challenger_proba=proba
    )
    assert r.champion_metrics["log_loss"] == pytest.approx(r.challenger_metrics["log_loss"])


def test_too_few_rows_is_insufficient_never_a_pass() -> None:
    y = np.array([0, 1] * 20)
    r = run_gate(y, 1 - y, y, task="classification", gate=Gate())
    assert r.verdict == "insufficient" and not r.passed
    assert r.p_value is None and r.ci_low is None
    assert r.reasons[0] == "only 40 labelled rows to compare on; the gate needs 100"
    payload = json.dumps(r.to_dict(), allow_nan=False)
    assert json.loads(payload)["verdict"] == "insufficient"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_undefined_primary_metric_is_insufficient() -> None:
    y = np.zeros(200, dtype=int)
    proba = RNG.random(200)
    r = run_gate(
        y,
        y,
        y,
        task="classification",
        gate=Gate(primary_metric="roc_auc"),
        champion_proba=proba,
        challenger_proba=proba,
    )
    assert r.verdict == "insufficient" and "undefined" in r.reasons[0]
    assert r.to_dict()["champion"] is None


def test_budgets() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    champion, challenger = noisy_labels(y, 0.7, rng), noisy_labels(y, 0.9, rng)
    gate = Gate(max_latency_ms=20, max_size_bytes=1000)
    ok = run_gate(
        y, champion, challenger, task="classification", gate=gate, latency_ms=5, size_bytes=900
    )
    assert ok.verdict == "pass"
    slow = run_gate(
        y, champion, challenger, task="classification", gate=gate, latency_ms=25, size_bytes=900
    )
    assert slow.verdict == "reject" and slow.reasons[0] == (
        "p95 single-row latency 25 ms exceeds the 20 ms budget"
    )
    with pytest.raises(
        InputError, match=r"latency budget \(20 ms\) but no measured p95 single-row latency"
    ):
        run_gate(y, champion, challenger, task="classification", gate=gate, size_bytes=1)


def test_a_budget_breach_rejects_even_with_too_few_rows_to_compare() -> None:
    y = RNG.integers(0, 2, 5)
    gate = Gate(max_memory_mb=50)
    few = dict(task="classification", gate=gate, latency_ms=1.0, size_bytes=1)
    held = run_gate(y, y, y, memory_mb=10.0, **few)  # type: ignore[arg-type]
    assert held.verdict == "insufficient"
    over = run_gate(y, y, y, memory_mb=80.0, **few)  # type: ignore[arg-type]
    assert over.verdict == "reject"
    assert "peak memory growth 80 MB exceeds the 50 MB budget" in over.reasons


def test_bad_inputs_name_the_problem() -> None:
    y = RNG.integers(0, 2, 200)
    with pytest.raises(ConfigError, match=r"'mae' is not a classification metric"):
        run_gate(y, y, y, task="classification", gate=Gate(primary_metric="mae"))
    with pytest.raises(ConfigError, match=r"guard metric 'nope'"):
        run_gate(y, y, y, task="classification", gate=Gate(guards={"nope": 0.1}))
    with pytest.raises(InputError, match=r"'log_loss' needs probabilities"):
        run_gate(y, y, y, task="classification", gate=Gate(primary_metric="log_loss"))
    with pytest.raises(InputError, match=r"challenger_pred has shape \(199,\); expected 200"):
        run_gate(y, y, y[:-1], task="classification", gate=Gate())
    with pytest.raises(ConfigError, match=r"Task 'ranking' is unknown"):
        run_gate(y, y, y, task="ranking", gate=Gate())


# --- refreshes ---------------------------------------------------------------------------


def test_a_refresh_passes_unless_the_bootstrap_shows_it_worse_than_the_tolerance() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 800)
    champion = noisy_labels(y, 0.80, rng)
    level = noisy_labels(y, 0.79, rng)  # a little worse on the slice: noise, or older rows
    broken = noisy_labels(y, 0.65, rng)
    gate = Gate()
    assert run_gate(y, champion, level, task="classification", gate=gate).verdict == "reject"
    kept = run_gate(y, champion, level, task="classification", gate=gate, refresh=True)
    assert kept.verdict == "pass" and kept.refresh and kept.refresh_tolerance == 0.01
    assert "a refresh" in kept.reasons[0] and kept.p_value is not None
    bad = run_gate(y, champion, broken, task="classification", gate=gate, refresh=True)
    assert bad.verdict == "reject" and bad.ci_high is not None and bad.ci_high < -0.01
    assert "worse by more than 0.01 even at the interval's upper end" in bad.reasons[0]
    strict = Gate(refresh_tolerance=None)  # refreshes judged like new recipes
    judged = run_gate(y, champion, level, task="classification", gate=strict, refresh=True)
    assert judged.verdict == "reject" and judged.refresh_tolerance is None
    few = run_gate(y[:50], champion[:50], level[:50], task="classification", gate=gate,
                   refresh=True)  # fmt: skip
    assert few.verdict == "insufficient"  # too few rows is never a pass, refresh or not

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import numpy as np
import pytest
from river.datasets import synth
from sklearn.linear_model import LogisticRegression

from retrainer.core.errors import ConfigError, InputError
from retrainer.core.spec_sections import Monitor
from retrainer.monitoring.concept import ConceptDriftMonitor, ConceptDriftStatus

POSITION, N, BATCH = 3000, 6000, 100


def _xy(stream: Iterator[tuple[dict[int, float], bool]], n: int) -> tuple[np.ndarray, np.ndarray]:
    rows = list(itertools.islice(stream, n))
    return np.array([[x[0], x[1], x[2]] for x, _ in rows]), np.array([int(t) for _, t in rows])


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    X, y = _xy(iter(synth.SEA(variant=0, noise=0.05, seed=1)), 2000)
    return LogisticRegression().fit(X, y)


@pytest.fixture(scope="module")
def drifting_errors(model: LogisticRegression) -> np.ndarray:
    """A model of SEA concept 0 scored on a stream that switches to concept 3 at POSITION.
    ConceptDriftStream overflows for width < position / 170, hence width 20."""
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=0, noise=0.05, seed=2),
        drift_stream=synth.SEA(variant=3, noise=0.05, seed=3),
        position=POSITION,
        width=20,
        seed=4,
    )
    X, y = _xy(iter(stream), N)
    return (model.predict(X) != y).astype(float)


@pytest.fixture(scope="module")
def stationary_errors(model: LogisticRegression) -> np.ndarray:
    X, y = _xy(iter(synth.SEA(variant=0, noise=0.05, seed=5)), N)
    return (model.predict(X) != y).astype(float)


def run(monitor: ConceptDriftMonitor, errors: np.ndarray) -> list[ConceptDriftStatus]:
    return [monitor.update(errors[i : i + BATCH].tolist()) for i in range(0, len(errors), BATCH)]


def end_of(i: int) -> int:
    return (i + 1) * BATCH


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley"])
def test_abrupt_drift_is_confirmed_after_the_debounce(
    detector: str, drifting_errors: np.ndarray
) -> None:
    assert drifting_errors[POSITION:].mean() > 2 * drifting_errors[:POSITION].mean()
    statuses = run(ConceptDriftMonitor(detector, persistence=3), drifting_errors)  # type: ignore[arg-type]
    fired = [end_of(i) for i, s in enumerate(statuses) if s.fired]
    confirmed = [end_of(i) for i, s in enumerate(statuses) if s.drift]
    assert fired and min(fired) > POSITION, "no alarm before the drift"
    assert confirmed and POSITION < confirmed[0] <= POSITION + 1500
    first = statuses[confirmed[0] // BATCH - 1]
    assert first.streak == 3 and first.reason.startswith(f"concept drift: {detector} fired in 3")
    # confirmation needs three checks in a row: the two before the first confirmation fired
    assert [statuses[confirmed[0] // BATCH - k].fired for k in (2, 3)] == [True, True]
    assert not statuses[confirmed[0] // BATCH - 2].drift
    assert first.recent_error is not None and first.reference_error is not None
    assert first.recent_error > first.reference_error


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley"])
def test_stationary_stream_never_alarms(detector: str, stationary_errors: np.ndarray) -> None:
    statuses = run(ConceptDriftMonitor(detector), stationary_errors)  # type: ignore[arg-type]
    assert statuses[-1].ready and statuses[-1].n_seen == N
    assert not any(s.drift for s in statuses)
    assert statuses[-1].reason.startswith("no concept drift: recent error")


def test_a_single_fired_check_does_not_confirm() -> None:
    rng = np.random.default_rng(0)
    mon = ConceptDriftMonitor(min_samples=50, persistence=2, reference_size=500, window=100)
    mon.update((rng.random(500) < 0.1).astype(float).tolist())
    spike = mon.update((rng.random(100) < 0.6).astype(float).tolist())
    assert spike.fired and not spike.drift and spike.streak == 1
    assert spike.reason.startswith("adwin fired in 1 of the 2 consecutive checks needed")
    calm = mon.update((rng.random(100) < 0.1).astype(float).tolist())
    assert not calm.fired and calm.streak == 0 and not calm.drift


def test_a_model_that_gets_better_is_not_drift() -> None:
    rng = np.random.default_rng(1)
    mon = ConceptDriftMonitor(persistence=1)
    mon.update((rng.random(500) < 0.3).astype(float).tolist())
    statuses = [mon.update((rng.random(200) < 0.05).astype(float).tolist()) for _ in range(5)]
    assert not any(s.fired for s in statuses)


def test_warming_up_until_reference_and_min_samples() -> None:
    mon = ConceptDriftMonitor(reference_size=500, min_samples=100)
    s = mon.update([0.0] * 300)
    assert (s.ready, s.drift, s.n_reference, s.n_recent) == (False, False, 300, 0)
    assert s.reason == "warming up: 300/500 reference errors, 0/100 recent errors"
    s = mon.update([1.0] * 250)
    assert not s.ready and s.n_recent == 50
    assert mon.update([1.0] * 50).ready


def test_holdout_errors_as_reference() -> None:
    rng = np.random.default_rng(2)
    holdout = (rng.random(2000) < 0.1).astype(float).tolist()
    mon = ConceptDriftMonitor(reference=holdout, reference_size=800, persistence=1)
    assert mon.to_dict()["reference"] == holdout[-800:]
    s = mon.update((rng.random(300) < 0.4).astype(float).tolist())
    assert s.ready and s.fired and s.drift


def test_empty_update_is_not_a_check() -> None:
    mon = ConceptDriftMonitor(reference_size=10, min_samples=5, window=10)
    s = mon.update([0.0] * 20)
    assert mon.update([]) is s and mon.status.n_checks == 1


def test_snapshot_round_trip_resumes_exactly(drifting_errors: np.ndarray) -> None:
    whole = run(ConceptDriftMonitor("page_hinkley"), drifting_errors)
    first = ConceptDriftMonitor("page_hinkley")
    run(first, drifting_errors[: POSITION + 300])
    snapshot = json.loads(json.dumps(first.to_dict(), allow_nan=False))
    resumed = ConceptDriftMonitor.from_dict(snapshot)
    assert resumed.status == first.status
    rest = run(resumed, drifting_errors[POSITION + 300 :])
    assert rest == whole[(POSITION + 300) // BATCH :]


def test_from_spec_and_bad_configuration() -> None:
    mon = ConceptDriftMonitor.from_spec(
        Monitor(concept_detector="page_hinkley", min_samples=50, persistence=4), window=200
    )
    assert (mon.detector, mon.min_samples, mon.persistence, mon.window) == (
        "page_hinkley",
        50,
        4,
        200,
    )
    with pytest.raises(ConfigError, match=r"detector 'kswin' is unknown"):
        ConceptDriftMonitor("kswin")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"adwin parameters \{'nope': 1\} are invalid"):
        ConceptDriftMonitor(params={"nope": 1})
    with pytest.raises(ConfigError, match=r"'persistence' parameter .* Got 0 instead"):
        ConceptDriftMonitor(persistence=0)
    with pytest.raises(ConfigError, match=r"min_samples \(500\) exceeds its window \(100\)"):
        ConceptDriftMonitor(min_samples=500, window=100)
    with pytest.raises(InputError, match=r"Got nan"):
        ConceptDriftMonitor().update([0.0, float("nan")])
    with pytest.raises(InputError, match=r"snapshot format 7"):
        ConceptDriftMonitor.from_dict({"format": 7})
    snapshot = ConceptDriftMonitor().to_dict()
    del snapshot["window"]
    with pytest.raises(InputError, match=r"snapshot has no 'window'"):
        ConceptDriftMonitor.from_dict(snapshot)

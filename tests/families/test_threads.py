"""Threads: every family computes with the CPUs this process may use unless told otherwise.

The order: a family's own thread parameter in ``params`` (uncapped), else ``threads``
(``training.threads``), else ``available_cpus()``; the last two never above the CPUs. The count
is resolved on use and never saved, so a model loaded on a smaller machine uses fewer threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import ConfigError
from retrainer.core.spec import parse_spec
from retrainer.families import FamilyModel, ValidationSet, family_class, load_model
from retrainer.families import base as family_base
from retrainer.families.base import read_artifact
from retrainer.lifecycle.fitting import make_model


def _lightgbm(m: Any) -> int:
    return int(m.booster_.params["num_threads"])


def _xgboost(m: Any) -> int:
    return int(json.loads(m.booster_.save_config())["learner"]["generic_param"]["nthread"])


def _catboost(m: Any) -> int:
    return int(m.model_.get_params()["thread_count"])


def _randomforest(m: Any) -> int:
    return int(m.estimator_.n_jobs)


# family -> (its library, small params, the thread count the fitted library object holds)
FAMILIES: dict[str, tuple[str, dict[str, Any], Callable[[Any], int]]] = {
    "lightgbm": ("lightgbm", {"n_estimators": 5, "min_data_in_leaf": 5}, _lightgbm),
    "xgboost": ("xgboost", {"n_estimators": 5}, _xgboost),
    "catboost": ("catboost", {"iterations": 5}, _catboost),
    "randomforest": ("sklearn", {"n_estimators": 5}, _randomforest),
}


def data(n: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], size=n)})
    return X, pd.Series((X["x"] + (X["c"] == "a") > 0.5).astype(int))


@pytest.fixture
def cpus(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Pretend this process may use ``n`` CPUs."""

    def set_cpus(n: int) -> None:
        monkeypatch.setattr(family_base, "available_cpus", lambda: n)

    return set_cpus


def build(family: str, params: dict[str, Any] | None = None, **kw: Any) -> FamilyModel:
    library, small, _ = FAMILIES[family]
    pytest.importorskip(library)
    return family_class(family)("classification", ["x"], ["c"], {**small, **(params or {})}, **kw)


def fitted_threads(family: str, model: FamilyModel) -> int:
    model.fit(*data())
    return FAMILIES[family][2](model)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_library_gets_the_available_cpus(family: str, cpus: Callable[[int], None]) -> None:
    cpus(3)
    m = build(family)
    assert m.thread_param is not None and m.thread_param not in m.effective_params
    assert m.runtime_params[m.thread_param] == 3
    assert fitted_threads(family, m) == 3


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_training_threads_win_over_the_machine(family: str, cpus: Callable[[int], None]) -> None:
    cpus(4)
    assert fitted_threads(family, build(family, threads=1)) == 1


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_training_threads_never_exceed_the_cpus(family: str, cpus: Callable[[int], None]) -> None:
    cpus(2)
    assert fitted_threads(family, build(family, threads=8)) == 2


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_explicit_family_param_wins(family: str, cpus: Callable[[int], None]) -> None:
    cpus(1)
    param = family_class(family).thread_param
    assert param is not None
    m = build(family, {param: 3}, threads=2)  # above the CPUs, yet the user's word
    assert m.n_threads == 3 and m.effective_params[param] == 3
    assert fitted_threads(family, m) == 3


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_reloaded_model_uses_the_cpus_of_its_new_machine(
    family: str, cpus: Callable[[int], None]
) -> None:
    cpus(4)
    m = build(family)
    X, y = data()
    m.fit(X, y)
    artifact = m.save()
    meta = read_artifact(artifact)[0]
    assert m.thread_param not in meta["params"]
    cpus(1)
    loaded = load_model(artifact)
    assert loaded.n_threads == 1 and loaded.predict_threads(10**6) == 1
    np.testing.assert_allclose(loaded.predict_raw(X), m.predict_raw(X))
    if loaded.capabilities.warm_start:
        loaded.fine_tune(X, y, ValidationSet(X, y), rounds=2)
        assert FAMILIES[family][2](loaded) == 1
    assert load_model(artifact, threads=2).n_threads == 1  # still capped by the CPUs


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_artifact_does_not_depend_on_the_thread_count(
    family: str, cpus: Callable[[int], None]
) -> None:
    artifacts = []
    for n in (1, 3):
        cpus(n)
        artifacts.append(build(family).fit(*data()).save())
    assert artifacts[0] == artifacts[1]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_large_batches_predict_as_single_rows_do(
    family: str, cpus: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    cpus(2)
    X, y = data()
    m = build(family).fit(X, y)
    one_by_one = np.vstack([m.predict_raw(X.iloc[[i]]) for i in range(len(X))])
    monkeypatch.setattr(family_base, "BATCH_ROWS", 10)  # so the whole frame is a large batch
    assert m.predict_threads(len(X)) == 2 and m.predict_threads(1) == 1
    np.testing.assert_allclose(m.predict_raw(X), one_by_one, rtol=1e-6)


def test_lightgbm_scores_only_large_batches_with_more_threads(
    cpus: Callable[[int], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    cpus(2)
    X, y = data()
    m: Any = build("lightgbm").fit(X, y)
    seen: list[int] = []
    predict = m.booster_.predict

    def spy(rows: Any, **kw: Any) -> Any:
        seen.append(kw["num_threads"])
        return predict(rows, **kw)

    monkeypatch.setattr(m.booster_, "predict", spy)
    monkeypatch.setattr(family_base, "BATCH_ROWS", 10)
    m.predict_raw(X.head(1))  # a request's row: the one-thread predictor kept with the model
    m.predict_raw(X)
    assert seen == [2]


def test_ensemble_members_get_the_resolved_count(cpus: Callable[[int], None]) -> None:
    pytest.importorskip("lightgbm")
    cpus(3)
    params = {
        "members": ["randomforest", "lightgbm"],
        "member_params": {
            "randomforest": {"n_estimators": 5, "n_jobs": 1},
            "lightgbm": {"n_estimators": 5, "min_data_in_leaf": 5},
        },
    }
    ensemble_class = family_class("ensemble")
    m: Any = ensemble_class("classification", ["x"], ["c"], params, threads=2).fit(*data())
    rf, lgbm = m.members_
    assert _randomforest(rf) == 1  # its own n_jobs wins
    assert _lightgbm(lgbm) == 2  # the ensemble's threads
    cpus(1)
    loaded: Any = load_model(m.save())
    assert [member.n_threads for member in loaded.members_] == [1, 1]
    loaded.threads = 1
    assert [member.threads for member in loaded.members_] == [1, 1]


def test_families_without_a_thread_parameter_run_unchanged(cpus: Callable[[int], None]) -> None:
    pytest.importorskip("river")
    cpus(3)
    m = family_class("river")("classification", ["x"], ["c"], threads=2)
    assert m.thread_param is None and m.runtime_params == m.effective_params


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_threads_are_a_config_error(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"threads of a 'randomforest' model .* got"):
        family_class("randomforest")("regression", ["x"], threads=bad)


SPEC = {
    "task": "classification",
    "target": "y",
    "id_column": "id",
    "time_column": "t",
    "family": "lightgbm",
    "features": {"numeric": ["x"], "categorical": ["c"]},
}


def test_training_threads_come_from_the_spec_or_the_environment() -> None:
    plain = parse_spec({"models": {"m": SPEC}}, source="r.yaml", environ={})
    assert plain.models["m"].training.threads is None
    env = {"RETRAINER_M__TRAINING__THREADS": "1"}
    spec = parse_spec({"models": {"m": SPEC}}, source="r.yaml", environ=env).models["m"]
    assert spec.training.threads == 1
    assert make_model(spec, "randomforest", seed=0).threads == 1  # the fallback family too


def test_training_threads_below_one_are_rejected_at_load() -> None:
    with pytest.raises(ConfigError, match=r"training\.threads"):
        parse_spec(
            {"models": {"m": {**SPEC, "training": {"threads": 0}}}}, source="r.yaml", environ={}
        )


def test_make_model_hands_training_threads_to_the_family(cpus: Callable[[int], None]) -> None:
    pytest.importorskip("lightgbm")
    cpus(4)
    body = {**SPEC, "training": {"threads": 2}, "params": {"n_estimators": 5}}
    spec = parse_spec({"models": {"m": body}}, source="r.yaml", environ={}).models["m"]
    m = make_model(spec, "lightgbm", seed=0)
    assert m.n_threads == 2 and _lightgbm(m.fit(*data())) == 2
    assert "num_threads" not in m.effective_params  # the recipe a version records

"""River: online learning in place (partial_fit) and the restricted unpickler."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import ConfigError, InputError, IntegrityError
from retrainer.families import load_model
from retrainer.families.river_family import RiverModel, restricted_loads

PARAMS = {"n_models": 3, "grace_period": 20}


def data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], size=n)})
    y = pd.Series(np.where(X["x"] + (X["c"] == "a") > 0.5, "yes", "no"))
    return X, y


def model() -> RiverModel:
    return RiverModel("classification", ["x"], ["c"], PARAMS, seed=3)


def test_partial_fit_continues_exactly_where_fit_stopped() -> None:
    X, y = data()
    online = model().fit(X.iloc[:120], y.iloc[:120]).partial_fit(X.iloc[120:], y.iloc[120:])
    one_pass = model().fit(X, y)
    assert online.save() == one_pass.save()


def test_partial_fit_updates_in_place_and_first_call_fits() -> None:
    X, y = data()
    m = model()
    assert m.partial_fit(X.iloc[:100], y.iloc[:100]) is m
    before = m.predict_proba(X)
    X_new, y_new = data(seed=1)
    m.partial_fit(X_new, y_new.map({"yes": "no", "no": "yes"}))
    assert not np.allclose(m.predict_proba(X), before)


def test_partial_fit_after_load_matches_partial_fit_before_save() -> None:
    X, y = data()
    m = model().fit(X.iloc[:100], y.iloc[:100])
    loaded = load_model(m.save())
    assert isinstance(loaded, RiverModel)
    m.partial_fit(X.iloc[100:], y.iloc[100:])
    loaded.partial_fit(X.iloc[100:], y.iloc[100:])
    np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))


def test_partial_fit_refuses_a_class_unseen_in_training() -> None:
    X, y = data()
    m = model().fit(X, y)
    with pytest.raises(InputError, match="maybe"):
        m.partial_fit(X.head(3), ["yes", "no", "maybe"])


def test_regression_with_categorical_features_learns_online() -> None:
    X, _ = data()
    y = X["x"] * 3 + (X["c"] == "b") * 2
    m = RiverModel("regression", ["x"], ["c"], PARAMS).fit(X, y)
    m.partial_fit(X, y)
    assert np.isfinite(m.predict(X)).all()


def test_task_specific_params_are_refused_for_the_other_task() -> None:
    with pytest.raises(ConfigError, match=r"aggregation_method.*regression only"):
        RiverModel("classification", ["x"], params={"aggregation_method": "mean"})


def _global_pickle(module: str, name: str) -> bytes:
    """A protocol-4 pickle that calls ``module.name()``."""

    def short(s: str) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s.encode()

    return b"\x80\x04" + short(module) + short(name) + b"\x93)R."


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "getcwd"),
        ("posix", "getcwd"),
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("subprocess", "Popen"),
        ("river.compose.pipeline", "Pipeline.__init__.__globals__"),
        ("river.compose.pipeline", "io.open"),
        ("river.base.base", "gc.collect"),
        ("river.datasets.base", "RemoteDataset"),
        ("numpy", "load"),
        ("functools", "reduce"),
    ],
)
def test_restricted_unpickler_refuses_globals_outside_the_allow_list(
    module: str, name: str
) -> None:
    with pytest.raises(IntegrityError, match="allow-list"):
        restricted_loads(_global_pickle(module, name))


def test_restricted_unpickler_refuses_a_plain_pickle_of_a_function() -> None:
    with pytest.raises(IntegrityError, match=os.getcwd.__module__):
        restricted_loads(pickle.dumps(os.getcwd))


def test_restricted_unpickler_loads_a_river_model_and_reports_garbage() -> None:
    X, y = data()
    m = model().fit(X, y)
    assert type(restricted_loads(m._dump())).__name__ == "ARFClassifier"
    with pytest.raises(IntegrityError, match="cannot be unpickled"):
        restricted_loads(m._dump()[:100])

"""One conformance suite for every model family: it finds each family in FAMILY_MODULES and
runs the same checks on it, for classification and regression.

A family is skipped only when its library is not importable (the reason names the extra to
install) or, for tabpfn, when neither local weights nor a random-weight checkpoint can be had.
Without real TabPFN weights the adapter runs end to end on tiny random weights. No check may
touch the network.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import ConfigError, FamilyUnavailableError, InputError
from retrainer.core.family_params import ACCEPTED, accepted_for
from retrainer.families import FAMILY_MODULES, FamilyModel, ValidationSet, family_class, load_model

TASKS = ("classification", "regression")
NUMERIC, CATEGORICAL = ["x"], ["c"]
SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "randomforest": {"n_estimators": 10, "n_jobs": 1},
    "lightgbm": {"n_estimators": 20, "min_data_in_leaf": 5, "num_threads": 1},
    "xgboost": {"n_estimators": 20, "max_depth": 3},
    "catboost": {"iterations": 30, "depth": 4},
    "river": {"n_models": 3, "grace_period": 20},
    "ensemble": {
        "members": ["randomforest", "xgboost"],
        "weights": [1, 2],
        "member_params": {
            "randomforest": {"n_estimators": 10, "n_jobs": 1},
            "xgboost": {"n_estimators": 20, "max_depth": 3},
        },
    },
    "tabpfn": {"n_estimators": 1},
    # your own model: a ColumnTransformer then SGD (tests/byo_models.py, on sys.path)
    "sklearn": {"estimator": "byo_models:make_pipeline"},
    "mlp": {"hidden_sizes": [16, 8], "epochs": 40, "batch_size": 64},
    "lstm": {"hidden_size": 8, "lookback": 3, "epochs": 25, "batch_size": 64},
}


def make_data(
    task: str, n: int = 240, seed: int = 0, flip: bool = False
) -> tuple[pd.DataFrame, Any]:
    """A numeric and a categorical feature, each with a few missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    c = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n)
    c[rng.random(n) < 0.05] = None
    signal = np.nan_to_num(x) + 1.5 * (c == "red") - 0.75
    if flip:
        signal = -signal
    noise = rng.normal(scale=0.3, size=n)
    if task == "classification":
        y: Any = pd.Series(np.where(signal + noise > 0, "yes", "no"))
    else:
        y = pd.Series(2.0 * signal + noise + 10.0)
    return pd.DataFrame({"x": x, "c": c}), y


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    """Every check runs with outbound connections and name lookups refused."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a model family tried to use the network: {args!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        mp.setattr(socket, "getaddrinfo", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="module")
def tabpfn_weights(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """Real weights when present at the configured place, else tiny random ones."""
    if importlib.util.find_spec("tabpfn") is None:
        pytest.skip("tabpfn is not installed: pip install 'retrainer[tabpfn]'")
    from retrainer.families import tabpfn_family as tf

    location = tf.weights_location()
    if all(tf.find_weights(location, task) for task in TASKS):
        return None
    try:
        folder = tmp_path_factory.mktemp("tabpfn-weights")
        tf.write_random_weights(folder)
    except Exception as exc:
        pytest.skip(f"no TabPFN weights at {location} ({exc}); put a checkpoint there")
    return str(folder)


@dataclass
class Case:
    family: str
    task: str
    klass: type[FamilyModel]
    params: dict[str, Any]
    model: FamilyModel
    X: pd.DataFrame
    y: Any

    def new(self, params: dict[str, Any] | None = None, seed: int = 7) -> FamilyModel:
        p = self.params if params is None else params
        return self.klass(self.task, NUMERIC, CATEGORICAL, p, seed)


def _klass(family: str) -> type[FamilyModel]:
    try:
        return family_class(family)
    except FamilyUnavailableError as exc:
        pytest.skip(exc.message)


@pytest.fixture(
    scope="module",
    params=[(f, t) for f in FAMILY_MODULES for t in TASKS],
    ids=[f"{f}-{t}" for f in FAMILY_MODULES for t in TASKS],
)
def case(request: pytest.FixtureRequest) -> Case:
    family, task = request.param
    klass = _klass(family)
    params = dict(SMALL_PARAMS.get(family, {}))
    if family == "tabpfn":
        weights = request.getfixturevalue("tabpfn_weights")
        if weights is not None:
            params["weights_path"] = weights
    X, y = make_data(task)
    model = klass(task, NUMERIC, CATEGORICAL, params, 7).fit(X, y)
    return Case(family, task, klass, params, model, X, y)


def test_save_load_round_trip_gives_identical_predictions(case: Case) -> None:
    artifact = case.model.save()
    loaded = load_model(artifact)
    assert type(loaded) is case.klass
    np.testing.assert_array_equal(loaded.predict_raw(case.X), case.model.predict_raw(case.X))
    np.testing.assert_array_equal(loaded.predict(case.X), case.model.predict(case.X))
    assert loaded.schema_ == case.model.schema_ and loaded.classes_ == case.model.classes_


def test_fine_tune_keeps_schema_and_changes_predictions(case: Case) -> None:
    if not case.model.capabilities.warm_start:
        pytest.skip(f"the {case.family} family cannot warm-start, so it has no fine-tune")
    model = load_model(case.model.save())
    before = model.predict_raw(case.X)
    schema = model.schema_
    X_new, y_new = make_data(case.task, n=160, seed=1, flip=True)
    X_val, y_val = make_data(case.task, n=60, seed=2, flip=True)
    model.fine_tune(X_new, y_new, ValidationSet(X_val, y_val), rounds=10)
    assert model.schema_ == schema
    after = model.predict_raw(case.X)
    assert after.shape == before.shape
    assert not np.allclose(after, before)


def test_fixed_seed_gives_identical_artifacts(case: Case) -> None:
    again = case.new().fit(case.X, case.y)
    assert again.save() == case.model.save()


def test_missing_or_wrong_columns_raise_an_error_naming_them(case: Case) -> None:
    with pytest.raises(InputError, match="'c'"):
        case.model.predict(case.X.drop(columns=["c"]))
    with pytest.raises(InputError, match="'x'"):
        case.model.predict(case.X.rename(columns={"x": "x_renamed"}))
    wrong = case.X.assign(x=["not a number"] * len(case.X))
    with pytest.raises(InputError, match="'x'"):
        case.model.predict(wrong)


def test_nan_features_give_finite_outputs(case: Case) -> None:
    X = case.X.head(20).copy()
    X.loc[X.index[:10], "x"] = np.nan
    X.loc[X.index[5:15], "c"] = None
    if not case.model.capabilities.handles_missing:
        with pytest.raises(InputError):
            case.model.predict_raw(X)
        return
    out = case.model.predict_raw(X)
    assert np.isfinite(out).all()
    if case.task == "classification":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
        assert set(case.model.predict(X)) <= {"yes", "no"}


def test_unseen_categories_do_not_crash(case: Case) -> None:
    X = case.X.head(20).assign(c=["purple"] * 10 + [17] * 10)
    assert np.isfinite(case.model.predict_raw(X)).all()


def test_invalid_params_raise_config_error_listing_accepted(case: Case) -> None:
    with pytest.raises(ConfigError) as info:
        case.new({**case.params, "no_such_param": 1})
    message = info.value.message
    assert "no_such_param" in message
    for accepted in sorted(accepted_for(case.family, case.task)):  # this task's, listed
        assert accepted in message


def test_one_class_target_raises_input_error(case: Case) -> None:
    if case.task != "classification":
        pytest.skip("a one-class target only matters for classification")
    with pytest.raises(InputError, match="one class"):
        case.new().fit(case.X, ["yes"] * len(case.X))


def test_randomforest_params_table_matches_scikit_learn() -> None:
    from sklearn.ensemble import RandomForestClassifier

    sklearn_params = set(RandomForestClassifier().get_params()) - {"random_state", "warm_start"}
    assert ACCEPTED["randomforest"] == sklearn_params

"""The sklearn family beyond the conformance suite: fine-tune through partial_fit or
warm_start and its refusal, row weights, trusted types, the feature step, bad estimators.
The estimators live in tests/byo_models.py, imported by path as a user's package would be."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import CapabilityError, ConfigError, InputError, IntegrityError
from retrainer.core.spec import parse_spec
from retrainer.families import ValidationSet, load_model
from retrainer.families.base import read_artifact, write_zip
from retrainer.families.feature_step import FeatureStep
from retrainer.families.sklearn_family import SklearnModel

NUMERIC, CATEGORICAL = ["income", "debt"], ["plan"]


def data(n: int = 200, seed: int = 0, flip: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "income": rng.uniform(1, 10, n),
            "debt": rng.uniform(1, 10, n),
            "plan": rng.choice(["basic", "gold"], n),
        }
    )
    signal = df["income"] / df["debt"] - 1 + (df["plan"] == "gold")
    y = pd.Series(np.where((-signal if flip else signal) > 0, "yes", "no"))
    return df, y


def model(estimator: str, task: str = "classification", **params: Any) -> SklearnModel:
    return SklearnModel(task, NUMERIC, CATEGORICAL, {"estimator": estimator, **params}, seed=3)


def test_sgd_pipeline_fine_tunes_through_partial_fit() -> None:
    X, y = data()
    m = model("byo_models:make_pipeline").fit(X, y)
    assert m.capabilities.warm_start and m.capabilities.sample_weight
    tuned = load_model(m.save())
    before = tuned.estimator_[-1].coef_.copy()
    X_new, y_new = data(120, seed=1, flip=True)
    tuned.fine_tune(X_new, y_new, ValidationSet(X_new, y_new))
    assert not np.allclose(tuned.estimator_[-1].coef_, before)
    assert tuned.estimator_[-1].coef_.shape == before.shape  # the column step kept as fitted


def test_warm_start_estimator_class_grows_on_new_rows() -> None:
    X, y = data()
    m = model("sklearn.ensemble:RandomForestClassifier", kwargs={"n_estimators": 10})
    m = SklearnModel("classification", ["income", "debt"], [], m.params, seed=3)
    m.fit(X[["income", "debt"]], y)
    m.fine_tune(*data(120, seed=1, flip=True), rounds=4)
    assert m.estimator_.n_estimators == 14 and len(m.estimator_.estimators_) == 14


def test_plain_estimator_is_refused_fine_tune_naming_it() -> None:
    X, y = data()
    m = load_model(model("byo_models:plain").fit(X, y).save())
    assert not m.capabilities.warm_start  # what the policy reads: a full retrain instead
    with pytest.raises(CapabilityError, match=r"KNeighborsClassifier.*neither partial_fit"):
        m.fine_tune(*data(50, seed=1))


def test_row_weights_reach_fit_or_are_refused() -> None:
    X, y = data()
    w = np.linspace(0.1, 1.0, len(X))
    weighted = model("byo_models:make_pipeline").fit(X, y, weight=w)
    plain = model("byo_models:make_pipeline").fit(X, y)
    assert not np.allclose(weighted.predict_raw(X), plain.predict_raw(X))
    with pytest.raises(CapabilityError, match=r"no sample_weight"):
        model("byo_models:plain").fit(X, y, weight=w)


def test_types_outside_the_allow_list_must_be_listed_and_load_trusts_the_record() -> None:
    X, y = data()
    with pytest.raises(InputError, match=r"byo_models\.double.*params\.trusted_types"):
        model("byo_models:with_function").fit(X, y)
    m = model("byo_models:with_function", trusted_types=["byo_models.double"]).fit(X, y)
    artifact = m.save()
    assert read_artifact(artifact)[0]["extra"]["trusted_types"] == ["byo_models.double"]
    np.testing.assert_array_equal(load_model(artifact).predict_raw(X), m.predict_raw(X))
    meta, payload = read_artifact(artifact)
    meta["extra"]["trusted_types"] = []  # a record that does not cover the file
    import json

    forged = write_zip([("meta.json", json.dumps(meta).encode()), ("model.skops", payload)])
    with pytest.raises(IntegrityError, match=r"byo_models.double"):
        load_model(forged)


@pytest.mark.parametrize(
    ("path", "task", "found"),
    [
        ("no_such_pkg.models:make", "classification", "module 'no_such_pkg.models' cannot be"),
        ("byo_models:no_such_function", "classification", "has no attribute 'no_such_function'"),
        ("byo_models:NOT_CALLABLE", "classification", "names a int"),
        ("byo_models:not_an_estimator", "classification", "gave builtins.dict"),
        ("sklearn.linear_model:LinearRegression", "classification", "not a classifier"),
        ("sklearn.linear_model:LogisticRegression", "regression", "a classifier"),
        ("sklearn.linear_model:SGDClassifier", "classification", "has no predict_proba"),
    ],
)
def test_bad_estimators_name_the_path_and_what_was_found(path: str, task: str, found: str) -> None:
    X, y = data()
    with pytest.raises(InputError) as info:
        model(path, task).fit(X, y if task == "classification" else X["income"])
    assert repr(path) in info.value.message and found in info.value.message


def test_estimator_is_required_and_its_form_checked() -> None:
    with pytest.raises(ConfigError, match=r"needs params.estimator"):
        SklearnModel("regression", ["x"], params={})
    with pytest.raises(ConfigError, match=r"not a 'package.module:name' path"):
        SklearnModel("regression", ["x"], params={"estimator": "byo_models.make_pipeline"})


def test_feature_step_feeds_the_estimator_and_is_recorded() -> None:
    X, y = data()
    m = model("byo_models:make_pipeline")
    m.feature_step = FeatureStep.load("byo_models:add_ratios")
    m.fit(X, y)
    assert "ratio" in m.frame(m._matrix(X.head(3))).columns
    record = m.lineage()["feature_step"]
    assert record["path"] == "byo_models:add_ratios" and len(record["sha256"]) == 64
    loaded = load_model(m.save())
    assert loaded.feature_step == m.feature_step
    np.testing.assert_array_equal(loaded.predict_raw(X), m.predict_raw(X))


def test_changed_step_source_loads_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    X, y = data()
    m = model("byo_models:make_pipeline")
    m.feature_step = FeatureStep.load("byo_models:add_ratios")
    meta, payload = read_artifact(m.fit(X, y).save())
    meta["extra"]["feature_step"]["sha256"] = "0" * 64  # as if trained on another source
    import json

    edited = write_zip([("meta.json", json.dumps(meta).encode()), ("model.skops", payload)])
    with caplog.at_level(logging.WARNING, logger="retrainer.families.feature_step"):
        loaded = load_model(edited)
    assert "byo_models:add_ratios has changed" in caplog.text
    np.testing.assert_array_equal(loaded.predict_raw(X), m.predict_raw(X))


@pytest.mark.parametrize(
    ("step", "problem"),
    [("byo_models:drops_rows", "changed the number of rows from 200 to 199"),
     ("byo_models:raises", "raised ValueError: no column 'salary'")],
)  # fmt: skip
def test_a_bad_step_refuses_training_naming_it(step: str, problem: str) -> None:
    m = model("byo_models:make_pipeline")
    m.feature_step = FeatureStep.load(step)
    with pytest.raises(InputError, match=rf"feature step '{step}'.*{problem}"):
        m.fit(*data())


def test_spec_takes_a_transform_for_the_sklearn_family_only() -> None:
    def spec(**model: Any) -> Any:
        base = {"task": "classification", "target": "y", "id_column": "i", "time_column": "t"}
        return parse_spec({"models": {"m": {**base, **model}}}, source="t.yaml", environ={})

    features = {"numeric": ["income"], "transform": "byo_models:add_ratios"}
    ok = spec(features=features, family="sklearn", params={"estimator": "byo_models:plain"})
    assert ok.model("m").active_features.transform == "byo_models:add_ratios"
    with pytest.raises(ConfigError, match=r"features.transform applies to family 'sklearn'"):
        spec(features=features, family="lightgbm")
    with pytest.raises(ConfigError, match=r"transform 'add_ratios' is not a 'package.module"):
        spec(features={**features, "transform": "add_ratios"}, family="sklearn",
             params={"estimator": "byo_models:plain"})  # fmt: skip


def test_rows_the_estimator_cannot_score_are_an_input_error_naming_it() -> None:
    X, _ = data()
    m = SklearnModel("regression", ["income"], [], {"estimator": "sklearn.linear_model:Ridge"})
    m.fit(X[["income"]], X["debt"])
    with pytest.raises(InputError, match=r"'sklearn.linear_model:Ridge' cannot score"):
        m.predict(pd.DataFrame({"income": [np.nan]}))

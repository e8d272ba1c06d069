"""Ensemble: parameter validation, weighted averaging, the member-artifact payload."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import CapabilityError, ConfigError
from retrainer.families import load_model
from retrainer.families.base import Capabilities, read_artifact, read_zip
from retrainer.families.ensemble import EnsembleModel
from retrainer.families.randomforest import RandomForestModel

FAST = {
    "randomforest": {"n_estimators": 5, "n_jobs": 1},
    "lightgbm": {"n_estimators": 10, "min_data_in_leaf": 5, "num_threads": 1},
}


def params(**overrides: Any) -> dict[str, Any]:
    return {"members": ["randomforest", "lightgbm"], "member_params": FAST, **overrides}


def data(n: int = 150) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], size=n)})
    return X, pd.Series(np.where(X["x"] + (X["c"] == "a") > 0.5, "yes", "no"))


def ensemble(**overrides: Any) -> EnsembleModel:
    return EnsembleModel("classification", ["x"], ["c"], params(**overrides))


def test_unknown_member_lists_the_valid_families() -> None:
    with pytest.raises(ConfigError) as info:
        ensemble(members=["randomforest", "deepnet"])
    message = info.value.message
    assert "deepnet" in message
    for family in ("randomforest", "lightgbm", "xgboost", "catboost", "river", "tabpfn"):
        assert family in message
    assert "Valid members" in message and "ensemble," not in message


@pytest.mark.parametrize(
    ("members", "match"),
    [
        (["ensemble"], "Unknown ensemble member"),
        ([], "non-empty list"),
        ("randomforest", "non-empty list"),
        (["lightgbm", "lightgbm"], "more than once"),
    ],
)
def test_bad_member_lists_are_refused(members: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ensemble(members=members, member_params=None)


@pytest.mark.parametrize(
    "weights", [[1], [1, 2, 3], [1, 0], [1, -2], [1, float("nan")], [True, 1], "1,2", [1, "2"]]
)
def test_weights_must_be_one_positive_number_per_member(weights: Any) -> None:
    with pytest.raises(ConfigError, match=r"'weights'.*2 positive number"):
        ensemble(weights=weights)


def test_member_params_must_name_members_and_valid_params() -> None:
    with pytest.raises(ConfigError, match=r"xgboost.*not ensemble members"):
        ensemble(member_params={"xgboost": {"n_estimators": 5}})
    with pytest.raises(ConfigError, match="must map a member family"):
        ensemble(member_params={"lightgbm": 5})
    with pytest.raises(ConfigError, match=r"num_leafs.*lightgbm.*Accepted"):
        ensemble(member_params={"lightgbm": {"num_leafs": 5}})


def test_prediction_is_the_weighted_average_of_the_members() -> None:
    X, y = data()
    m = ensemble(weights=[3, 1]).fit(X, y)
    rf, lgbm = m.members_
    expected = 0.75 * rf.predict_proba(X) + 0.25 * lgbm.predict_proba(X)
    np.testing.assert_allclose(m.predict_proba(X), expected)
    assert rf.classes_ == lgbm.classes_ == m.classes_ == ["no", "yes"]


def test_payload_is_a_zip_of_loadable_member_artifacts() -> None:
    X, y = data()
    m = ensemble().fit(X, y)
    _, payload = read_artifact(m.save())
    entries = read_zip(payload, "ensemble payload")
    assert list(entries) == ["00-randomforest.zip", "01-lightgbm.zip"]
    for member, artifact in zip(m.members_, entries.values(), strict=True):
        loaded = load_model(artifact)
        np.testing.assert_array_equal(loaded.predict_proba(X), member.predict_proba(X))


def test_fine_tune_fine_tunes_every_member() -> None:
    X, y = data()
    m = ensemble().fit(X, y)
    trees = m.members_[0].estimator_.n_estimators
    rounds = m.members_[1].booster_.num_trees()
    m.fine_tune(X, y.map({"yes": "no", "no": "yes"}), rounds=5)
    assert m.members_[0].estimator_.n_estimators > trees
    assert m.members_[1].booster_.num_trees() > rounds


def test_warm_start_only_when_every_member_can(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ensemble().capabilities.warm_start
    monkeypatch.setattr(RandomForestModel, "capabilities", Capabilities(warm_start=False))
    m = ensemble()
    assert not m.capabilities.warm_start
    X, y = data()
    m.fit(X, y)
    with pytest.raises(CapabilityError, match="cannot warm-start"):
        m.fine_tune(X, y)

"""Named feature sets on one model: the spec's rules at load, the three views (active, stored,
required), the choice a training makes from the columns its rows hold, and the flag."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from retrainer.core import feature_sets
from retrainer.core.errors import ConfigError, InputError
from retrainer.core.spec import ModelSpec, parse_spec

BASE: dict[str, Any] = {
    "task": "regression",
    "target": "change",
    "id_column": "row_id",
    "time_column": "day",
}
SETS: dict[str, Any] = {
    "original": {"numeric": ["ret_1d", "vol"], "categorical": ["sector"]},
    "enhanced": {"numeric": ["ret_1d", "vol", "hurst"], "categorical": ["sector", "regime"]},
}
CHAOS = ["hurst", "regime"]


def _spec(environ: dict[str, str] | None = None, **model: Any) -> ModelSpec:
    body = {**BASE, "feature_sets": SETS, **model}
    return parse_spec({"models": {"m": body}}, environ=environ or {}).model("m")


def _error(environ: dict[str, str] | None = None, **model: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_spec({"models": {"m": {**BASE, **model}}}, source="r.yaml", environ=environ or {})
    return " ".join(str(info.value).split())


# --- the spec's rules, checked at load ---------------------------------------------------


def test_features_and_feature_sets_together_are_refused() -> None:
    msg = _error(features={"numeric": ["ret_1d"]}, feature_sets=SETS)
    assert "r.yaml: models.m: features and feature_sets are both given" in msg
    assert "list the columns once" in msg


def test_no_feature_column_at_all_is_refused() -> None:
    msg = _error()
    assert "models.m" in msg and "lists no column" in msg and "feature_sets" in msg


def test_unknown_chosen_set_gets_a_suggestion_and_the_known_names() -> None:
    msg = _error(feature_sets=SETS, feature_set="enhancd")
    assert "feature_set 'enhancd' is not a feature set of this model" in msg
    assert "did you mean 'enhanced'?" in msg and "original, enhanced" in msg


def test_unknown_fallback_set_lists_the_known_names() -> None:
    msg = _error(feature_sets=SETS, fallback_feature_set="legacy")
    assert "fallback_feature_set 'legacy' is not a feature set of this model" in msg
    assert "original, enhanced" in msg


def test_a_set_named_without_any_sets_is_refused() -> None:
    msg = _error(features={"numeric": ["ret_1d"]}, feature_set="enhanced")
    assert "feature_set 'enhanced' names a feature set, but the model has no feature_sets" in msg
    assert "remove feature_set" in msg


def test_an_empty_set_is_refused() -> None:
    msg = _error(feature_sets={**SETS, "bare": {}})
    assert "feature_sets.bare lists no column; add numeric or categorical" in msg


def test_a_column_listed_twice_in_a_set_is_refused() -> None:
    msg = _error(feature_sets={**SETS, "twice": {"numeric": ["ret_1d", "vol", "ret_1d"]}})
    assert "feature_sets.twice lists ['ret_1d'] more than once" in msg


def test_a_column_numeric_in_one_set_and_categorical_in_another_is_refused() -> None:
    msg = _error(feature_sets={**SETS, "odd": {"categorical": ["vol"]}})
    assert "column 'vol' is numeric in feature_sets.original but categorical in" in msg
    assert "feature_sets.odd" in msg and "one type in every set" in msg


@pytest.mark.parametrize("key", ["target", "id_column", "time_column"])
def test_target_id_or_time_as_a_feature_of_a_set_is_refused(key: str) -> None:
    column = BASE[key]
    msg = _error(feature_sets={**SETS, "leaky": {"numeric": ["vol", column]}})
    assert f"{key} {column!r} is also listed in feature_sets.leaky" in msg


def test_conformal_calibration_belongs_to_a_regression() -> None:
    msg = _error(task="classification", features={"numeric": ["vol"]}, calibration="conformal")
    assert "calibration 'conformal' gives a regression model a prediction interval" in msg
    assert "'sigmoid' or 'isotonic'" in msg
    msg = _error(features={"numeric": ["vol"]}, calibration="conformal", calibration_coverage=1)
    assert "models.m.calibration_coverage" in msg and "less than 1" in msg


# --- the views ---------------------------------------------------------------------------


def test_views_of_named_sets() -> None:
    spec = _spec(feature_set="enhanced")
    assert spec.active_features.all == ["ret_1d", "vol", "hurst", "sector", "regime"]
    assert spec.feature_names == spec.active_features.all
    assert spec.stored_features.numeric == ["ret_1d", "vol", "hurst"]  # each column once
    assert spec.stored_features.categorical == ["sector", "regime"]
    assert feature_sets.required(spec).all == ["ret_1d", "vol", "sector"]  # the fallback's
    assert feature_sets.set_names(spec) == ["original", "enhanced"]


def test_without_a_flag_the_fallback_set_is_used_and_it_defaults_to_the_first() -> None:
    spec = _spec()
    assert feature_sets.chosen_name(spec) == feature_sets.fallback_name(spec) == "original"
    spec = _spec(fallback_feature_set="enhanced")
    assert feature_sets.chosen_name(spec) == "enhanced"
    assert feature_sets.required(spec).all == spec.active_features.all


def test_a_single_features_list_is_every_view() -> None:
    spec = parse_spec(
        {"models": {"m": {**BASE, "features": {"numeric": ["a"], "categorical": ["b"]}}}},
        environ={},
    ).model("m")
    views = (spec.active_features, spec.stored_features, feature_sets.required(spec))
    assert all(v.all == ["a", "b"] for v in views)
    assert feature_sets.chosen_name(spec) is None and feature_sets.set_names(spec) == []


# --- the choice a training makes ---------------------------------------------------------


def test_the_flag_set_is_used_when_the_rows_hold_its_columns() -> None:
    spec = _spec(feature_set="enhanced")
    choice = feature_sets.resolve(spec, spec.stored_features.all)
    assert (choice.name, choice.requested, choice.reason) == ("enhanced", "enhanced", "")
    assert choice.spec.feature_names == spec.feature_names
    assert choice.details() == {"name": "enhanced"}


def test_missing_columns_of_the_flag_set_fall_back_and_say_why() -> None:
    spec = _spec(feature_set="enhanced")
    choice = feature_sets.resolve(spec, ["ret_1d", "vol", "sector", "unrelated"])
    assert choice.name == "original" and choice.requested == "enhanced"
    assert choice.spec.feature_names == ["ret_1d", "vol", "sector"]
    assert choice.spec.feature_set == "original" and spec.feature_set == "enhanced"
    assert choice.missing == CHAOS
    assert choice.details() == {
        "name": "original",
        "requested": "enhanced",
        "reason": "feature set 'enhanced' needs column(s) ['hurst', 'regime'], which the rows "
        "do not hold",
        "missing": CHAOS,
    }


def test_an_empty_column_counts_as_missing() -> None:
    frame = pd.DataFrame(
        {"ret_1d": [0.1, 0.2], "vol": [1.0, 1.1], "sector": ["tech", "retail"]}
    ).assign(hurst=[None, None], regime=["calm", None])
    assert feature_sets.present_columns(frame) == ["ret_1d", "vol", "sector", "regime"]
    choice = feature_sets.resolve(
        _spec(feature_set="enhanced"), feature_sets.present_columns(frame)
    )
    assert choice.name == "original" and choice.missing == ["hurst"]


def test_rows_lacking_the_fallback_set_too_are_a_clear_error() -> None:
    spec = _spec(feature_set="enhanced")
    with pytest.raises(InputError) as info:
        feature_sets.resolve(spec, ["ret_1d", "sector"])
    msg = str(info.value)
    assert "Feature set 'enhanced' of 'm' needs ['vol', 'hurst', 'regime']" in msg
    assert "fallback set 'original' needs ['vol']" in msg and "Re-ingest" in msg


def test_the_fallback_set_itself_missing_columns_does_not_fall_anywhere() -> None:
    spec = _spec(feature_set="original")
    with pytest.raises(InputError, match=r"Feature\(s\) \['vol'\] are in the spec of 'm'"):
        feature_sets.resolve(spec, ["ret_1d", "sector"])


def test_a_single_features_list_missing_a_column_is_a_clear_error() -> None:
    spec = parse_spec(
        {"models": {"m": {**BASE, "features": {"numeric": ["a", "b"]}}}}, environ={}
    ).model("m")
    choice = feature_sets.resolve(spec, ["a", "b"])
    assert choice.name is None and choice.details() == {}
    with pytest.raises(InputError, match=r"Feature\(s\) \['b'\] are in the spec"):
        feature_sets.resolve(spec, ["a"])


# --- the flag ----------------------------------------------------------------------------


def test_the_environment_flag_switches_the_set() -> None:
    env = {"RETRAINER_M__FEATURE_SET": "original"}
    spec = _spec(env, feature_set="enhanced")
    assert spec.feature_set == "original"
    assert spec.feature_names == ["ret_1d", "vol", "sector"]
    assert spec.stored_features.all == _spec(feature_set="enhanced").stored_features.all


def test_a_misspelled_environment_flag_is_refused_with_a_suggestion() -> None:
    msg = _error({"RETRAINER_M__FEATURE_SET": "orignal"}, feature_sets=SETS)
    assert "feature_set 'orignal' is not a feature set of this model" in msg
    assert "did you mean 'original'?" in msg

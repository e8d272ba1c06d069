"""Spec validation errors name the file, the key path and the fix."""

from __future__ import annotations

import pytest

from retrainer.core.errors import ConfigError
from retrainer.core.spec import parse_spec

BASE = {
    "task": "classification",
    "target": "y",
    "id_column": "id",
    "time_column": "t",
    "features": {"numeric": ["a"]},
}


def _error(model: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_spec({"models": {"m": model}}, source="r.yaml", environ={})
    return str(info.value)


def test_bad_cron_is_rejected_at_load() -> None:
    msg = _error({**BASE, "schedule": {"maintain": "every day"}})
    assert "r.yaml: models.m.schedule.maintain" in msg and "five fields" in msg


def test_contradictory_policy_is_rejected_at_load() -> None:
    msg = _error({**BASE, "policy": {"degradation": 0.3, "critical_degradation": 0.25}})
    assert "fine-tune threshold cannot be above the full-retrain threshold" in msg


def test_misspelled_key_gets_a_suggestion() -> None:
    assert "did you mean 'family'?" in _error({**BASE, "famly": "lightgbm"})


def test_environment_override_for_unknown_model() -> None:
    with pytest.raises(ConfigError, match="names model 'other'"):
        parse_spec({"models": {"m": BASE}}, environ={"RETRAINER_OTHER__FAMILY": "xgboost"})


def test_environment_override_nested_field() -> None:
    spec = parse_spec(
        {"models": {"m": BASE}}, environ={"RETRAINER_M__TRAINING__HOLDOUT_FRACTION": "0.3"}
    )
    assert spec.model("m").training.holdout_fraction == 0.3


def test_a_cors_origin_with_a_path_is_rejected_at_load() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(
            {"models": {"m": BASE}, "cors": {"allow_origins": ["https://dash.test/app/"]}},
            source="r.yaml",
            environ={},
        )
    msg = str(info.value)
    assert "r.yaml: cors" in msg and "'https://dash.test/app/'" in msg and "no path" in msg
    assert parse_spec({"models": {"m": BASE}}, environ={}).cors.allow_origins == []  # off
    ok = parse_spec({"models": {"m": BASE}, "cors": {"allow_origins": ["*"]}}, environ={})
    assert ok.cors.allow_origins == ["*"]

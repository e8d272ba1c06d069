"""The weather model's spec for tests (``make_workspace`` and the CLI tests build on it).

Its own module, not ``conftest``: a test that imported ``from conftest import`` got whichever
folder's conftest pytest had loaded last under that name (tests/api's, collected first).
"""

from __future__ import annotations

from typing import Any

from retrainer.datasets import WEATHER_FEATURES


def weather_model(**overrides: Any) -> dict[str, Any]:
    """A LightGBM classifier of tomorrow's rain on the bundled weather data; ``overrides``
    replace top-level keys of the model's spec."""
    body: dict[str, Any] = {
        "task": "classification",
        "target": "rain",
        "id_column": "day_id",
        "time_column": "date",
        "features": {"numeric": WEATHER_FEATURES},
        "family": "lightgbm",
        "params": {"n_estimators": 40},
        "training": {"window_days": 1500},
        "retention": {"keep": 5},
    }
    body.update(overrides)
    return body

"""Helpers shared by the API tests: the model name and a small weather spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrainer.datasets import WEATHER_FEATURES

MODEL = "rain"


def spec_dict(folder: Path) -> dict[str, Any]:
    """A small, fast spec: randomforest with 20 trees on the bundled weather data."""
    return {
        "store": f"sqlite:///{folder / 'retrainer.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {
            MODEL: {
                "task": "classification",
                "target": "rain",
                "id_column": "day_id",
                "time_column": "date",
                "features": {"numeric": WEATHER_FEATURES},
                "family": "randomforest",
                "params": {"n_estimators": 20},
            }
        },
    }

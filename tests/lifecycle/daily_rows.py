"""Rows two a day from 2020-01-01, and a workspace of one model ``m`` over them, for the
training-choice tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainer.core.spec import parse_spec
from retrainer.plumbing.workspace import Workspace


def two_a_day(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """A frame of ids ``r0..``, times two rows a day, features ``x0..x2`` from ``x``'s three
    columns, and target ``y``."""
    day = np.arange(len(x)) // 2
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(x))],
            "t": pd.Timestamp("2020-01-01") + pd.to_timedelta(day, unit="D"),
            "x0": x[:, 0],
            "x1": x[:, 1],
            "x2": x[:, 2],
            "y": y,
        }
    )


def choice_workspace(tmp_path: Path, **model: Any) -> Workspace:
    """A workspace in ``tmp_path`` whose model ``m`` learns ``y`` from ``x0..x2``: a LightGBM
    classifier of 60 rounds unless ``model`` replaces top-level keys of its spec."""
    return Workspace(parse_spec(choice_spec(tmp_path, **model), environ={}))


def choice_spec(tmp_path: Path, **model: Any) -> dict[str, Any]:
    """The raw spec of :func:`choice_workspace` (what a config file of it holds)."""
    return {
        "store": f"sqlite:///{tmp_path / 'r.db'}",
        "artifacts": str(tmp_path / "a"),
        "models": {
            "m": {
                "task": "classification",
                "target": "y",
                "id_column": "id",
                "time_column": "t",
                "features": {"numeric": ["x0", "x1", "x2"]},
                "family": "lightgbm",
                "params": {"num_threads": 1, "n_estimators": 60},
                **model,
            }
        },
    }

"""A small fleet for the fleet tests: daily sales of a few stores, each store its own level
and slope, so every member learns something of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FLEET = "sales"


def fleet_spec(store: str, artifacts: str, **overrides: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "task": "regression",
        "target": "sales",
        "id_column": "day_id",
        "time_column": "day",
        "features": {"numeric": ["x", "z"]},
        "family": "lightgbm",
        "params": {"n_estimators": 30, "num_leaves": 7},
        "fleet": {"by": "store"},
        "gate": {"min_rows": 20},
        **overrides,
    }
    return {"store": store, "artifacts": artifacts, "models": {FLEET: model}}


def fleet_rows(stores: list[str], days: int, seed: int = 0) -> pd.DataFrame:
    """``days`` rows per store, in time order across stores (as a feed would bring them)."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-01-01", periods=days, freq="D")
    frames = []
    for i, store in enumerate(stores):
        x, z = rng.normal(size=days), rng.normal(size=days)
        y = x * (1 + i % 3) + 0.5 * z + rng.normal(scale=0.3, size=days) + 10 * (i % 5)
        frames.append(
            pd.DataFrame(
                {
                    "store": store,
                    "day_id": [f"{store}-{d}" for d in range(days)],
                    "day": t,
                    "x": x,
                    "z": z,
                    "sales": y,
                }
            )
        )
    return pd.concat(frames).sort_values("day", kind="stable").reset_index(drop=True)


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path

"""Rows two a day from 2020-01-01, for the training-choice tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


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

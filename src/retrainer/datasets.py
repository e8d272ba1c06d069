"""Real data that ships with the package.

>>> df = weather()
>>> len(df), df["date"].iloc[0].date().isoformat(), df["date"].iloc[-1].year
(18159, '1949-01-01', 1998)
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

WEATHER_FEATURES = [
    "temperature",
    "dew_point",
    "sea_level_pressure",
    "visibility",
    "average_wind_speed",
    "max_sustained_wind_speed",
    "minimum_temperature",
    "maximum_temperature",
]


def weather() -> pd.DataFrame:
    """NOAA daily weather, Bellevue NE, 1949–1999 (see ``retrainer/data/README.md``).

    Columns: ``day_id`` (entity id), ``date`` (one day a row from 1949-01-01), the eight
    standardised features in snake case, and ``rain`` (0/1).
    """
    with resources.files("retrainer.data").joinpath("weather.csv.gz").open("rb") as fh:
        raw = pd.read_csv(fh, compression="gzip", index_col=0)
    raw.columns = [*WEATHER_FEATURES, "rain"]
    raw = raw.reset_index(drop=True)
    raw.insert(0, "date", pd.date_range("1949-01-01", periods=len(raw), freq="D"))
    raw.insert(0, "day_id", [f"d{i:05d}" for i in range(len(raw))])
    raw["rain"] = raw["rain"].astype(int)
    return raw

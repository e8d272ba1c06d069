"""The quality bench's streams: one row a day, in time order, each with its task and layout.

Classification: NOAA weather (rain tomorrow), river's SEA with an abrupt concept drift, river's
rotating Hyperplane. Regression: NOAA weather (tomorrow's maximum temperature), river's
FriedmanDrift in its three modes, and the FiveThirtyEight approval average river's wheel ships
(read from the installed package, never downloaded).

>>> s = friedman("gra", 400)
>>> len(s.frame), s.task, s.initial_days, s.features[:2]
(400, 'regression', 200, ['x0', 'x1'])
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

INITIAL_DAYS = 3652
WINDOW_DAYS = 3650
SYNTH_ROWS = 3652 + 3650  # ten years of warm-up, ten scored
QUICK_SCORED_DAYS = 365
APPROVAL_INITIAL_DAYS = 365  # of its 1,001 days


@dataclass(frozen=True)
class Stream:
    """A time-ordered frame (``day_id``, ``date``, features, target) and how to score it."""

    name: str
    frame: pd.DataFrame
    target: str
    features: list[str]
    task: str  # "classification" or "regression"
    initial_days: int = INITIAL_DAYS
    season_days: int | None = None  # a seasonal naive baseline repeats the actual this far back

    @property
    def regression(self) -> bool:
        return self.task == "regression"


def _as_daily(X: list[dict[str, float]], y: list[Any], *, regression: bool = False) -> pd.DataFrame:
    df = pd.DataFrame(X)
    df.columns = [f"x{i}" for i in range(df.shape[1])]
    df.insert(0, "date", pd.date_range("1949-01-01", periods=len(df), freq="D"))
    df.insert(0, "day_id", [f"r{i:06d}" for i in range(len(df))])
    df["y"] = np.asarray(y).astype(float if regression else int)
    return df


def _initial(n: int) -> int:
    """The warm-up of a synthetic stream of ``n`` rows: ten years, or half a short one."""
    return INITIAL_DAYS if n > INITIAL_DAYS + 365 else n // 2


def sea_abrupt(n: int) -> Stream:
    """SEA variant 0 → variant 2 in the middle of the scored part (width n/150 ≥ pos/170)."""
    from river.datasets import synth

    start = _initial(n)
    position = start + (n - start) // 2
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=0, noise=0.1, seed=7),
        drift_stream=synth.SEA(variant=2, noise=0.1, seed=8),
        position=position,
        width=max(50, position // 150),
        seed=9,
    )
    rows = list(stream.take(n))
    df = _as_daily([x for x, _ in rows], [y for _, y in rows])
    return Stream("SEA, abrupt drift", df, "y", ["x0", "x1", "x2"], "classification", start)


def hyperplane_gradual(n: int) -> Stream:
    """River's Hyperplane rotating 4 of its 8 weights a little every row."""
    from river.datasets import synth

    stream = synth.Hyperplane(
        seed=11, n_features=8, n_drift_features=4, mag_change=0.002, noise_percentage=0.05
    )
    rows = list(stream.take(n))
    df = _as_daily([x for x, _ in rows], [y for _, y in rows])
    feats = [f"x{i}" for i in range(8)]
    return Stream("Hyperplane, gradual drift", df, "y", feats, "classification", _initial(n))


FRIEDMAN = {
    "lea": "local expanding abrupt drift",
    "gra": "global recurring abrupt drift",
    "gsg": "global slow gradual drift",
}


def friedman(mode: str, n: int) -> Stream:
    """River's FriedmanDrift (10 uniform features, 5 relevant) with every drift inside the
    scored part: "lea" at 1/4, 1/2 and 3/4 of it; "gra" at 1/3 (a new concept) and 2/3 (the
    old one back); "gsg" at 1/3 and 2/3, each over a transition of 1/10 of the scored part in
    which rows of both concepts mix."""
    from river.datasets import synth

    start = _initial(n)
    scored = n - start
    if mode == "lea":
        position: tuple[int, ...] = tuple(start + scored * k // 4 for k in (1, 2, 3))
    else:
        position = tuple(start + scored * k // 3 for k in (1, 2))
    kwargs: dict[str, Any] = {"transition_window": scored // 10} if mode == "gsg" else {}
    gen = synth.FriedmanDrift(drift_type=mode, position=position, seed=21, **kwargs)
    rows = list(gen.take(n))
    df = _as_daily([x for x, _ in rows], [y for _, y in rows], regression=True)
    feats = [f"x{i}" for i in range(10)]
    return Stream(f"FriedmanDrift, {FRIEDMAN[mode]}", df, "y", feats, "regression", start)


def weather_rain(rows: int | None = None) -> Stream:
    """Real: NOAA weather, will it rain tomorrow (the bundled data's own target)."""
    from retrainer.datasets import WEATHER_FEATURES, weather

    w = weather() if rows is None else weather().iloc[:rows]
    return Stream(
        "NOAA weather", w, "rain", list(WEATHER_FEATURES), "classification", season_days=365
    )


def weather_max_temperature(rows: int | None = None) -> Stream:
    """Real: NOAA weather, tomorrow's maximum temperature from today's 8 features (the last
    day, without a tomorrow, dropped)."""
    from retrainer.datasets import WEATHER_FEATURES, weather

    w = weather().drop(columns=["rain"])
    w["max_temp_tomorrow"] = w["maximum_temperature"].shift(-1)
    w = w.iloc[:-1].reset_index(drop=True)
    if rows is not None:
        w = w.iloc[:rows]
    return Stream(
        "NOAA weather, next-day maximum temperature",
        w,
        "max_temp_tomorrow",
        list(WEATHER_FEATURES),
        "regression",
        season_days=365,
    )


def approval() -> Stream:
    """Real: FiveThirtyEight's daily Trump approval average (2017-03-01 to 2019-11-26, 1,001
    days) from the five pollsters' latest numbers that day, as river's wheel ships it."""
    import river.datasets

    path = Path(river.datasets.__file__).parent / "trump_approval.csv.gz"
    raw = pd.read_csv(path)
    df = raw.drop(columns=["ordinal_date"])
    df.insert(0, "date", pd.to_datetime(raw["ordinal_date"].map(dt.date.fromordinal)))
    df.insert(0, "day_id", [f"a{i:05d}" for i in range(len(df))])
    feats = ["gallup", "ipsos", "morning_consult", "rasmussen", "you_gov"]
    return Stream(
        "FiveThirtyEight approval average",
        df,
        "five_thirty_eight",
        feats,
        "regression",
        APPROVAL_INITIAL_DAYS,
    )


def streams(quick: bool) -> list[Stream]:
    """Every stream of the full run; quick: a year of weather scored and the approval stream
    (the shortest, one regression stream end to end)."""
    if quick:
        return [weather_rain(INITIAL_DAYS + QUICK_SCORED_DAYS), approval()]
    return [
        weather_rain(),
        sea_abrupt(SYNTH_ROWS),
        hyperplane_gradual(SYNTH_ROWS),
        weather_max_temperature(),
        *(friedman(mode, SYNTH_ROWS) for mode in FRIEDMAN),
        approval(),
    ]

"""Seeded hourly visitor counts for the demand-3-tier example: 24 places, open 08:00-22:00.

    python generate.py data

Writes ``history.csv`` (the 12 weeks before the story starts, labelled) and, for each week of
the story the places are open, ``week-NN.csv`` (the week's hours to forecast, no label) and
``actuals-NN.csv`` (the counts, known after the week). Week NN starts on Sunday
``START + 7 * (NN - 1)`` days. The story's events sit at known weeks:

- weeks 1-6: an ordinary demand pattern (visitors follow capacity, venue type, hour,
  weekday and temperature);
- from week 3: a new metro line opens beside a third of the places (``metro_nearby`` 0 -> 1)
  and their demand rises by half: the live MAE of a model that never saw the line is some
  20% worse than its baseline (more than 15%, less than 25%);
- weeks 7-19: the places close for the off-season: no rows at all;
- week 20: they reopen, and a competitor has closed: demand is up by 60% everywhere, and the
  live MAE is far more than 25% worse.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

PLACES = 24
START = datetime(2026, 1, 4)  # a Sunday: week 1 of the story begins here
HISTORY_WEEKS = 12
OPEN_WEEKS = (1, 2, 3, 4, 5, 6, 18, 19, 20)
METRO_FROM_WEEK = 3
METRO_LIFT = 0.35
COMPETITOR_WEEK = 20
COMPETITOR_LIFT = 0.4
HOURS = range(8, 23)  # open 08:00-22:00
TYPES = ["cafe", "bar", "restaurant", "museum"]
# visitors per hour at capacity 100 by venue type and hour of day (08 ... 22)
CURVES = {
    "cafe": [9, 14, 12, 10, 12, 11, 9, 8, 7, 6, 4, 3, 2, 1, 1],
    "bar": [0, 0, 1, 2, 4, 4, 3, 3, 5, 8, 12, 16, 18, 17, 14],
    "restaurant": [1, 2, 2, 4, 11, 12, 5, 3, 3, 6, 12, 14, 10, 6, 3],
    "museum": [0, 0, 6, 9, 10, 10, 11, 12, 11, 9, 6, 0, 0, 0, 0],
}
WEEKEND = {"cafe": 1.3, "bar": 1.5, "restaurant": 1.3, "museum": 1.6}


def places(seed: int = 11) -> pd.DataFrame:
    """The places: a type, a capacity and whether the new metro line stops beside them."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "place_id": [f"P{p:02d}" for p in range(1, PLACES + 1)],
            "venue_type": [TYPES[p % len(TYPES)] for p in range(PLACES)],
            "capacity": rng.integers(40, 160, PLACES),
            "on_metro_line": np.arange(PLACES) % 3 == 0,
        }
    )


def week(number: int, spot: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Every open hour of story week ``number`` (history weeks are 0 and below)."""
    first = START + timedelta(days=7 * (number - 1))
    metro_open = number >= METRO_FROM_WEEK
    lift = 1 + COMPETITOR_LIFT if number >= COMPETITOR_WEEK else 1.0
    frames = []
    for day in range(7):
        date = first + timedelta(days=day)
        temperature = rng.normal(12 + 6 * np.sin(day / 7 * np.pi), 4)
        weekend = date.weekday() >= 5
        for h, hour in enumerate(HOURS):
            curve = np.array([CURVES[t][h] for t in spot["venue_type"]], dtype=float)
            factor = np.array([WEEKEND[t] if weekend else 1.0 for t in spot["venue_type"]])
            warm = np.where(spot["venue_type"].isin(["cafe", "bar"]), 1.0, -0.5)
            metro = (spot["on_metro_line"] & metro_open).to_numpy()
            mean = 4 + (
                spot["capacity"].to_numpy()
                / 100
                * curve
                * factor
                * (1 + 0.02 * warm * (temperature - 12))
                * np.where(metro, 1 + METRO_LIFT, 1.0)
                * lift
            )
            frames.append(
                pd.DataFrame(
                    {
                        "place_id": spot["place_id"],
                        "timestamp": (date + timedelta(hours=hour)).isoformat(),
                        "venue_type": spot["venue_type"],
                        "capacity": spot["capacity"],
                        "hour": hour,
                        "weekday": date.weekday(),
                        "temperature": round(float(temperature), 1),
                        "metro_nearby": metro.astype(int),
                        "competitor_open": int(number < COMPETITOR_WEEK),
                        "visitors": np.maximum(np.round(mean + rng.normal(0, 2, PLACES)), 0),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    spot = places()
    history = pd.concat([week(n, spot, rng) for n in range(1 - HISTORY_WEEKS, 1)])
    history.to_csv(out / "history.csv", index=False)
    for n in OPEN_WEEKS:
        rows = week(n, spot, rng)
        rows.drop(columns=["visitors"]).to_csv(out / f"week-{n:02d}.csv", index=False)
        rows[["place_id", "timestamp", "visitors"]].to_csv(
            out / f"actuals-{n:02d}.csv", index=False
        )
    print(
        f"wrote {out}: {len(history)} labelled rows of history, weeks "
        f"{', '.join(map(str, OPEN_WEEKS))} to forecast"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data"))

"""Seeded device telemetry for the device-failure example: one reading per device per day,
labelled with whether the device failed within the next seven days.

    python generate.py data            # 120 days of labelled history + 10 days to score

Writes ``history.csv`` (days 1-120, labelled), and for each later day ``day-NNN.csv`` (the
readings to score, no label) and ``labels-NNN.csv`` (their outcomes, known a week later; the
example feeds them back the next day so the story stays short). Failures follow wear (hours
in service), heat, vibration and recent errors, and one firmware version fails more often.
From day 121 a new firmware reaches a fifth of the fleet and heat matters more: the drift the
daily updates follow.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DEVICES = 60
HISTORY_DAYS = 120
SCORED_DAYS = 10
START = datetime(2026, 1, 1, 6, 0)
TYPES = ["sensor", "thermostat", "lock", "camera"]
FIRMWARE = ["3.1", "3.2", "4.0"]


def readings(days: range, seed: int = 7) -> pd.DataFrame:
    """One reading per device per day over ``days`` (day 1 is ``START``'s), labelled."""
    rng = np.random.default_rng(seed)
    device_type = rng.choice(TYPES, DEVICES)
    base_hours = rng.uniform(100, 8000, DEVICES)
    rows = []
    for day in days:
        late = day > HISTORY_DAYS
        firmware = np.where(
            late & (rng.random(DEVICES) < 0.2), "4.1", rng.choice(FIRMWARE, DEVICES)
        )
        hours = (base_hours + 24 * day) % 9000  # a device is replaced after 9,000 hours
        temperature = rng.normal(45, 8, DEVICES) + np.where(device_type == "camera", 6, 0)
        vibration = rng.gamma(2.0, 0.6, DEVICES)
        errors = rng.poisson(0.4 + hours / 20000, DEVICES)
        battery = np.clip(rng.normal(80 - hours / 400, 10, DEVICES), 0, 100)
        heat = 0.09 if late else 0.05
        wear = hours / 3000
        logit = (
            -5.5
            + wear
            + heat * (temperature - 45) * np.where(device_type == "camera", 2.0, 1.0)
            + 1.2 * np.maximum(vibration - 1.5, 0) * (1 + wear / 2)
            + 0.6 * errors
            - 0.03 * (battery - 60)
            + np.where(firmware == "3.1", 1.2, 0.0)
        )
        failed = rng.random(DEVICES) < 1 / (1 + np.exp(-logit))
        at = START + timedelta(days=day - 1)
        for d in range(DEVICES):
            rows.append(
                {
                    "reading_id": f"d{d:03d}-{day:03d}",
                    "recorded_at": (at + timedelta(minutes=d)).isoformat(),
                    "device_type": device_type[d],
                    "firmware": firmware[d],
                    "hours_in_service": round(float(hours[d]), 1),
                    "temperature_c": round(float(temperature[d]), 2),
                    "vibration_g": round(float(vibration[d]), 3),
                    "errors_24h": int(errors[d]),
                    "battery_pct": round(float(battery[d]), 1),
                    "failed_within_7d": int(failed[d]),
                }
            )
    return pd.DataFrame(rows)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    frame = readings(range(1, HISTORY_DAYS + SCORED_DAYS + 1))
    day = (pd.to_datetime(frame["recorded_at"]) - START).dt.days + 1
    frame[day <= HISTORY_DAYS].to_csv(out / "history.csv", index=False)
    for d in range(HISTORY_DAYS + 1, HISTORY_DAYS + SCORED_DAYS + 1):
        rows = frame[day == d]
        rows.drop(columns=["failed_within_7d"]).to_csv(out / f"day-{d}.csv", index=False)
        rows[["reading_id", "recorded_at", "failed_within_7d"]].to_csv(
            out / f"labels-{d}.csv", index=False
        )
    print(
        f"wrote {out}: {int((day <= HISTORY_DAYS).sum())} labelled rows, days "
        f"{HISTORY_DAYS + 1}-{HISTORY_DAYS + SCORED_DAYS} to score"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data"))

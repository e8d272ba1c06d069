"""Seeded data for the churn-workload example: a union's member churn and its stewards'
case workload.

    python generate.py data

Writes:

- ``churn-recent.csv``: the first export, members observed on the last 60 days before
  2026-05-01 (too short a span for ``quality.min_days: 90``);
- ``churn-older.csv``: the 120 days before those;
- ``churn-day-N.csv`` / ``churn-labels-N.csv`` for days 1-4 of May 2026: the members to score
  each morning and their outcomes. Day 1 is ordinary; day 2 brings a thousand members the
  model cannot tell apart (confidence falls); day 3 is a strike: members who looked safe
  leave (accuracy falls); day 4 is ordinary again;
- ``workload/history.parquet``: one row per local and day for 180 days, read in place by the
  workload model (``data.source: parquet``), with a ``shift_percentage`` column the first
  spec does not use yet;
- ``workload-weeks/week-N.parquet``: six more weeks, one file per week, copied into
  ``workload/`` as they arrive.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

MAY = datetime(2026, 5, 1)
LOCALS = ["L101", "L205", "L310", "L442"]
PER_DAY = 24  # churn: members observed a day
SCORED = 60  # churn: members scored each morning of May


def members(
    rng: np.random.Generator, n: int, kind: str = "normal", strike: float = 0.0
) -> pd.DataFrame:
    """``n`` members' features and whether they left within 90 days; ``uncertain``: only
    members on the fence (the evidence points both ways), ``strike``: long-standing members
    leave too, the more the larger ``strike``."""
    if kind == "uncertain":
        pool = members(rng, 40 * n)
        return pool[pool["_logit"].abs() < 0.12].head(n).reset_index(drop=True)
    tenure = rng.gamma(2.0, 4.0, n)
    age = rng.integers(20, 66, n)
    meetings = rng.poisson(2.0, n)
    arrears = rng.poisson(0.6, n)
    grievances = rng.poisson(0.5, n)
    employment = rng.choice(["full_time", "part_time"], n, p=[0.7, 0.3])
    local = rng.choice(LOCALS, n)
    logit = (
        1.2
        - 0.35 * tenure
        - 0.9 * meetings
        + 1.5 * arrears
        + 0.6 * grievances
        + np.where(employment == "part_time", 0.8, 0.0)
    )
    if kind == "strike":  # long-standing, active members leave too
        logit = logit + strike * (tenure > 4)
    left = rng.random(n) < 1 / (1 + np.exp(-4 * logit))
    return pd.DataFrame(
        {
            "_logit": logit,
            "tenure_years": tenure.round(2),
            "age": age,
            "meetings_90d": meetings,
            "dues_arrears_months": arrears,
            "grievances_open": grievances,
            "employment": employment,
            "local": local,
            "churned_90d": left.astype(int),
        }
    )


def churn_history(rng: np.random.Generator) -> pd.DataFrame:
    days = 180
    frame = members(rng, days * PER_DAY)
    start = MAY - timedelta(days=days)
    at = [start + timedelta(days=i // PER_DAY, minutes=i % PER_DAY) for i in range(len(frame))]
    frame.insert(0, "observed_at", [t.isoformat() for t in at])
    frame.insert(0, "member_id", [f"h{i:05d}" for i in range(len(frame))])
    return frame


def churn_day(rng: np.random.Generator, day: int) -> pd.DataFrame:
    kind = {2: "uncertain", 3: "strike"}.get(day, "normal")
    frame = members(rng, 1000 if kind == "uncertain" else SCORED, kind, strike=4.0)
    at = MAY + timedelta(days=day - 1, hours=5)
    times = [(at + timedelta(seconds=i)).isoformat() for i in range(len(frame))]
    frame.insert(0, "observed_at", times)
    frame.insert(0, "member_id", [f"m{day:02d}-{i:03d}" for i in range(len(frame))])
    return frame


def workload(rng: np.random.Generator, start: datetime, days: int) -> pd.DataFrame:
    """Cases a local's stewards handle the next week, per local and day."""
    rows = []
    size = {"L101": 900, "L205": 1500, "L310": 600, "L442": 1200}
    for d in range(days):
        at = start + timedelta(days=d)
        for local in LOCALS:
            shift = float(np.clip(rng.normal(0.35, 0.12), 0, 1))
            open_cases = rng.poisson(size[local] / 60)
            grievances = rng.poisson(size[local] / 150)
            cases = (
                0.02 * size[local]
                + 0.8 * open_cases
                + 1.5 * grievances
                + 30 * shift
                + 4 * np.sin(2 * np.pi * at.timetuple().tm_yday / 365)
                + rng.normal(0, 2)
            )
            rows.append(
                {
                    "row_id": f"{local}-{at:%Y%m%d}",
                    "day": at,
                    "local": local,
                    "members": size[local],
                    "open_cases": open_cases,
                    "grievances_last_week": grievances,
                    "shift_percentage": round(shift, 3),
                    "cases_next_week": round(float(cases), 1),
                }
            )
    return pd.DataFrame(rows)


def main(out: Path) -> None:
    rng = np.random.default_rng(14)
    out.mkdir(parents=True, exist_ok=True)
    history = churn_history(rng).drop(columns="_logit")
    recent = pd.to_datetime(history["observed_at"]) >= MAY - timedelta(days=60)
    history[recent].to_csv(out / "churn-recent.csv", index=False)
    history[~recent].to_csv(out / "churn-older.csv", index=False)
    for day in range(1, 5):
        rows = churn_day(rng, day).drop(columns="_logit")
        rows.drop(columns=["churned_90d"]).to_csv(out / f"churn-day-{day}.csv", index=False)
        rows[["member_id", "observed_at", "churned_90d"]].to_csv(
            out / f"churn-labels-{day}.csv", index=False
        )
    (out / "workload").mkdir(exist_ok=True)
    (out / "workload-weeks").mkdir(exist_ok=True)
    workload(rng, MAY - timedelta(days=180), 180).to_parquet(out / "workload" / "history.parquet")
    for week in range(1, 7):
        first = MAY + timedelta(days=7 * (week - 1))
        workload(rng, first, 7).to_parquet(out / "workload-weeks" / f"week-{week}.parquet")
    print(
        f"wrote {out}: {int(recent.sum())} + {int((~recent).sum())} churn rows, "
        "4 days to score; 180 days of workload and 6 weeks more"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data"))

"""Seeded daily bars of a handful of tickers for the stock-nightly example, with each row's
next-day change as the label.

    python generate.py data            # 260 trading days of history + 20 days to score

Writes ``history.csv`` (trading days 1-260, every column, labelled), ``history-original.csv``
(the same rows with the original columns only: the team's database before the "chaos"
features existed), and for each later day ``day-NNN.csv`` (the evening's rows to score, no
label) and ``actuals-NNN.csv`` (their next-day change, known the next evening). The next-day
change follows short-term mean reversion, momentum and volume, and - in trending regimes,
which ``hurst_60`` measures - more momentum: the signal the enhanced set can see.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

TICKERS = {"ACME": "industrials", "BOLT": "tech", "CORA": "tech", "DUNE": "energy",
           "ELMO": "retail", "FERN": "retail", "GALE": "energy", "HALO": "tech"}  # fmt: skip
HISTORY_DAYS = 260
SCORED_DAYS = 20
START = date(2025, 1, 6)  # a Monday
ORIGINAL = ["ret_1d", "ret_5d", "ma_ratio_10", "volatility_20", "volume_z", "sector"]


def trading_days(n: int) -> list[date]:
    """The first ``n`` weekdays from ``START``."""
    out, d = [], START
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def bars(n_days: int, seed: int = 11) -> pd.DataFrame:
    """One row per ticker per trading day, features known at the close, labelled."""
    rng = np.random.default_rng(seed)
    days = trading_days(n_days)
    rows = []
    for ticker, sector in TICKERS.items():
        hurst = 0.5 + 0.2 * np.sin(np.arange(n_days) / 23 + rng.uniform(0, 6))
        hurst += rng.normal(0, 0.02, n_days)
        entropy = np.clip(rng.normal(1.2, 0.25, n_days), 0.2, None)
        fractal = 2 - hurst + rng.normal(0, 0.03, n_days)
        volume_z = rng.normal(0, 1, n_days)
        change = np.zeros(n_days + 1)
        change[:5] = rng.normal(0, 1.2, 5)
        for t in range(5, n_days + 1):
            h = hurst[t - 1]
            momentum = change[t - 5 : t].mean()
            change[t] = (
                -0.25 * change[t - 1]
                + 8.0 * (h - 0.5) * np.tanh(momentum)
                + 0.25 * volume_z[t - 1] * np.sign(change[t - 1])
                + rng.normal(0, 0.7 + 0.3 * entropy[t - 1])
            )
        price = 100 * np.cumprod(1 + change / 100)
        for t in range(20, n_days):
            window = change[t - 19 : t + 1]
            rows.append(
                {
                    "row_id": f"{ticker}-{days[t].isoformat()}",
                    "trading_day": f"{days[t].isoformat()}T21:00:00",
                    "ticker": ticker,
                    "sector": sector,
                    "ret_1d": round(float(change[t]), 4),
                    "ret_5d": round(float(change[t - 4 : t + 1].sum()), 4),
                    "ma_ratio_10": round(float(price[t] / price[t - 9 : t + 1].mean()), 5),
                    "volatility_20": round(float(window.std()), 4),
                    "volume_z": round(float(volume_z[t]), 4),
                    "hurst_60": round(float(hurst[t]), 4),
                    "sample_entropy_20": round(float(entropy[t]), 4),
                    "fractal_dim_30": round(float(fractal[t]), 4),
                    "next_day_change_pct": round(float(change[t + 1]), 4),
                    "day": t + 1,
                }
            )
    return pd.DataFrame(rows).sort_values(["day", "ticker"], ignore_index=True)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    frame = bars(HISTORY_DAYS + SCORED_DAYS)
    day = frame.pop("day")
    history = frame[day <= HISTORY_DAYS].drop(columns=["ticker"])
    history.to_csv(out / "history.csv", index=False)
    keep = ["row_id", "trading_day", *ORIGINAL, "next_day_change_pct"]
    history[keep].to_csv(out / "history-original.csv", index=False)
    for d in range(HISTORY_DAYS + 1, HISTORY_DAYS + SCORED_DAYS + 1):
        rows = frame[day == d]
        rows.drop(columns=["next_day_change_pct"]).to_csv(out / f"day-{d}.csv", index=False)
        rows[["row_id", "trading_day", "next_day_change_pct"]].to_csv(
            out / f"actuals-{d}.csv", index=False
        )
    print(
        f"wrote {out}: {len(history)} labelled rows of {len(TICKERS)} tickers, days "
        f"{HISTORY_DAYS + 1}-{HISTORY_DAYS + SCORED_DAYS} to score"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data"))

"""Temporal splits: never random for time-ordered data.

>>> temporal_holdout(10, 0.2)
(slice(0, 8, None), slice(8, 10, None))
>>> [(f.train.stop, f.test.start, f.test.stop) for f in walk_forward(100, folds=3)]
[(25, 25, 50), (50, 50, 75), (75, 75, 100)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import InputError


@dataclass(frozen=True)
class Fold:
    index: int
    train: slice
    test: slice


def temporal_holdout(n: int, fraction: float) -> tuple[slice, slice]:
    """The oldest rows train, the newest ``fraction`` test (rows sorted by time)."""
    n_test = max(1, round(n * fraction))
    if n - n_test < 2:
        raise InputError(f"{n} rows cannot be split into train and a {fraction:.0%} holdout.")
    return slice(0, n - n_test), slice(n - n_test, n)


def holdout_by_days(times: Sequence[Any], days: int) -> tuple[slice, slice]:
    """The oldest rows train, those of the last ``days`` days (after the newest time minus
    ``days``) test; ``times`` sorted oldest first.

    >>> import pandas as pd
    >>> holdout_by_days(pd.date_range("2026-01-01", periods=10, freq="D"), 3)
    (slice(0, 7, None), slice(7, 10, None))
    """
    import pandas as pd

    stamps = pd.DatetimeIndex(pd.to_datetime(pd.Series(times)))
    if len(stamps) == 0:
        raise InputError("No rows to split into train and a holdout.")
    cut = stamps[-1] - pd.Timedelta(days=days)
    n_train = int(stamps.searchsorted(cut, side="right"))
    n = len(stamps)
    if n_train < 2:
        raise InputError(
            f"training.holdout_days ({days}) leaves {n_train} row(s) to train on: all {n} rows "
            f"of the window lie within {days} days of the newest ({stamps[-1]}). Lower "
            "holdout_days, or train on a longer window."
        )
    return slice(0, n_train), slice(n_train, n)


def walk_forward(
    n: int, folds: int = 5, gap: int = 0, min_train: int = 20, min_test: int = 10
) -> list[Fold]:
    """Expanding-window folds in time order: fold k trains on everything before its test
    block (minus ``gap`` rows) and tests on the next block."""
    block = n // (folds + 1)
    if block < min_test or block - gap < min_train:
        most = max(0, min(n // min_test - 1, (n - gap) // min_train - 1))
        raise InputError(
            f"A walk-forward with {folds} folds needs at least "
            f"{(folds + 1) * max(min_test, min_train + gap)} rows; there are {n}. "
            f"The most folds these rows allow is {most}. Lower "
            "validation.folds or widen the training window.",
            maximum=most,
        )
    out = []
    for k in range(folds):
        test_start = block * (k + 1)
        test_stop = n if k == folds - 1 else test_start + block
        out.append(Fold(k, slice(0, test_start - gap), slice(test_start, test_stop)))
    return out

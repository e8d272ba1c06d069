"""Temporal splits: never random for time-ordered data.

>>> temporal_holdout(10, 0.2)
(slice(0, 8, None), slice(8, 10, None))
>>> [(f.train.stop, f.test.start, f.test.stop) for f in walk_forward(100, folds=3)]
[(25, 25, 50), (50, 50, 75), (75, 75, 100)]
"""

from __future__ import annotations

from dataclasses import dataclass

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


def max_folds(n: int, min_train: int = 20, min_test: int = 10, gap: int = 0) -> int:
    return max(0, (n - gap - min_train) // max(min_test, 1))


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

"""The current window of a drift check, accumulated chunk by chunk (out of core).

:class:`WindowCounts` keeps what adds up across chunks and across partitions: rows, missing
counts, each numeric feature's counts in the reference's decile bins, and categorical counts
(listed, other, missing, and the unlisted names). Two of them fold into one with
:meth:`WindowCounts.merge`, so a window read in partitions on a Dask cluster
(:mod:`retrainer.lifecycle.dask_drift`) reduces to the counts of the same window read here.
:class:`CurrentAccumulator` adds the numeric values, which KS and Wasserstein need sorted.

>>> import numpy as np, pandas as pd
>>> from .reference import ReferenceStats
>>> ref = ReferenceStats.from_frame(pd.DataFrame({"x": np.arange(10.0)}), ["x"], [])
>>> a, b = WindowCounts(ref), WindowCounts(ref)
>>> _ = a.update(pd.DataFrame({"x": [0.5, np.nan]}))
>>> _ = b.update(pd.DataFrame({"x": [9.5]}))
>>> a.merge(b).result().numeric["x"]
NumericCounts(n_values=2, n_missing=1, bins=(1, 0, 0, 0, 0, 0, 0, 0, 0, 1))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrainer.core.errors import InputError

from .reference import ReferenceStats, category_counts, numeric_values

MAX_UNLISTED = 1000  # distinct unlisted category names tracked per feature (counts stay exact)
SHOWN_UNLISTED = 20  # unlisted names a categorical window reports


@dataclass(frozen=True, eq=False)
class NumericWindow:
    """The current window's finite values of one feature, sorted (read-only), and missing.

    Compared by identity (``values`` is an array); compare ``values`` with numpy.
    """

    values: np.ndarray
    n_missing: int


@dataclass(frozen=True)
class NumericCounts:
    """How many finite values and missing ones one numeric feature has in the window, and
    how many values fall in each of the reference's decile bins (``len(bin_edges) + 1``)."""

    n_values: int
    n_missing: int
    bins: tuple[int, ...]


@dataclass(frozen=True)
class CategoricalWindow:
    """Current counts aligned with the reference's categories; the rest in ``other_count``.

    ``unlisted`` holds the most frequent categories the reference does not list, with counts.
    """

    counts: tuple[int, ...]
    other_count: int
    n_missing: int
    unlisted: tuple[tuple[str, int], ...]


@dataclass(frozen=True, eq=False)
class CurrentStats:
    n_rows: int
    numeric: dict[str, NumericWindow]
    categorical: dict[str, CategoricalWindow]


@dataclass(frozen=True)
class CountStats:
    """:class:`WindowCounts` summed up: what a drift check needs besides the sorted values."""

    n_rows: int
    numeric: dict[str, NumericCounts]
    categorical: dict[str, CategoricalWindow]


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many finite ``values`` (in any order) fall in each bin ``[edges[j-1], edges[j])``
    (``len(edges) + 1`` bins, the outer ones open).

    >>> bin_counts(np.array([1.0, 2.0]), np.array([0.0, 1.0, 1.5, 3.0, 2.0])).tolist()
    [1, 2, 2]
    """
    index = np.searchsorted(edges, values, side="right")
    return np.bincount(index, minlength=len(edges) + 1)


class WindowCounts:
    """Counts of the current window, chunk by chunk (see the module docstring); ``bins``:
    whether numeric values are counted in the reference's decile bins (a local check counts
    them once from the sorted values instead).

    Picklable, so a Dask worker can send its partition's counts to be merged."""

    def __init__(self, reference: ReferenceStats, bins: bool = True) -> None:
        self.reference = reference
        self.n_rows = 0
        self._bins = {
            c: np.zeros(len(r.bin_edges) + 1 if bins else 0, np.int64)
            for c, r in reference.numeric.items()
        }
        self._with_bins = bins
        self._num_missing = dict.fromkeys(reference.numeric, 0)
        self._index = {
            c: {name: i for i, name in enumerate(r.categories)}
            for c, r in reference.categorical.items()
        }
        self._counts = {
            c: np.zeros(len(r.categories), np.int64) for c, r in reference.categorical.items()
        }
        self._other = dict.fromkeys(reference.categorical, 0)
        self._cat_missing = dict.fromkeys(reference.categorical, 0)
        self._unlisted: dict[str, dict[str, int]] = {c: {} for c in reference.categorical}

    def update(self, chunk: pd.DataFrame) -> dict[str, np.ndarray]:
        """Count one chunk of the window (a DataFrame holding every feature); returns each
        numeric feature's values of the chunk as float64 (missing as NaN, ±inf kept; may
        share memory with the chunk)."""
        absent = [c for c in self.reference.features if c not in chunk.columns]
        if absent:
            raise InputError(
                f"The current window has no column(s) {absent}. Columns present: "
                f"{[str(c) for c in chunk.columns]}. Every chunk must hold the features of "
                f"model version {self.reference.model_version or '(unversioned)'}."
            )
        out: dict[str, np.ndarray] = {}
        for col, ref in self.reference.numeric.items():
            arr = out[col] = numeric_values(chunk, col)
            finite = np.isfinite(arr)
            n_finite = int(np.count_nonzero(finite))
            self._num_missing[col] += len(arr) - n_finite
            if self._with_bins:
                values = arr if n_finite == len(arr) else arr[finite]
                self._bins[col] += bin_counts(ref.arrays["bin_edges"], values)
        for col in self.reference.categorical:
            counts, n_missing = category_counts(chunk[col])
            self._cat_missing[col] += n_missing
            self._add_categories(col, counts)
        self.n_rows += len(chunk)
        return out

    def _add_categories(self, col: str, counts: dict[str, int]) -> None:
        index, acc, unlisted = self._index[col], self._counts[col], self._unlisted[col]
        for name, c in counts.items():
            i = index.get(name)
            if i is not None:
                acc[i] += c
                continue
            self._other[col] += c
            if name in unlisted or len(unlisted) < MAX_UNLISTED:
                unlisted[name] = unlisted.get(name, 0) + c

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the reference (a worker's counts go to another worker to be
        merged; the reference is large and both have it): such a copy merges and reports,
        but does not count more chunks."""
        return {k: v for k, v in self.__dict__.items() if k != "reference"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.reference = None  # type: ignore[assignment]

    def merge(self, other: WindowCounts) -> WindowCounts:
        """Add ``other``'s counts (the window's next part) to these; returns self. Unlisted
        names are taken in order up to :data:`MAX_UNLISTED` per feature, as chunks are: with
        no more distinct unlisted names than that, every count equals the whole window's."""
        self.n_rows += other.n_rows
        for col in self._num_missing:
            self._num_missing[col] += other._num_missing[col]
            self._bins[col] += other._bins[col]
        for col in self._counts:
            self._counts[col] += other._counts[col]
            self._cat_missing[col] += other._cat_missing[col]
            # the untracked part of other's "other" here; the tracked names add the rest
            self._other[col] += other._other[col] - sum(other._unlisted[col].values())
            self._add_categories(col, other._unlisted[col])
        return self

    def n_values(self, col: str) -> int:
        """Finite values of numeric feature ``col`` counted so far (needs ``bins``)."""
        return int(self._bins[col].sum())

    def categorical(self, col: str) -> CategoricalWindow:
        ranked = sorted(self._unlisted[col].items(), key=lambda kv: (-kv[1], kv[0]))
        return CategoricalWindow(
            counts=tuple(self._counts[col].tolist()),
            other_count=self._other[col],
            n_missing=self._cat_missing[col],
            unlisted=tuple(ranked[:SHOWN_UNLISTED]),
        )

    def n_missing(self, col: str) -> int:
        """Missing values of numeric feature ``col`` counted so far."""
        return self._num_missing[col]

    def result(self) -> CountStats:
        """The counts so far (numeric counts need ``bins``)."""
        return CountStats(
            n_rows=self.n_rows,
            numeric={
                c: NumericCounts(
                    self.n_values(c), self._num_missing[c], tuple(self._bins[c].tolist())
                )
                for c in self._num_missing
            },
            categorical={c: self.categorical(c) for c in self._counts},
        )


class CurrentAccumulator:
    """Accumulates the current window chunk by chunk; ``result()`` gives :class:`CurrentStats`.

    Memory: the window's finite numeric values are kept as float64 (8 bytes a value: 320 MB
    for 1M rows × 40 features), appended per chunk and sorted once in ``result()``, which is
    the per-check cost. float32 would halve that but rounds decimal values (19.99 becomes
    19.989999771) to the other side of equal reference values, which makes the KS statistic
    jump on discrete features; a sketch of the window would make KS approximate on both
    sides. Categorical features keep only counts. ``update`` may continue after ``result``.
    A check on the Dask engine keeps one feature's values at a time, on a worker
    (:mod:`retrainer.lifecycle.dask_drift`).

    >>> ref = ReferenceStats.from_frame(pd.DataFrame({"x": [1.0, 2.0]}), ["x"], [])
    >>> acc = CurrentAccumulator(ref)
    >>> acc.update(pd.DataFrame({"x": [3.0, np.nan]}))
    >>> acc.update(pd.DataFrame({"x": [1.0]}))
    >>> acc.result().numeric["x"]
    NumericWindow(values=array([1., 3.]), n_missing=1)
    """

    def __init__(self, reference: ReferenceStats) -> None:
        self.reference = reference
        self._counts = WindowCounts(reference, bins=False)
        self._chunks: dict[str, list[np.ndarray]] = {c: [] for c in reference.numeric}
        self._sorted: set[str] = set()

    @property
    def n_rows(self) -> int:
        return self._counts.n_rows

    def update(self, chunk: pd.DataFrame) -> None:
        """Add one chunk of the current window (a DataFrame holding every feature)."""
        for col, arr in self._counts.update(chunk).items():
            finite = np.isfinite(arr)
            # a copy either way: arr may share memory with the chunk
            self._chunks[col].append(arr.copy() if finite.all() else arr[finite])
            self._sorted.discard(col)

    def _values(self, col: str) -> np.ndarray:
        """The feature's values as one sorted array (sorted once, then kept)."""
        chunks = self._chunks[col]
        if col not in self._sorted and chunks:
            arr = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
            chunks.clear()  # free the chunks before sorting
            arr.sort()  # in place: arr was never handed out
            chunks.append(arr)
        self._sorted.add(col)
        view = (chunks[0] if chunks else np.empty(0)).view()
        view.flags.writeable = False
        return view

    def result(self) -> CurrentStats:
        """The window so far: sorted numeric values, categorical counts."""
        return CurrentStats(
            n_rows=self.n_rows,
            numeric={
                c: NumericWindow(self._values(c), self._counts.n_missing(c))
                for c in self.reference.numeric
            },
            categorical={c: self._counts.categorical(c) for c in self.reference.categorical},
        )

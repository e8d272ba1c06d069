"""Reference statistics: what drift checks compare against, computed once at training time.

The training frame is summarised per feature and stored with the model version as a
JSON-serialisable dict, so a drift check never reloads training data.

- Numeric: count, missing count, mean/std/min/max, a fine quantile sketch (up to
  ``sketch_size`` distinct values, "knots", with the exact number of training values ``<``
  and ``<=`` each, so the sketch's CDF is exact at its knots), and bin edges (deciles) with
  exact counts for PSI and Jensen–Shannon. Non-finite values (NaN, ±inf) count as missing.
  Three quarters of the knots are equally spaced in rank (so the CDF error stays below about
  ``4 / (3 * sketch_size)``), one quarter equally spaced in value between min and max (the
  tails, where most of the Wasserstein error would otherwise be).
- Categorical: counts of the ``top_k`` most frequent categories plus one "other" count, and
  the missing count. Categories are compared by their string form (they are JSON keys).

When a feature has at most ``sketch_size`` distinct values the sketch holds all of them and is
exact; otherwise ``ks_bound`` bounds the error of any CDF statistic computed on it.

>>> import numpy as np, pandas as pd
>>> df = pd.DataFrame({"age": [30.0, 40.0, np.nan, 50.0], "plan": ["a", "b", "a", None]})
>>> ref = ReferenceStats.from_frame(df, ["age"], ["plan"], model_version="1.0.0")
>>> ref.numeric["age"].count, ref.numeric["age"].missing_rate, ref.categorical["plan"].counts
(3, 0.25, (2, 1))
>>> ReferenceStats.from_dict(ref.to_dict()) == ref
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from retrainer.core.errors import InputError
from retrainer.core.levels import level

FORMAT = 1
DEFAULT_SKETCH_SIZE = 2000
DEFAULT_BINS = 10
DEFAULT_TOP_K = 100


def _none_or_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class NumericReference:
    """Summary of one numeric training column (see the module docstring)."""

    count: int
    n_missing: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    knots: tuple[float, ...]
    count_le: tuple[int, ...]
    count_lt: tuple[int, ...]
    bin_edges: tuple[float, ...]
    bin_counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.knots) == len(self.count_le) == len(self.count_lt):
            raise InputError(
                f"Numeric reference has {len(self.knots)} knots but {len(self.count_le)} "
                f"count_le and {len(self.count_lt)} count_lt values; expected equal lengths. "
                "Recompute the reference statistics from the training frame."
            )
        if self.count and len(self.bin_counts) != len(self.bin_edges) + 1:
            raise InputError(
                f"Numeric reference has {len(self.bin_edges)} bin edges and "
                f"{len(self.bin_counts)} bin counts; expected one count more than edges. "
                "Recompute the reference statistics from the training frame."
            )

    @classmethod
    def from_values(
        cls, values: np.ndarray, sketch_size: int = DEFAULT_SKETCH_SIZE, bins: int = DEFAULT_BINS
    ) -> NumericReference:
        """Summarise a 1-d array; non-finite values count as missing.

        >>> r = NumericReference.from_values(np.array([3.0, 1.0, 2.0, 2.0, np.inf]))
        >>> r.knots, r.count_le, r.count_lt, r.n_missing, r.ks_bound
        ((1.0, 2.0, 3.0), (1, 3, 4), (0, 1, 3), 1, 0.0)
        """
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        x = np.sort(values[finite])
        n = len(x)
        n_missing = len(values) - n
        if n == 0:
            return cls(0, n_missing, None, None, None, None, (), (), (), (), ())
        starts = np.flatnonzero(np.concatenate(([True], x[1:] != x[:-1])))
        if len(starts) <= sketch_size:  # every distinct value: the sketch is exact
            knots = x[starts]
            lt = starts
            le = np.concatenate((starts[1:], [n]))
        else:  # 3/4 of the knots equally spaced in rank, 1/4 in value (for the tails)
            by_value = sketch_size // 4
            ranks = np.round(np.linspace(0, n - 1, sketch_size - by_value)).astype(np.int64)
            with np.errstate(over="ignore", invalid="ignore"):  # a range beyond ±1.8e308
                grid = np.linspace(x[0], x[-1], by_value)
            near = np.minimum(np.searchsorted(x, grid, side="left"), n - 1)
            knots = np.unique(np.concatenate((x[ranks], x[near])))
            lt = np.searchsorted(x, knots, side="left")
            le = np.searchsorted(x, knots, side="right")
        probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        with np.errstate(over="ignore", invalid="ignore"):
            edges = np.quantile(x, probs)  # deciles; interpolation can overflow near ±1.8e308
            mean, std = float(x.mean()), float(x.std(ddof=1)) if n > 1 else math.nan
        edges = np.unique(
            np.where(np.isfinite(edges), edges, np.quantile(x, probs, method="lower"))
        )
        cuts = np.concatenate(([0], np.searchsorted(x, edges, side="left"), [n]))
        return cls(
            count=n,
            n_missing=int(n_missing),
            mean=mean if math.isfinite(mean) else None,  # None: overflowed (or one value)
            std=std if math.isfinite(std) else None,
            min=float(x[0]),
            max=float(x[-1]),
            knots=tuple(knots.tolist()),
            count_le=tuple(le.tolist()),
            count_lt=tuple(lt.tolist()),
            bin_edges=tuple(edges.tolist()),
            bin_counts=tuple(np.diff(cuts).tolist()),
        )

    @property
    def missing_rate(self) -> float:
        total = self.count + self.n_missing
        return self.n_missing / total if total else 0.0

    @property
    def exact(self) -> bool:
        """True when the sketch holds every distinct training value (its CDF is exact)."""
        return self.ks_bound == 0.0

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """The tuples as read-only numpy arrays, converted once."""
        out = {
            "knots": np.asarray(self.knots, dtype=np.float64),
            "count_le": np.asarray(self.count_le, dtype=np.int64),
            "count_lt": np.asarray(self.count_lt, dtype=np.int64),
            "bin_edges": np.asarray(self.bin_edges, dtype=np.float64),
            "bin_counts": np.asarray(self.bin_counts, dtype=np.int64),
        }
        for a in out.values():
            a.flags.writeable = False
        return out

    def _gaps(self) -> np.ndarray:
        """Training values strictly between consecutive knots."""
        return self.arrays["count_lt"][1:] - self.arrays["count_le"][:-1]

    @property
    def ks_bound(self) -> float:
        """Largest distance between the sketch's CDF and the training ECDF (0 when exact)."""
        if self.count == 0 or len(self.knots) < 2:
            return 0.0
        return float(self._gaps().max()) / self.count

    @property
    def wasserstein_bound(self) -> float:
        """Bound on the Wasserstein error of the sketch: ∫ |sketch CDF - training ECDF|."""
        if self.count == 0 or len(self.knots) < 2:
            return 0.0
        widths = np.diff(self.arrays["knots"])
        return float(np.sum(widths * self._gaps())) / self.count

    def cdf_segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The sketch's CDF as ``len(knots) + 1`` linear pieces: (knots, base, slope, origin).

        For ``s`` knots ``<= x`` the CDF is ``base[s] + slope[s] * (x - origin[s])``. At a knot
        it is exact (training values ``<=`` the knot); between knots it interpolates linearly
        from there to the count ``<`` the next knot, so it never leaves the true ECDF's range.
        """
        knots = self.arrays["knots"]
        n = float(self.count)
        le = self.arrays["count_le"] / n
        lt = self.arrays["count_lt"] / n
        widths = np.diff(knots)
        slope = np.zeros(len(knots) + 1)
        slope[1:-1] = (lt[1:] - le[:-1]) / widths
        base = np.concatenate(([0.0], le))
        origin = np.concatenate((knots[:1], knots))
        return knots, base, slope, origin

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The sketch's CDF at ``x``.

        >>> r = NumericReference.from_values(np.arange(10.0), sketch_size=5)
        >>> r.knots, r.cdf(np.array([-1.0, 0.0, 4.5, 9.0])).round(3).tolist()
        ((0.0, 3.0, 6.0, 9.0), [0.0, 0.1, 0.5, 1.0])
        """
        knots, base, slope, origin = self.cdf_segments()
        s = np.searchsorted(knots, x, side="right")
        return np.asarray(base[s] + slope[s] * (x - origin[s]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "n_missing": self.n_missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "knots": list(self.knots),
            "count_le": list(self.count_le),
            "count_lt": list(self.count_lt),
            "bin_edges": list(self.bin_edges),
            "bin_counts": list(self.bin_counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericReference:
        return cls(
            count=int(data["count"]),
            n_missing=int(data["n_missing"]),
            mean=_none_or_float(data["mean"]),
            std=_none_or_float(data["std"]),
            min=_none_or_float(data["min"]),
            max=_none_or_float(data["max"]),
            knots=tuple(map(float, data["knots"])),
            count_le=tuple(map(int, data["count_le"])),
            count_lt=tuple(map(int, data["count_lt"])),
            bin_edges=tuple(map(float, data["bin_edges"])),
            bin_counts=tuple(map(int, data["bin_counts"])),
        )


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Counts of each category by its string form, and the number of missing values.

    >>> category_counts(pd.Series(["a", "b", "a", None, 1]))
    ({'a': 2, 'b': 1, '1': 1}, 1)
    >>> category_counts(pd.Series([1, None, 2]))  # read as 1.0, 2.0: still levels 1 and 2
    ({'1': 1, '2': 1}, 1)
    """
    counts: dict[str, int] = {}
    vc = series.value_counts(dropna=True, sort=False)
    for key, c in zip(vc.index.tolist(), vc.to_numpy().tolist(), strict=True):
        if c:
            name = level(key)  # 1 and 1.0 (an integer column with gaps) are one level
            counts[name] = counts.get(name, 0) + int(c)
    return counts, int(series.isna().sum())


@dataclass(frozen=True)
class CategoricalReference:
    """Counts of the most frequent training categories, the rest lumped in ``other_count``."""

    count: int
    n_missing: int
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other_count: int
    n_other: int

    def __post_init__(self) -> None:
        if len(self.categories) != len(self.counts):
            raise InputError(
                f"Categorical reference has {len(self.categories)} categories but "
                f"{len(self.counts)} counts; expected one count per category. "
                "Recompute the reference statistics from the training frame."
            )

    @classmethod
    def from_series(cls, series: pd.Series, top_k: int = DEFAULT_TOP_K) -> CategoricalReference:
        """Summarise one column.

        >>> CategoricalReference.from_series(pd.Series(list("aabbbc")), top_k=2)
        CategoricalReference(count=6, n_missing=0, categories=('b', 'a'), counts=(3, 2), \
other_count=1, n_other=1)
        """
        counts, n_missing = category_counts(series)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top, rest = ranked[:top_k], ranked[top_k:]
        return cls(
            count=sum(counts.values()),
            n_missing=n_missing,
            categories=tuple(k for k, _ in top),
            counts=tuple(c for _, c in top),
            other_count=sum(c for _, c in rest),
            n_other=len(rest),
        )

    @property
    def missing_rate(self) -> float:
        total = self.count + self.n_missing
        return self.n_missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "n_missing": self.n_missing,
            "categories": list(self.categories),
            "counts": list(self.counts),
            "other_count": self.other_count,
            "n_other": self.n_other,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalReference:
        return cls(
            count=int(data["count"]),
            n_missing=int(data["n_missing"]),
            categories=tuple(str(v) for v in data["categories"]),
            counts=tuple(int(v) for v in data["counts"]),
            other_count=int(data["other_count"]),
            n_other=int(data["n_other"]),
        )


def _check_settings(sketch_size: int, bins: int, top_k: int) -> None:
    settings = (("sketch_size", sketch_size, 2), ("bins", bins, 2), ("top_k", top_k, 1))
    for name, value, low in settings:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(
                f"The {name!r} parameter of ReferenceStats.from_frame must be an int >= {low}. "
                f"Got {value!r} instead."
            )


def _check_columns(df: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> None:
    names = [*numeric, *categorical]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise InputError(
            f"Features {twice} are listed more than once (numeric: {list(numeric)}, "
            f"categorical: {list(categorical)}). Expected each feature once; remove the duplicates."
        )
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise InputError(
            f"The training frame has no column(s) {missing}. Columns present: "
            f"{[str(c) for c in df.columns]}. Fix the feature lists in the spec or the frame."
        )
    if len(df) == 0:
        raise InputError(
            "The training frame has no rows; reference statistics need at least one. "
            "Compute them from the frame the model was trained on."
        )


def numeric_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column ``column`` as float64 (missing as NaN), or an error naming the column."""
    series = frame[column]
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"Numeric feature {column!r} has dtype {series.dtype} with values that are not "
            f"numbers ({exc}). Expected numbers or missing values; list it as categorical or "
            "convert it.",
            column=column,
        ) from exc


@dataclass(frozen=True)
class ReferenceStats:
    """Reference statistics of every drift-checked feature of one model version."""

    n_rows: int
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    model_version: str | None = None
    sketch_size: int = DEFAULT_SKETCH_SIZE
    bins: int = DEFAULT_BINS
    top_k: int = DEFAULT_TOP_K

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        numeric: Sequence[str],
        categorical: Sequence[str],
        *,
        model_version: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        bins: int = DEFAULT_BINS,
        top_k: int = DEFAULT_TOP_K,
    ) -> ReferenceStats:
        """Summarise the training frame ``df`` (see the module docstring for an example)."""
        _check_settings(sketch_size, bins, top_k)
        _check_columns(df, numeric, categorical)
        return cls(
            n_rows=len(df),
            numeric={
                c: NumericReference.from_values(numeric_values(df, c), sketch_size, bins)
                for c in numeric
            },
            categorical={c: CategoricalReference.from_series(df[c], top_k) for c in categorical},
            model_version=model_version,
            sketch_size=sketch_size,
            bins=bins,
            top_k=top_k,
        )

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain lists, ints, floats, strings and None)."""
        return {
            "format": FORMAT,
            "model_version": self.model_version,
            "n_rows": self.n_rows,
            "sketch_size": self.sketch_size,
            "bins": self.bins,
            "top_k": self.top_k,
            "numeric": {k: v.to_dict() for k, v in self.numeric.items()},
            "categorical": {k: v.to_dict() for k, v in self.categorical.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceStats:
        """Inverse of :meth:`to_dict`; the round trip is exact."""
        fmt = data.get("format") if isinstance(data, Mapping) else None
        if fmt != FORMAT:
            raise InputError(
                f"Reference statistics have format {fmt!r}; this retrainer reads format {FORMAT}. "
                "Recompute them from the training frame (ReferenceStats.from_frame)."
            )
        try:
            return cls(
                n_rows=int(data["n_rows"]),
                numeric={k: NumericReference.from_dict(v) for k, v in data["numeric"].items()},
                categorical={
                    k: CategoricalReference.from_dict(v) for k, v in data["categorical"].items()
                },
                model_version=data["model_version"],
                sketch_size=int(data["sketch_size"]),
                bins=int(data["bins"]),
                top_k=int(data["top_k"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(
                f"Reference statistics are malformed: {type(exc).__name__}: {exc}. Expected the "
                "dict written by ReferenceStats.to_dict; recompute them from the training frame."
            ) from exc

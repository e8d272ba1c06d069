"""Data drift: the current window against the reference statistics of a model version.

A check has two steps. :class:`CurrentAccumulator` (:mod:`.window`) reads the current window
chunk by chunk (out of core) and :func:`drift_report` compares it with the
:class:`ReferenceStats` stored at training time; :func:`summarize` turns the per-feature report
into a verdict. A window read in partitions is compared by :func:`report_from_counts`, from
its merged counts and each numeric feature's :func:`numeric_distances`: the same statistics.

Per numeric feature: PSI and Jensen–Shannon distance (base 2, in [0, 1]) on the reference's
decile bins, the Kolmogorov–Smirnov statistic with its asymptotic two-sided p-value (scipy's
``ks_2samp(method="asymp")``), and the Wasserstein distance. KS and Wasserstein are computed
exactly against the reference sketch's CDF; ``ks_bound`` and ``wasserstein_bound`` bound
their distance from the exact two-sample values (both 0 when the sketch holds every distinct
training value). Per categorical feature: a chi-square two-sample contingency test (reference
counts vs current counts, scipy's ``chi2_contingency``), PSI and Jensen–Shannon.

Drift needs an effect and significance: PSI >= ``psi``, KS D >= ``ks`` or JS >=
``jensen_shannon``, *and* p < ``p_value`` (KS for numeric, chi-square for categorical). On
large windows a p-value alone flags differences too small to matter. Missing values (NaN,
None, ±inf) are removed before any statistic and their rate is reported; a jump in missing
rate, up or down (|Δ| >= ``ks`` or its PSI >= ``psi``, with a 2×2 chi-square p <
``p_value``), is a drift reason of its own. A feature with fewer than ``min_samples`` current
rows is reported as not enough data, never as drift.

>>> import numpy as np, pandas as pd
>>> from retrainer.core.spec_sections import Drift
>>> rng = np.random.default_rng(0)
>>> train = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(list("ab"), 5000)})
>>> ref = ReferenceStats.from_frame(train, ["x"], ["c"])
>>> acc = CurrentAccumulator(ref)
>>> for _ in range(4):
...     acc.update(pd.DataFrame({"x": rng.normal(1.0, size=500), "c": rng.choice(list("ab"), 500)}))
>>> report = drift_report(ref, acc.result(), Drift())
>>> [(f.feature, f.drift) for f in report]
[('x', True), ('c', False)]
>>> summarize(report, Drift()).share
0.5
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from retrainer.core.errors import InputError
from retrainer.core.spec_sections import Drift

from .reference import CategoricalReference, NumericReference, ReferenceStats
from .window import (
    MAX_UNLISTED,
    CategoricalWindow,
    CountStats,
    CurrentAccumulator,
    CurrentStats,
    NumericCounts,
    NumericWindow,
    WindowCounts,
    bin_counts,
)

__all__ = [  # the window's types are defined in .window and used from here too
    "MAX_UNLISTED",
    "CategoricalWindow",
    "CountStats",
    "CurrentAccumulator",
    "CurrentStats",
    "DriftSummary",
    "FeatureDrift",
    "NumericCounts",
    "NumericWindow",
    "WindowCounts",
    "drift_report",
    "numeric_distances",
    "report_from_counts",
    "summarize",
]

PSI_FLOOR = 1e-4  # proportions are floored here: an empty bin would make PSI infinite

Status = Literal["drift", "no_drift", "not_enough_data"]


# ---------------------------------------------------------------- statistics


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index between two count vectors (proportions floored at 1e-4).

    >>> round(psi(np.array([50, 50]), np.array([80, 20])), 4)
    0.4159
    """
    p = np.maximum(reference_counts / reference_counts.sum(), PSI_FLOOR)
    q = np.maximum(current_counts / current_counts.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two count vectors.

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    >>> jensen_shannon(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.sum(np.where(p > 0, p * np.log2(p / m), 0.0))
        kl_q = np.sum(np.where(q > 0, q * np.log2(q / m), 0.0))
    return math.sqrt(max(0.0, float(kl_p + kl_q) / 2))


def _segment_index(positions: np.ndarray, m: int) -> np.ndarray:
    """For sorted values y of length m: how many knots each y_i passes, given
    ``positions[j]`` = the first index i at which knot j is passed. O(m)."""
    sizes = np.diff(np.concatenate(([0], positions, [m])))
    return np.repeat(np.arange(len(positions) + 1), sizes)


def _check_sample(reference: NumericReference, values: np.ndarray, statistic: str) -> None:
    if reference.count == 0 or len(values) == 0:
        raise InputError(
            f"{statistic} needs values on both sides; got {reference.count} reference and "
            f"{len(values)} current values. Check the feature has non-missing values."
        )
    if not np.all(values[1:] >= values[:-1]):  # also catches NaN
        raise InputError(
            f"{statistic} needs the current values sorted and finite. Drop missing values "
            "and sort them (np.sort) first."
        )


def ks_against_sketch(reference: NumericReference, values: np.ndarray) -> float:
    """KS statistic sup |F - G| between the reference sketch's CDF F and the ECDF G of the
    sorted ``values``; within ``reference.ks_bound`` of the exact two-sample statistic.

    >>> r = NumericReference.from_values(np.array([1.0, 2.0, 3.0, 4.0]))
    >>> ks_against_sketch(r, np.array([3.0, 4.0, 5.0, 6.0]))
    0.5
    """
    _check_sample(reference, values, "The KS statistic")
    return _ks(reference, values)


def _ks(reference: NumericReference, values: np.ndarray) -> float:
    knots, base, slope, origin = reference.cdf_segments()
    m = len(values)
    n = reference.count
    below = np.searchsorted(values, knots, side="left")  # values < knot
    at_or_below = np.searchsorted(values, knots, side="right")  # values <= knot
    i = np.arange(m, dtype=np.float64)
    # F at each value (right-continuous) and just left of it (differs only at a knot)
    s = _segment_index(below, m)
    d_plus = np.max((i + 1) / m - (base[s] + slope[s] * (values - origin[s])))
    s = _segment_index(at_or_below, m)
    d_minus = np.max(base[s] + slope[s] * (values - origin[s]) - i / m)
    le = reference.arrays["count_le"] / n
    lt = reference.arrays["count_lt"] / n
    d_knots = max(np.max(np.abs(le - at_or_below / m)), np.max(np.abs(lt - below / m)))
    return float(min(1.0, max(0.0, d_plus, d_minus, d_knots)))


def wasserstein_against_sketch(reference: NumericReference, values: np.ndarray) -> float:
    """Wasserstein-1 distance ∫ |F - G| dx between the reference sketch's CDF and the ECDF of
    the sorted ``values``; within ``reference.wasserstein_bound`` of the exact value.

    >>> r = NumericReference.from_values(np.array([0.0, 1.0]))
    >>> wasserstein_against_sketch(r, np.array([2.0, 3.0]))
    2.0
    """
    _check_sample(reference, values, "The Wasserstein distance")
    return _wasserstein(reference, values)


def _wasserstein(reference: NumericReference, values: np.ndarray) -> float:
    knots, base, slope, origin = reference.cdf_segments()
    m, k = len(values), len(knots)
    pos = np.searchsorted(values, knots, side="left")
    x = np.insert(values, pos, knots)  # merged, knots before equal values
    is_knot = np.zeros(m + k, dtype=bool)
    is_knot[pos + np.arange(k)] = True
    g = np.cumsum(~is_knot)[:-1] / m  # G on [x_t, x_t+1): values <= x_t
    s = np.cumsum(is_knot)[:-1]  # CDF piece on [x_t, x_t+1): knots <= x_t
    width = np.diff(x)
    d0 = base[s] + slope[s] * (x[:-1] - origin[s]) - g
    d1 = base[s] + slope[s] * (x[1:] - origin[s]) - g
    a0, a1 = np.abs(d0), np.abs(d1)
    total = a0 + a1
    same_sign = d0 * d1 >= 0
    crossing = (d0 * d0 + d1 * d1) / np.where(same_sign, 1.0, total)
    area = np.where(same_sign, total, crossing) * width / 2
    return float(np.sum(area))


def ks_p_value(d: float, n: int, m: int) -> float:
    """Two-sided p-value of a two-sample KS statistic ``d`` for sample sizes ``n``, ``m``.

    This is scipy's ``ks_2samp(method="asymp")``: ``kstwo.sf(d, round(n*m/(n+m)))``. That
    costs up to a second for large samples when p is small, so past an effective size of
    10,000 and below p = 0.05 we use Kolmogorov's limit distribution ``kstwobign`` instead
    (relative difference < 1.2% around p = 0.01, less as the samples grow).

    >>> round(ks_p_value(0.1, 1000, 1000), 4)
    0.0001
    """
    en = round(n * m / (n + m))
    from scipy import stats  # on use: a server that never checks drift starts without it

    limit = float(stats.kstwobign.sf(math.sqrt(en) * d))
    if en > 10_000 and limit < 0.05:
        return limit
    return float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))


def _chi2(table: np.ndarray) -> tuple[float, float]:
    """Chi-square contingency test on a 2×k table, dropping empty columns."""
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    from scipy import stats

    res = stats.chi2_contingency(table)
    return float(res.statistic), float(res.pvalue)


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature. Statistics that do not apply, or lacked data, are None."""

    feature: str
    kind: Literal["numeric", "categorical"]
    drift: bool
    status: Status
    n_reference: int
    n_current: int
    missing_reference: float
    missing_current: float
    psi: float | None = None
    ks: float | None = None
    ks_p_value: float | None = None
    ks_bound: float | None = None
    chi2: float | None = None
    chi2_p_value: float | None = None
    jensen_shannon: float | None = None
    wasserstein: float | None = None
    wasserstein_bound: float | None = None
    unseen: tuple[str, ...] = ()
    unseen_share: float | None = None
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _missing_reason(
    ref_missing: int, ref_total: int, cur_missing: int, cur_total: int, t: Drift
) -> str | None:
    """Why the missing rate drifted (|Δ| >= ks or PSI >= psi, and p < p_value), or None."""
    if ref_total == 0 or cur_total == 0 or ref_missing * cur_total == cur_missing * ref_total:
        return None
    r, c = ref_missing / ref_total, cur_missing / cur_total
    table = np.array(
        [[ref_missing, ref_total - ref_missing], [cur_missing, cur_total - cur_missing]]
    )
    if abs(c - r) < t.ks and psi(table[0], table[1]) < t.psi:
        return None
    _, p = _chi2(table)
    if p >= t.p_value:
        return None
    verb = "rose" if c > r else "fell"
    return f"missing rate {verb} from {r:.1%} to {c:.1%} (p = {p:.2g} < {t.p_value})"


def _decide(
    effects: dict[str, tuple[float, float]], p: float, test: str, t: Drift
) -> tuple[bool, list[str]]:
    hit = [f"{name} {v:.3g} >= {limit}" for name, (v, limit) in effects.items() if v >= limit]
    if hit and p < t.p_value:
        return True, [*hit, f"{test} p = {p:.2g} < {t.p_value}"]
    if hit:
        return False, [f"{', '.join(hit)} but not significant ({test} p = {p:.2g})"]
    if p < t.p_value:
        sizes = ", ".join(f"{name} {v:.3g}" for name, (v, _) in effects.items())
        return False, [f"significant ({test} p = {p:.2g}) but effects are small ({sizes})"]
    return False, []


def numeric_distances(reference: NumericReference, values: np.ndarray) -> tuple[float, float]:
    """The KS statistic and the Wasserstein distance of the sorted, finite ``values`` against
    the reference sketch (:func:`ks_against_sketch`, :func:`wasserstein_against_sketch`):
    what a numeric feature's drift needs of its values besides the bin counts.

    >>> r = NumericReference.from_values(np.array([0.0, 1.0]))
    >>> numeric_distances(r, np.array([2.0, 3.0]))
    (1.0, 2.0)
    """
    return _ks(reference, values), _wasserstein(reference, values)


def _numeric(
    name: str,
    ref: NumericReference,
    win: NumericCounts,
    distances: Callable[[], tuple[float, float]],
    t: Drift,
) -> FeatureDrift:
    """The drift of one numeric feature from its window's counts; ``distances`` gives its
    KS statistic and Wasserstein distance, asked for only when there is enough data."""
    m, n = win.n_values, ref.count
    common: dict[str, Any] = dict(
        feature=name,
        kind="numeric",
        n_reference=n,
        n_current=m,
        missing_reference=ref.missing_rate,
        missing_current=win.n_missing / (m + win.n_missing) if m + win.n_missing else 0.0,
    )
    early = _gate(ref.count, ref.n_missing, m, win.n_missing, t)
    if early is not None:
        return FeatureDrift(**common, **early)
    missing = _missing_reason(ref.n_missing, n + ref.n_missing, win.n_missing, m + win.n_missing, t)
    ref_bins, cur_bins = ref.arrays["bin_counts"], np.asarray(win.bins, dtype=np.int64)
    ks, wasserstein = distances()
    p = ks_p_value(ks, n, m)
    values_psi, js = psi(ref_bins, cur_bins), jensen_shannon(ref_bins, cur_bins)
    effects = {"PSI": (values_psi, t.psi), "KS D": (ks, t.ks), "JS": (js, t.jensen_shannon)}
    drift, reasons = _decide(effects, p, "KS", t)
    if missing:
        drift, reasons = True, [missing, *reasons]
    return FeatureDrift(
        **common,
        drift=drift,
        status="drift" if drift else "no_drift",
        psi=values_psi,
        ks=ks,
        ks_p_value=p,
        ks_bound=ref.ks_bound,
        jensen_shannon=js,
        wasserstein=wasserstein,
        wasserstein_bound=ref.wasserstein_bound,
        reasons=tuple(reasons),
    )


def _gate(
    n_ref: int, ref_missing: int, m: int, cur_missing: int, t: Drift
) -> dict[str, Any] | None:
    """The verdict when there is not enough data to compare distributions, else None."""
    if m + cur_missing < t.min_samples:
        reason = f"only {m + cur_missing} current rows; need at least {t.min_samples}"
        return dict(drift=False, status="not_enough_data", reasons=(reason,))
    if n_ref >= t.min_samples and m >= t.min_samples:
        return None
    missing = _missing_reason(ref_missing, n_ref + ref_missing, cur_missing, m + cur_missing, t)
    side = "reference" if n_ref < t.min_samples else "current"
    count = n_ref if side == "reference" else m
    reasons = [f"only {count} non-missing {side} values; need {t.min_samples} to compare"]
    if missing:
        return dict(drift=True, status="drift", reasons=(missing, *reasons))
    return dict(drift=False, status="not_enough_data", reasons=tuple(reasons))


def _categorical(
    name: str, ref: CategoricalReference, win: CategoricalWindow, t: Drift
) -> FeatureDrift:
    ref_counts = np.array([*ref.counts, ref.other_count], dtype=np.int64)
    cur_counts = np.array([*win.counts, win.other_count], dtype=np.int64)
    m = int(cur_counts.sum())
    common: dict[str, Any] = dict(
        feature=name,
        kind="categorical",
        n_reference=ref.count,
        n_current=m,
        missing_reference=ref.missing_rate,
        missing_current=win.n_missing / (m + win.n_missing) if m + win.n_missing else 0.0,
        unseen=tuple(k for k, _ in win.unlisted) if ref.n_other == 0 else (),
        unseen_share=(win.other_count / m if m else 0.0) if ref.n_other == 0 else None,
    )
    early = _gate(ref.count, ref.n_missing, m, win.n_missing, t)
    if early is not None:
        return FeatureDrift(**common, **early)
    missing = _missing_reason(
        ref.n_missing, ref.count + ref.n_missing, win.n_missing, m + win.n_missing, t
    )
    keep = (ref_counts + cur_counts) > 0
    ref_counts, cur_counts = ref_counts[keep], cur_counts[keep]
    chi2, p = _chi2(np.vstack([ref_counts, cur_counts]))
    value_psi, js = psi(ref_counts, cur_counts), jensen_shannon(ref_counts, cur_counts)
    drift, reasons = _decide(
        {"PSI": (value_psi, t.psi), "JS": (js, t.jensen_shannon)}, p, "chi2", t
    )
    if drift and common["unseen"]:
        shown = ", ".join(repr(k) for k in common["unseen"][:5])
        reasons.append(f"unseen categories ({common['unseen_share']:.1%} of rows): {shown}")
    if missing:
        drift, reasons = True, [missing, *reasons]
    return FeatureDrift(
        **common,
        drift=drift,
        status="drift" if drift else "no_drift",
        psi=value_psi,
        chi2=chi2,
        chi2_p_value=p,
        jensen_shannon=js,
        reasons=tuple(reasons),
    )


def drift_report(
    reference: ReferenceStats, current: CurrentStats, thresholds: Drift
) -> list[FeatureDrift]:
    """One :class:`FeatureDrift` per feature: numeric first, in the reference's order.

    See the module docstring for an example.
    """
    _check_features(reference, current.numeric, current.categorical)
    out = []
    for c, r in reference.numeric.items():
        win = current.numeric[c]
        bins = bin_counts(r.arrays["bin_edges"], win.values)  # values: sorted and finite
        counts = NumericCounts(len(win.values), win.n_missing, tuple(bins.tolist()))
        out.append(
            _numeric(c, r, counts, functools.partial(numeric_distances, r, win.values), thresholds)
        )
    return out + [
        _categorical(c, r, current.categorical[c], thresholds)
        for c, r in reference.categorical.items()
    ]


def report_from_counts(
    reference: ReferenceStats,
    counts: CountStats,
    distances: Mapping[str, tuple[float, float]],
    thresholds: Drift,
) -> list[FeatureDrift]:
    """:func:`drift_report` of a window given as its counts (:class:`WindowCounts`, merged
    over partitions) and each numeric feature's :func:`numeric_distances` computed where
    its values are (a feature without enough data may lack them).

    >>> import pandas as pd
    >>> ref = ReferenceStats.from_frame(pd.DataFrame({"x": np.arange(100.0)}), ["x"], [])
    >>> counts = WindowCounts(ref)
    >>> values = counts.update(pd.DataFrame({"x": np.arange(100.0) + 50}))["x"]
    >>> found = report_from_counts(ref, counts.result(), {"x": numeric_distances(
    ...     ref.numeric["x"], np.sort(values))}, Drift())
    >>> acc = CurrentAccumulator(ref)
    >>> acc.update(pd.DataFrame({"x": np.arange(100.0) + 50}))
    >>> found == drift_report(ref, acc.result(), Drift())
    True
    """
    _check_features(reference, counts.numeric, counts.categorical)

    def given(c: str) -> Callable[[], tuple[float, float]]:
        def get() -> tuple[float, float]:
            if c not in distances:
                raise InputError(
                    f"No KS and Wasserstein values were given for numeric feature {c!r}, "
                    "which has enough data to compare. Compute numeric_distances for it."
                )
            return distances[c]

        return get

    out = [
        _numeric(c, r, counts.numeric[c], given(c), thresholds)
        for c, r in reference.numeric.items()
    ]
    return out + [
        _categorical(c, r, counts.categorical[c], thresholds)
        for c, r in reference.categorical.items()
    ]


def _check_features(
    reference: ReferenceStats, numeric: Mapping[str, Any], categorical: Mapping[str, Any]
) -> None:
    absent = [c for c in reference.numeric if c not in numeric] + [
        c for c in reference.categorical if c not in categorical
    ]
    if absent:
        raise InputError(
            f"The current statistics lack feature(s) {absent} of model version "
            f"{reference.model_version or '(unversioned)'}. Accumulate the window with "
            "CurrentAccumulator(reference) for the same reference."
        )


@dataclass(frozen=True)
class DriftSummary:
    """The verdict over all features; ``share`` counts only features with enough data."""

    n_features: int
    n_checked: int
    n_drifted: int
    share: float
    drift: bool
    critical: bool
    drifted: tuple[str, ...]
    not_enough_data: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def summarize(report: list[FeatureDrift], thresholds: Drift) -> DriftSummary:
    """Share of drifted features; ``drift`` at ``share`` and ``critical`` at ``critical_share``.

    >>> f = FeatureDrift("x", "numeric", True, "drift", 500, 500, 0.0, 0.0)
    >>> s = summarize([f, FeatureDrift("y", "numeric", False, "no_drift", 500, 500, 0.0, 0.0)],
    ...               Drift())
    >>> s.share, s.drift, s.critical, s.message
    (0.5, True, False, '1 of 2 features drifted (50%): x. Drift (share >= 30%).')
    """
    checked = [f for f in report if f.status != "not_enough_data"]
    drifted = tuple(f.feature for f in checked if f.drift)
    share = len(drifted) / len(checked) if checked else 0.0
    drift = bool(checked) and share >= thresholds.share
    critical = bool(checked) and share >= thresholds.critical_share
    message = f"{len(drifted)} of {len(checked)} features drifted ({share:.0%})"
    message += f": {', '.join(drifted)}." if drifted else "."
    if critical:
        message += f" Critical drift (share >= {thresholds.critical_share:.0%})."
    elif drift:
        message += f" Drift (share >= {thresholds.share:.0%})."
    skipped = tuple(f.feature for f in report if f.status == "not_enough_data")
    if skipped:
        message += f" Not enough data: {', '.join(skipped)}."
    return DriftSummary(
        n_features=len(report),
        n_checked=len(checked),
        n_drifted=len(drifted),
        share=share,
        drift=drift,
        critical=critical,
        drifted=drifted,
        not_enough_data=skipped,
        message=message,
    )

"""What the maintenance policy looks at: one frozen snapshot of a model's situation.

The caller (``lifecycle``) gathers these numbers from the store and the monitors; the policy
itself never reads anything. ``None`` means "not measured", and a check without its
measurement simply does not fire.

>>> from datetime import UTC, datetime
>>> live = LivePerformance(metric="accuracy", live=0.712, baseline=0.871, n_samples=500)
>>> round(live.degradation, 3)
0.183
>>> state = MaintenanceState(
...     model="churn", now=datetime(2025, 1, 1, tzinfo=UTC), champion="1.2.0",
...     performance=live)
>>> state.capabilities.warm_start, state.quality_ok
(True, None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from ..core.errors import InputError
from ..core.metrics import METRICS, Metric


def _metric(name: str, owner: str) -> Metric:
    if name not in METRICS:
        raise InputError(
            f"The metric {name!r} of {owner} is unknown. Expected one of "
            f"{', '.join(sorted(METRICS))}; use the spec's metric name."
        )
    return METRICS[name]


def _at_least(value: float, low: float, name: str, owner: str) -> None:
    if value < low:
        raise InputError(
            f"{owner}.{name} must be at least {low}. Got {value!r} instead; "
            "count or measure it again."
        )


def _fraction(value: float | None, name: str, owner: str) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InputError(f"{owner}.{name} must be a fraction in [0, 1]. Got {value!r} instead.")


@dataclass(frozen=True)
class Capabilities:
    """What the champion's model family can do besides training from scratch."""

    warm_start: bool = True
    incremental: bool = False


@dataclass(frozen=True)
class LivePerformance:
    """The champion's primary metric on live labelled rows against its holdout baseline."""

    metric: str
    live: float
    baseline: float
    n_samples: int
    since: datetime | None = None  # the start of the window the live metric covers
    # the version whose holdout measured the baseline when the champion kept another's
    # (details["kept_baseline"]); None: its own
    baseline_from: str | None = None
    # the previous actual's metric on the live rows and on the baseline's holdout
    # (policy.scale_baseline_by_naive); None: not scaled
    naive: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        _metric(self.metric, "LivePerformance")
        _at_least(self.n_samples, 0, "n_samples", "LivePerformance")

    @property
    def harder(self) -> float:
        """How much harder the live rows are than the holdout's for the previous actual: its
        live error over its holdout error, at least 1 (1: not scaled; an error metric only).

        >>> LivePerformance("mae", 0.30, 0.22, 112, naive=(0.33, 0.26)).harder
        1.2692307692307692
        >>> LivePerformance("mae", 0.30, 0.22, 112, naive=(0.20, 0.26)).harder  # easier: 1
        1.0
        """
        if self.naive is None or METRICS[self.metric].bigger_is_better:
            return 1.0
        live, held = self.naive
        if not (math.isfinite(live) and math.isfinite(held)) or held <= 0:
            return 1.0
        return max(1.0, live / held)

    @property
    def bar(self) -> float:
        """The baseline the degradation is measured against: scaled by :attr:`harder`.

        >>> round(LivePerformance("mae", 0.30, 0.22, 112, naive=(0.33, 0.26)).bar, 4)
        0.2792
        """
        return self.baseline * self.harder

    @property
    def bar_note(self) -> str:
        """How :attr:`bar` was scaled, for a sentence after it (empty when it was not).

        >>> LivePerformance("mae", 0.30, 0.22, 112, naive=(0.33, 0.26)).bar_note
        " (0.22 x 1.27: the previous actual's live mae 0.33 against 0.26 on the holdout)"
        """
        if self.harder <= 1.0 or self.naive is None:
            return ""
        live, held = self.naive
        return (
            f" ({self.baseline:.4g} x {self.harder:.3g}: the previous actual's live "
            f"{self.metric} {live:.4g} against {held:.4g} on the holdout)"
        )

    @property
    def degradation(self) -> float:
        """Relative degradation (0.2 = 20% worse than :attr:`bar`); NaN when undefined."""
        return METRICS[self.metric].degradation(self.live, self.bar)

    @property
    def points(self) -> float:
        """Absolute degradation in the metric's own units (0.05 = 5 accuracy points worse);
        NaN when undefined.

        >>> round(LivePerformance("accuracy", 0.80, 0.86, 500).points, 3)
        0.06
        >>> round(LivePerformance("mae", 2.5, 2.0, 500).points, 3)
        0.5
        """
        if not (math.isfinite(self.live) and math.isfinite(self.bar)):
            return math.nan
        return -METRICS[self.metric].improvement(self.live, self.bar)


@dataclass(frozen=True)
class DataDrift:
    """Data drift summary from the drift monitor (flags computed with the spec's shares).

    Field names follow ``retrainer.monitoring.drift.DriftSummary``: ``drifted`` names the
    drifted features.
    """

    share: float
    drift: bool
    critical: bool = False
    drifted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _fraction(self.share, "share", "DataDrift")


@dataclass(frozen=True)
class LiveRegression:
    """A newly deployed champion's live metric against the previous champion's live metric."""

    metric: str
    version: str
    previous_version: str
    live: float
    previous: float
    n_samples: int

    def __post_init__(self) -> None:
        _metric(self.metric, "LiveRegression")
        _at_least(self.n_samples, 0, "n_samples", "LiveRegression")

    @property
    def drop(self) -> float:
        """Relative drop of the new champion against the previous one (0.05 = 5% worse)."""
        return METRICS[self.metric].degradation(self.live, self.previous)

    @property
    def points(self) -> float:
        """Absolute drop, in the metric's units (0.05 = 5 points worse), by its direction."""
        return -METRICS[self.metric].improvement(self.live, self.previous)


@dataclass(frozen=True)
class NaiveComparison:
    """The champion's live primary metric over the monitor window next to the naive
    baselines' on the same labelled actuals (``baselines``: a description such as "the
    previous actual" -> its live value).

    >>> c = NaiveComparison("mae", "30d", 2.1, {"the previous actual": 1.4, "the mean": 3.0},
    ...                     500, window_days=30)
    >>> c.best
    ('the previous actual', 1.4)

    ``p_values``: per baseline, the p-value of the live test that the champion's advantage
    over it is ``policy.naive_margin`` (:func:`retrainer.evaluation.arms.compare_arms`; None
    where the metric has no test from aggregates). A baseline beats the champion when that
    test says the advantage is below the margin at ``significance``; without a test, when
    the point estimates say so.

    >>> c.not_better(0.0)
    ('the previous actual', 1.4)
    >>> NaiveComparison("accuracy", "30d", 0.875, {"the majority class": 0.875}, 112,
    ...                 p_values={"the majority class": 1.0}).not_better(0.0) is None
    True
    """

    metric: str
    window: str
    live: float
    baselines: dict[str, float]
    n_samples: int
    champion_age_days: float | None = None
    window_days: float = 7.0
    p_values: dict[str, float | None] = field(default_factory=dict)
    significance: float = 0.05

    def __post_init__(self) -> None:
        _metric(self.metric, "NaiveComparison")
        _at_least(self.n_samples, 0, "n_samples", "NaiveComparison")

    @property
    def best(self) -> tuple[str, float] | None:
        """The best baseline by the metric's direction (None without any)."""
        m = METRICS[self.metric]
        out: tuple[str, float] | None = None
        for name, value in self.baselines.items():
            if math.isfinite(value) and (out is None or m.better(value, out[1])):
                out = (name, value)
        return out

    def not_better(self, margin: float) -> tuple[str, float] | None:
        """The best baseline the champion is not better than by more than ``margin`` (in the
        metric's units), significantly where a test exists; None when there is none."""
        m = METRICS[self.metric]
        out: tuple[str, float] | None = None
        for name, value in self.baselines.items():
            if not math.isfinite(value) or m.improvement(self.live, value) > margin:
                continue
            p = self.p_values.get(name)
            if p is not None and not p < self.significance:
                continue  # a gap within the noise of the window's actuals
            if out is None or m.better(value, out[1]):
                out = (name, value)
        return out


@dataclass(frozen=True)
class MaintenanceState:
    """Everything :func:`retrainer.policy.decide.decide` needs, measured at ``now``.

    ``days_since_update`` counts any training attempt, deployed or not, so a challenger that
    lost its gate does not make the model retrain again on every check.
    """

    model: str
    now: datetime
    champion: str | None
    capabilities: Capabilities = field(default_factory=Capabilities)
    days_since_full_retrain: float | None = None
    fine_tunes_since_full_retrain: int = 0
    days_since_update: float | None = None
    performance: LivePerformance | None = None
    drift: DataDrift | None = None
    concept_drift: bool = False
    mean_confidence: float | None = None
    new_rows_since_update: int = 0
    quality_ok: bool | None = None  # None: the training window's quality was not checked
    quality_problems: tuple[str, ...] = ()
    regression: LiveRegression | None = None
    # A fine-tune is judged by the gate on its validation slice of the rows newer than the
    # champion's window; below this many such rows its verdict can only be "insufficient".
    rows_since_champion: int = 0
    fine_tune_rows_needed: int = 0
    # the gate's fewest rows (gate.min_rows, or scaled to a small window, then said in the note)
    gate_min_rows: int | None = None
    gate_min_rows_note: str | None = None
    champion_rows: int = 0  # the rows the champion was trained on
    # fine_tune.min_rows: below this many new rows there is nothing to fine-tune on at all
    fine_tune_min_rows: int = 0
    # the champion's live metrics over the same labelled rows as ``performance`` (for floors)
    live_metrics: dict[str, float] = field(default_factory=dict)
    # features of the spec the champion was not trained on (the team added a column)
    new_features: tuple[str, ...] = ()
    # the champion against the naive baselines over the monitor window (None: not measured)
    naive: NaiveComparison | None = None

    def __post_init__(self) -> None:
        owner = "MaintenanceState"
        _at_least(self.fine_tunes_since_full_retrain, 0, "fine_tunes_since_full_retrain", owner)
        _at_least(self.new_rows_since_update, 0, "new_rows_since_update", owner)
        for name in ("days_since_full_retrain", "days_since_update"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(
                    f"{owner}.{name} must be a finite number of days >= 0 or None when "
                    f"unknown. Got {value!r} instead."
                )
        _fraction(self.mean_confidence, "mean_confidence", owner)

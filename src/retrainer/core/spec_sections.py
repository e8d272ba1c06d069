"""The sections of a model's spec. Every field has a documented default.

Each section is a strict pydantic model (unknown keys are errors). Thresholds that must be
ordered are checked here, at load time, so a contradictory policy never reaches the loop.
"""

from __future__ import annotations

import difflib
import math
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .cron import cron_trigger, zone
from .durations import MAX_DAYS, MAX_SECONDS, parse_duration
from .errors import InputError
from .family_params import check_code_path
from .metrics import METRICS

MAX_INT = 2**53  # the largest whole number a setting takes (exact as a float, fits SQL)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _not_huge(cls, value: object) -> object:
        """No whole number beyond :data:`MAX_INT` (a count that would overflow a database
        integer or a date later); the settings with a tighter limit declare it."""
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise ValueError(f"{value} is too large: at most {MAX_INT:,}")
        return value


def _duration(value: str) -> str:
    try:
        parse_duration(value, what="duration")
    except InputError as exc:  # a ValueError, so the message names the setting and the file
        raise ValueError(exc.message) from None
    return value


class Features(Section):
    numeric: list[str] = Field(default_factory=list, description="Numeric feature columns.")
    categorical: list[str] = Field(default_factory=list, description="Categorical columns.")
    transform: str | None = Field(
        None,
        description=(
            "A feature step, `'mypkg.features:add_ratios'`: a function DataFrame -> DataFrame "
            "(same rows) applied to these columns before the model in training, batch "
            "predict and serving; recorded with the version (path and source SHA-256). "
            "`family: sklearn` only (see docs/byo.md)."
        ),
    )

    @field_validator("transform")
    @classmethod
    def _transform(cls, v: str | None) -> str | None:
        return None if v is None else check_code_path(v, "transform")

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def _fraction_or_days(value: str, what: str) -> None:
    """``"1/4"`` (a fraction in (0, 1]) or a duration such as ``"730d"``."""
    if "/" in value:
        num, _, den = value.partition("/")
        if num.isdigit() and den.isdigit() and 0 < int(num) <= int(den):
            return
        raise ValueError(f"{what} {value!r} is not a fraction in (0, 1] such as '1/2'")
    _duration(value)


class Choice(Section):
    """How a full retrain chooses its training window and recency weighting: each candidate
    is fitted on the rows before the gate's holdout and scored on the holdout (the same
    temporal validation the gate uses); the best on the primary metric trains the version.
    Windows are tried first (unweighted), then the half-lives on the best window."""

    enabled: bool = Field(
        True, description="Choose on full retrains; false: the whole window, unweighted."
    )
    every: int = Field(
        4,
        ge=1,
        description=(
            "Choose anew on every Nth full retrain, or sooner when a change (concept drift, a "
            "critical degradation) was detected since the last choice; the retrains between "
            "reuse the last choice's window and weighting (one fit instead of one per "
            "candidate) unless it scores worse on the new holdout than where it was chosen, "
            "beyond chance (then chosen anew, and said so). 1: choose on every full retrain."
        ),
    )
    every_max: int = Field(
        16,
        ge=1,
        description=(
            "The longest wait between choices, in full retrains: each choice in a row that "
            "chose the window and weighting of the choice before it doubles 'every', up to "
            "this; a choice that differs starts over at 'every'. Set it to 'every' for a "
            "fixed wait."
        ),
    )
    windows: list[str] = Field(
        default_factory=lambda: ["all", "1/4", "since_change"],
        description=(
            "Window candidates: 'all' (every row of training.window_days), a fraction of the "
            "window's span ('1/2': its newer half), a duration ('730d'), or 'since_change' "
            "(the rows since the live window began in which the monitor last saw a concept "
            "drift or a critical degradation). A candidate with "
            "fewer than quality.min_rows rows is skipped and said so."
        ),
    )
    half_lives: list[str] = Field(
        default_factory=lambda: ["none", "1/4"],
        description=(
            "Recency weighting candidates: 'none', or an exponential decay whose half-life is "
            "a fraction of the chosen window's span ('1/4') or a duration ('180d')."
        ),
    )
    leaves: list[Literal["constant", "linear"]] | None = Field(
        None,
        description=(
            "Leaf model candidates: the windows and half-lives are tried with the first; "
            "the others after them, on the chosen window and weighting, the champion's "
            "first as the incumbent (kept unless beaten beyond chance): 'constant' (the "
            "family's trees as they are) or 'linear' (a linear "
            "model of the numeric features in each leaf, LightGBM's linear_tree; a family "
            "without them skips the candidate and says so). Unset: [constant, linear] for "
            "regression, [constant] for classification and for a model served by "
            "serving.backend: onnx (linear leaves cannot be compiled)."
        ),
    )

    previous_actual: bool = Field(
        True,
        description=(
            "After the leaf models, try the previous actual (the newest actual before each "
            "row, the naive:last baseline; a classification model's label as a number, "
            "skipped and said so where the labels are not numbers) as one more input, on the "
            "chosen window, weighting and leaves; chosen only when better on the holdout "
            "beyond chance (kept, once learnt, unless beaten beyond chance). Served from the "
            "store: clients never send it. Ignored for rows read from data.source parquet or "
            "sql."
        ),
    )

    time_features: bool = Field(
        True,
        description=(
            "After the previous actual, try the time features as more inputs: the previous "
            "row's value of each numeric feature and the day of the year (sine and cosine of "
            "the row's time), on the chosen window, weighting, leaves and previous actual; "
            "chosen only when better on the holdout beyond chance (kept, once learnt, unless "
            "beaten beyond chance). Served from the store and the row's time: clients never "
            "send them. Ignored for rows read from data.source parquet or sql."
        ),
    )

    families: list[str] | None = Field(
        None,
        description=(
            "Other model families a full retrain tries: each family on the first window "
            "candidate, the champion's first (else the spec's), another displacing it only "
            "when better on the holdout beyond chance; the windows, weightings, leaf models "
            "and time inputs are then tried with the family chosen, and the families that "
            "lost once more on the rows and weights chosen when those moved off the first "
            "window. A reused choice keeps the champion's family. Unset: [linear] when the "
            "spec leaves `family` unset, [] when it names one (a family asked for by name is "
            "the one trained). 'linear' (logistic regression or ridge on standardised "
            "columns) costs milliseconds and wins where the target is near linear in the "
            "features. A family that cannot be imported, or cannot be served by "
            "serving.backend: onnx, is skipped and said so; not tried by the Dask engine or "
            "with a features.transform (the sklearn family's). []: the spec's family only."
        ),
    )

    blend: bool = Field(
        False,
        description=(
            "Last, try the mean of two families' predictions (a classifier's class "
            "probabilities): the family chosen and the best of the other families tried, "
            "the other fitted on the chosen window, weighting and inputs; chosen, as an "
            "`ensemble` version, only when better on the holdout beyond chance (a champion's "
            "blend is the incumbent: kept unless one family alone is better beyond chance). "
            "One more fit of the other family. Skipped and said so with a calibration map, "
            "with serving.backend: onnx, or for a sequence family; not tried without another "
            "family (training.choice.families: []). Off by default: on the quality "
            "benchmark's NOAA weather the blends it chose lost 0.4 accuracy points live."
        ),
    )

    def leaves_for(self, task: str, compiled: bool = False) -> list[str]:
        """The leaf candidates for ``task``: the spec's, else the task's default (constant
        only for a ``compiled`` model: serving.backend onnx cannot compile linear leaves).

        >>> Choice().leaves_for("regression"), Choice().leaves_for("classification")
        (['constant', 'linear'], ['constant'])
        >>> Choice().leaves_for("regression", compiled=True)
        ['constant']
        """
        if self.leaves is not None:
            return list(self.leaves)
        return ["constant", "linear"] if task == "regression" and not compiled else ["constant"]

    @model_validator(mode="after")
    def _every_max(self) -> Choice:
        if self.every_max < self.every:
            raise ValueError(
                f"training.choice.every_max is {self.every_max}, below training.choice.every "
                f"({self.every}): the longest wait between choices cannot be shorter than the "
                f"first. Set every_max to {self.every} or more ({self.every} for a fixed wait)"
            )
        return self

    @field_validator("leaves")
    @classmethod
    def _leaves(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError(
                "training.choice.leaves needs at least one candidate, e.g. [constant, linear]"
            )
        return v

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("training.choice.windows needs at least one candidate, e.g. [all]")
        for w in v:
            if w not in ("all", "since_change"):
                _fraction_or_days(w, "training.choice.windows entry")
        return v

    @field_validator("half_lives")
    @classmethod
    def _half_lives(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("training.choice.half_lives needs at least one, e.g. [none]")
        for h in v:
            if h != "none":
                _fraction_or_days(h, "training.choice.half_lives entry")
        return v


# The families that train through their Dask interfaces (training.engine: dask).
DASK_FAMILIES = ("lightgbm", "xgboost")


def dask_family_message(family: str) -> str:
    """Why ``family`` cannot train with engine: dask, and the fix.

    >>> dask_family_message("randomforest").startswith("family 'randomforest' cannot")
    True
    """
    return (
        f"family {family!r} cannot train with training.engine: dask; the families with a "
        f"Dask interface are {', '.join(DASK_FAMILIES)}. Set family to one of them or "
        "training.engine: local"
    )


class Search(Section):
    """Hyper-parameter search on full retrains (Optuna, needs the `search` extra): each trial
    is scored on walk-forward folds over the rows before the gate's holdout, so the gate
    still judges the result on rows the search never saw."""

    enabled: bool = Field(
        False, description="Search on every full retrain (`train --search` asks for one run)."
    )
    trials: int | None = Field(
        20, ge=1, description="Trials per search (the default params are scored besides)."
    )
    seconds: float | None = Field(
        None,
        gt=0,
        le=MAX_SECONDS,
        description="Stop starting trials after this many seconds; null: trials alone.",
    )
    folds: int = Field(3, ge=2, le=20, description="Walk-forward folds each trial is scored on.")
    pruning: bool = Field(
        True, description="Stop a trial early when a fold puts it below the median trial."
    )
    seed: int | None = Field(
        None, description="The sampler's seed; null: training.seed. Same seed, same search."
    )

    @model_validator(mode="after")
    def _budget(self) -> Search:
        if self.trials is None and self.seconds is None:
            raise ValueError(
                "training.search needs a budget: set training.search.trials (e.g. 20) or "
                "training.search.seconds (e.g. 600)"
            )
        return self


class Training(Section):
    window_days: int | None = Field(
        None,
        ge=1,
        le=MAX_DAYS,
        description="Train on the last N days of rows; all rows when unset.",
    )
    holdout_fraction: float = Field(
        0.2, gt=0, lt=0.9, description="Newest fraction of the window held out for metrics."
    )
    holdout_days: int | None = Field(
        None,
        ge=1,
        le=MAX_DAYS,
        description=(
            "Hold out the rows of the window's last N days (by event time) instead of "
            "holdout_fraction; must be shorter than window_days."
        ),
    )
    seed: int = Field(0, description="Random seed; the same seed gives the same model.")
    refit_on_full_window: bool = Field(
        True, description="After evaluating on the holdout, refit on the whole window."
    )
    choice: Choice = Field(
        default_factory=Choice,
        description="How a full retrain chooses its window and recency weighting.",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description=(
            "Threads a model of this spec trains with; null: every CPU this process may use "
            "(affinity and cgroup quota), never more. A family's own thread parameter in "
            "params (num_threads, nthread, thread_count, n_jobs) wins."
        ),
    )
    engine: Literal["local", "dask"] = Field(
        "local",
        description=(
            "Where the fits run: `local` (this process) or `dask` (LightGBM and XGBoost "
            "through their Dask interfaces, on `scheduler` or a LocalCluster); the saved "
            "model is the same local booster either way. Needs the `dask` extra."
        ),
    )
    search: Search = Field(
        default_factory=Search,
        description="Hyper-parameter search on full retrains (off by default).",
    )
    scheduler: str | None = Field(
        None,
        description=(
            "The Dask scheduler's address (`tcp://host:8786`) with engine: dask; null: a "
            "LocalCluster started for the training and closed after it."
        ),
    )
    deadline_minutes: float | None = Field(
        None,
        gt=0,
        le=MAX_DAYS * 24 * 60,
        description=(
            "With engine: dask, the longest a training's fits may take on the cluster, the "
            "retry after a lost worker included; past it they are abandoned and the training "
            "fails with nothing registered. null: no deadline."
        ),
    )

    @model_validator(mode="after")
    def _holdout_inside_window(self) -> Training:
        days, window = self.holdout_days, self.window_days
        if days is not None and window is not None and days >= window:
            raise ValueError(
                f"training.holdout_days ({days}) must be shorter than training.window_days "
                f"({window}): the holdout is the window's last {days} days and the model "
                f"needs older rows to learn from; lower holdout_days or widen window_days"
            )
        if self.scheduler is not None and self.engine != "dask":
            raise ValueError(
                f"training.scheduler ({self.scheduler!r}) is used by engine: dask only; this "
                f"model's engine is {self.engine!r}. Set training.engine: dask or remove "
                "training.scheduler"
            )
        if self.deadline_minutes is not None and self.engine != "dask":
            raise ValueError(
                f"training.deadline_minutes ({self.deadline_minutes}) is used by engine: dask "
                f"only (a fit in this process cannot be stopped from it); this model's engine "
                f"is {self.engine!r}. Set training.engine: dask or remove "
                "training.deadline_minutes"
            )
        return self


class Validation(Section):
    scheme: Literal["holdout", "walk_forward"] = "holdout"
    folds: int = Field(5, ge=2, le=50)
    gap: int = Field(0, ge=0, description="Rows skipped between each fold's train and test.")


class QualitySeverity(Section):
    """What a quality violation does, per trigger of the training: ``block`` refuses to
    train, ``warn`` records the violations on the version and trains. Violations that make
    training impossible (a missing column, unlabelled rows, non-numeric values, one class)
    block on every trigger."""

    manual: Literal["warn", "block"] = Field(
        "block", description="`retrainer train`, `fine-tune` and `maintain` from the CLI."
    )
    api: Literal["warn", "block"] = Field("block", description="REST train and maintain.")
    schedule: Literal["warn", "block"] = Field(
        "block", description="Scheduled jobs (retrainer serve / retrainer scheduler)."
    )

    def of(self, trigger: str) -> Literal["warn", "block"]:
        """The severity for a training started by ``trigger`` (a version's ``created_by``);
        any other trigger (a library call) is judged as manual."""
        if trigger == "schedule":
            return self.schedule
        if trigger == "api":
            return self.api
        return self.manual


class Quality(Section):
    min_rows: int = Field(100, ge=1)
    min_days: int | None = Field(
        None,
        ge=1,
        le=MAX_DAYS,
        description="The labelled rows must span at least N days (oldest to newest event).",
    )
    severity: QualitySeverity = Field(
        default_factory=QualitySeverity,
        description="Per trigger (manual, api, schedule): a violation blocks or warns.",
    )
    max_missing_fraction: float = Field(0.2, ge=0, le=1)
    max_outlier_fraction: float = Field(
        0.05, ge=0, le=1, description="Rows outside the ranges (or beyond 6 IQR) per feature."
    )
    min_class_fraction: float = Field(0.01, ge=0, lt=1)
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    iqr_outliers: Literal["warn", "block"] = Field(
        "warn",
        description=(
            "A feature without a declared range whose share of values beyond 6 IQR exceeds "
            "max_outlier_fraction: a warning in the report (heavy-tailed features have such "
            "shares all along) or a block. Values outside `ranges`, and infinities, always "
            "block."
        ),
    )


class FineTune(Section):
    learning_rate_factor: float = Field(0.5, gt=0, le=1)
    learning_rate: float | None = Field(
        None,
        gt=0,
        description=(
            "Absolute learning rate of the added rounds (boosting families); when set it "
            "replaces learning_rate_factor."
        ),
    )
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    min_rows: int = Field(50, ge=1)
    rounds: int = Field(100, ge=1, description="Boosting rounds or trees added at most.")


class GuardRule(Section):
    """A guard metric's rule: bound a loss (``max_loss``) or require a gain, absolute
    (``min_improvement``) or relative to the champion's value (``min_relative_improvement``),
    each in the metric's good direction."""

    max_loss: float | None = Field(None, ge=0, description="Largest regression tolerated.")
    min_improvement: float | None = Field(
        None, ge=0, description="Improvement required (with the gate's significance test)."
    )
    min_relative_improvement: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "Improvement required as a fraction of the champion's value (0.05: a failure "
            "rate 5% lower, 0.20 -> 0.19), with the gate's significance test."
        ),
    )

    @model_validator(mode="after")
    def _one(self) -> GuardRule:
        given = [self.max_loss, self.min_improvement, self.min_relative_improvement]
        if sum(x is not None for x in given) != 1:
            raise ValueError(
                "a guard takes exactly one of max_loss, min_improvement or "
                "min_relative_improvement, e.g. {f1: {min_improvement: 0.01}}, "
                "{failure_rate: {min_relative_improvement: 0.05}} or "
                "{roc_auc: {max_loss: 0.005}}"
            )
        return self


class MetricDef(Section):
    """A user metric: ``expression`` over tp, fp, tn, fn, or ``function`` by import path."""

    expression: str | None = Field(
        None, description="Arithmetic over tp, fp, tn, fn, e.g. 'fn / (tp + fn)'."
    )
    function: str | None = Field(
        None, description="'package.module:function' called as f(y_true, y_pred[, proba])."
    )
    greater_is_better: bool = Field(description="The metric's direction.")

    @model_validator(mode="after")
    def _one(self) -> MetricDef:
        if (self.expression is None) == (self.function is None):
            raise ValueError("a custom metric takes exactly one of expression or function")
        return self


class Gate(Section):
    primary_metric: str | None = Field(None, description="Default: accuracy or mae.")
    min_improvement: float = Field(
        0.01, ge=0, description="A new recipe must improve the primary metric by this much."
    )
    significance: float | None = Field(
        0.05,
        gt=0,
        lt=1,
        description=(
            "Paired-bootstrap p-value a required improvement must be below; null: a plain "
            "comparison (the observed improvement alone decides)."
        ),
    )
    refresh_tolerance: float | None = Field(
        0.01,
        ge=0,
        description=(
            "A refresh (same family and parameters as the champion, newer rows) is rejected "
            "only when even the upper end of the bootstrap interval of its improvement is "
            "below -refresh_tolerance (with significance null: when the observed change is); "
            "null: judged like a new recipe."
        ),
    )
    bootstrap_samples: int = Field(1000, ge=100)
    guards: dict[str, GuardRule] = Field(
        default_factory=dict,
        description=(
            "Guard metric -> largest regression tolerated (a number, or {max_loss: x}), or "
            "{min_improvement: x}: the improvement it must show, or "
            "{min_relative_improvement: x}: that improvement as a fraction of the champion's."
        ),
    )
    metrics: dict[str, MetricDef] = Field(
        default_factory=dict, description="User metrics, usable as primary metric or guard."
    )
    max_latency_ms: float | None = Field(
        None, gt=0, description="Largest p95 single-row prediction latency, measured in training."
    )
    max_memory_mb: float | None = Field(
        None, gt=0, description="Largest peak RSS growth of loading the model and predicting."
    )
    max_size_bytes: int | None = Field(None, gt=0)
    min_rows: int | None = Field(
        None,
        ge=10,
        description=(
            "Fewest rows to compare on (fewer: 'insufficient'). Unset: scaled to the model's "
            "window, the holdout a full retrain of it gets, between 30 and 100."
        ),
    )

    @field_validator("guards", mode="before")
    @classmethod
    def _guards(cls, v: object) -> object:
        """A bare number is the original form: the largest regression tolerated."""
        if not isinstance(v, dict):
            return v
        return {
            k: {"max_loss": x} if isinstance(x, int | float) and not isinstance(x, bool) else x
            for k, x in v.items()
        }

    @property
    def live_significance(self) -> float:
        """The level of live A/B and canary comparisons: ``significance``, or 0.05 when the
        gate compares plainly (live arms always need a test: their samples keep growing)."""
        return 0.05 if self.significance is None else self.significance

    @property
    def measures_serving(self) -> bool:
        """Whether training must measure latency and memory (a budget names them)."""
        return self.max_latency_ms is not None or self.max_memory_mb is not None


class Drift(Section):
    psi: float = Field(0.2, gt=0, description="PSI at or above this is drift.")
    ks: float = Field(0.1, gt=0, le=1, description="KS distance (effect size) threshold.")
    jensen_shannon: float = Field(0.1, gt=0, le=1)
    p_value: float = Field(0.01, gt=0, lt=1)
    min_samples: int = Field(200, ge=10)
    share: float = Field(0.3, gt=0, le=1, description="Share of drifted features for drift.")
    critical_share: float = Field(0.6, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Drift:
        if self.share > self.critical_share:
            raise ValueError(
                f"drift.share ({self.share}) must not exceed drift.critical_share "
                f"({self.critical_share})"
            )
        return self


class Monitor(Section):
    window: str = "7d"
    concept_detector: Literal["adwin", "page_hinkley"] = "adwin"
    min_samples: int = Field(100, ge=1)
    persistence: int = Field(3, ge=1, description="Consecutive checks a drift must persist.")
    actuals_delay: str = "0d"
    late_join: str = Field(
        "1d",
        description=(
            "How long an actual stored unmatched waits for its prediction to be logged (the "
            "log is written behind the response, and spooled while the store is down)."
        ),
    )

    season: str | None = Field(
        None,
        description=(
            "The season of the seasonal naive baseline (e.g. 7d for a weekly pattern): the "
            "actual one season earlier is its prediction. A whole multiple of the data's time "
            "step (checked on the actuals the monitor folds); null: no seasonal baseline."
        ),
    )

    _w = field_validator("window", "actuals_delay", "late_join")(_duration)

    @field_validator("season")
    @classmethod
    def _season(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)


class Policy(Section):
    critical_degradation: float = Field(
        0.25, gt=0, description="Live primary metric this much (relative) worse: full retrain."
    )
    degradation: float = Field(
        0.15, gt=0, description="Live primary metric this much (relative) worse: fine-tune."
    )
    critical_degradation_points: float | None = Field(
        None,
        gt=0,
        description=(
            "Live primary metric this many points (absolute, e.g. 0.10 = 10 accuracy points) "
            "worse than the baseline: full retrain."
        ),
    )
    degradation_points: float | None = Field(
        None,
        gt=0,
        description="Live primary metric this many points (absolute) worse: fine-tune.",
    )
    floors: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Metric -> the worst live value tolerated (a floor for bigger-is-better metrics "
            "such as accuracy, a ceiling for smaller-is-better ones such as mae): full "
            "retrain when the champion's live value is worse."
        ),
    )
    max_days_since_full_retrain: float | None = Field(365, gt=0, le=MAX_DAYS)
    keep_baseline: bool = Field(
        True,
        description=(
            "A version the gate compared with a champion that was critically degraded on the "
            "gate's rows, and that is itself critically worse than the champion's baseline "
            "(it did not recover from the change), keeps that baseline instead of its own "
            "holdout metric, so the monitor and the critical-degradation rule still see the "
            "degradation and the policy retrains again; the next version that is not "
            "critically worse measures its own. false: every version's baseline is its own "
            "holdout metric (a retrain deployed during a change makes the degradation its "
            "normal)."
        ),
    )
    max_fine_tunes: int | None = Field(
        5,
        ge=0,
        description=(
            "Fine-tunes allowed since the last full retrain: once this many were made, the "
            "next due fine-tune is a full retrain (5: five fine-tunes, then a full retrain)."
        ),
    )
    max_days_since_update: float | None = Field(
        None, gt=0, le=MAX_DAYS, description="Fine-tune after this many days without any training."
    )
    new_data_fraction: float | None = Field(
        0.1,
        gt=0,
        description=(
            "Full retrain once the labelled rows added since the last training reach this "
            "fraction of the rows the champion was trained on."
        ),
    )
    min_confidence: float | None = Field(None, gt=0, lt=1)
    incremental_update_threshold: int = Field(100, ge=1)
    fine_tune_every_rows: int | None = Field(
        None,
        ge=1,
        description=(
            "Warm-start families: fine-tune once this many new labelled rows exist since the "
            "last update, judged on what is there."
        ),
    )
    rollback_on_regression: bool = True
    search_every: int = Field(
        0,
        ge=0,
        description=(
            "Run a hyper-parameter search (training.search's budget) on every Nth full "
            "retrain since the last search; 0: never (training.search.enabled: every one)."
        ),
    )
    scale_baseline_by_naive: bool = Field(
        True,
        description=(
            "Regression, with an error metric (MAE, RMSE, ...): when the previous actual errs "
            "more on the champion's live rows than on its holdout, the degradation rules "
            "judge the champion against its baseline times that ratio (never below the "
            "baseline itself). A stretch that is harder for every predictor (winter "
            "weather, a volatile month) raises the model's error as much as the naive's; a "
            "changed relation raises the model's more. false: the baseline as measured."
        ),
    )
    naive_margin: float | None = Field(
        0.0,
        ge=0,
        description=(
            "Full retrain, and a naive_better alert, when over the monitor window (on at least "
            "monitor.min_samples labelled actuals) the champion's live primary metric is not "
            "better than the best naive baseline's by more than this (in the metric's units). "
            "Debounced: not while the champion was trained within the monitor window, so a "
            "stream where the previous actual wins (a random walk) is not retrained at every "
            "check; the decision then notes it. null: off."
        ),
    )

    @field_validator("floors")
    @classmethod
    def _floors(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in v if name not in METRICS]
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(METRICS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"policy.floors names unknown metric {unknown[0]!r}; {hint}valid: "
                f"{', '.join(sorted(METRICS))}"
            )
        bad = [name for name, x in v.items() if not math.isfinite(x)]
        if bad:
            raise ValueError(f"policy.floors.{bad[0]} must be a finite number, got {v[bad[0]]!r}")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Policy:
        if self.degradation >= self.critical_degradation:
            raise ValueError(
                f"policy.degradation ({self.degradation}) must be below "
                f"policy.critical_degradation ({self.critical_degradation}): the fine-tune "
                "threshold cannot be above the full-retrain threshold"
            )
        low, high = self.degradation_points, self.critical_degradation_points
        if low is not None and high is not None and low >= high:
            raise ValueError(
                f"policy.degradation_points ({low}) must be below "
                f"policy.critical_degradation_points ({high}): the fine-tune threshold "
                "cannot be above the full-retrain threshold"
            )
        return self

    def check_task(self, task: str) -> None:
        """Raise ValueError when a floor names a metric the task does not measure."""
        for name in self.floors:
            if METRICS[name].task != task:
                valid = sorted(m.name for m in METRICS.values() if m.task == task)
                raise ValueError(
                    f"policy.floors.{name}: {name} is a {METRICS[name].task} metric, but this "
                    f"model does {task}; a {task} floor is one of {', '.join(valid)}"
                )


class Rollout(Section):
    mode: Literal["direct", "shadow", "ab", "canary"] = "direct"
    fraction: float = Field(0.1, gt=0, le=1)
    steps: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 1.0])
    watch: str = "1d"
    min_samples: int = Field(100, ge=1)
    auto_rollback_drop: float = Field(0.05, gt=0)
    auto_rollback_points: float | None = Field(
        None,
        gt=0,
        description=(
            "Also roll back (or withdraw a challenger) when the live primary metric is this "
            "many points (absolute) worse than the previous champion's."
        ),
    )

    _w = field_validator("watch")(_duration)

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < s <= 1 for s in v) or sorted(v) != v:
            raise ValueError(
                "rollout.steps must be increasing fractions in (0, 1], e.g. [0.05, 0.25, 1.0]"
            )
        return v


class Schedule(Section):
    maintain: str | None = Field(None, description="Cron expression, e.g. '0 */6 * * *'.")
    full_retrain: str | None = None
    fine_tune: str | None = None
    feedback: str | None = Field(
        None, description="When to pull actuals from the feedback API (the feedback section)."
    )
    grace_seconds: int = Field(3600, ge=0, le=MAX_SECONDS)
    timezone: str = Field(
        "UTC",
        description=(
            "IANA time zone the cron expressions are read in, e.g. 'America/New_York': "
            "'0 22 * * *' fires at 22:00 there, before and after a daylight-saving change."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)
        return v

    @field_validator("maintain", "full_retrain", "fine_tune", "feedback")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            cron_trigger(v)
        except ValueError as exc:
            raise ValueError(
                f"{v!r} is not a cron expression ({exc}); use five fields: minute hour "
                "day-of-month month day-of-week, e.g. '0 */6 * * *'"
            ) from None
        return v


AlertEvent = Literal[
    "deploy",
    "challenger_started",
    "rollback",
    "gate_rejected",
    "retrained",
    "training_shrunk",
    "critical_degradation",
    "critical_drift",
    "quality_failed",
    "job_failed",
    "reload_failed",
    "naive_better",
]
ALERT_EVENTS: tuple[str, ...] = get_args(AlertEvent)  # the names `alerts.events` accepts


class Alerts(Section):
    webhooks: list[str] = Field(default_factory=list)
    events: list[str] = Field(
        default_factory=lambda: [e for e in ALERT_EVENTS if e != "retrained"],
        description="Events posted to the webhooks (every event is logged).",
    )
    timeout_seconds: float = Field(5, gt=0)
    retries: int = Field(3, ge=0)
    training_shrink: float | None = Field(
        0.3,
        gt=0,
        lt=1,
        description=(
            "A full retrain whose training window has this fraction fewer rows than the "
            "champion learnt from (0.3: 30% fewer) raises `training_shrunk`; null: never."
        ),
    )

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        for event in v:
            if event not in ALERT_EVENTS:
                close = difflib.get_close_matches(event, ALERT_EVENTS, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"alerts.events lists unknown event {event!r}; {hint}valid: "
                    f"{', '.join(ALERT_EVENTS)}"
                )
        return v


class Retention(Section):
    keep: int = Field(5, ge=1, description="Versions kept besides current and previous champion.")


class Serving(Section):
    max_batch_rows: int = Field(10_000, ge=1)
    max_feedback_bytes: int = Field(
        32 * 2**20, ge=1024, description="Largest body of one REST feedback request."
    )
    extra: Literal["ignore", "forbid"] = "ignore"
    unknown_category: Literal["accept", "reject"] = "accept"
    reload_seconds: float = Field(5, gt=0, le=MAX_SECONDS)
    backend: Literal["native", "onnx"] = Field(
        "native",
        description=(
            "onnx: score tree models (randomforest, lightgbm, xgboost, catboost) with ONNX "
            "Runtime, verified against the native library when a version loads; a version "
            "that fails the check is served native (needs the `compiled` extra)."
        ),
    )
    compiled_tolerance: float = Field(
        1e-5,
        gt=0,
        le=0.01,
        description=(
            "Largest difference from the native prediction the onnx backend may show on the "
            "verification sample: absolute for probabilities, times max(1, |value|) for "
            "regression values."
        ),
    )


class Data(Section):
    """Where a model's labelled rows live. ``store`` (default): rows ingested into the store.
    ``parquet``: the team's Parquet files, read in place (a file, a folder or a glob; any
    fsspec URL, e.g. ``s3://bucket/events/*.parquet``). ``sql``: a query against the team's
    own database, read in place; the query may use ``:since`` (and ``:until``) so that only
    the rows of the time asked for are read. With a source, rows in the store (ingested or
    added by feedback) are read too; a row of the source wins over a stored row of its id."""

    source: Literal["store", "parquet", "sql"] = "store"
    path: str | None = Field(None, description="parquet: file, folder or glob (fsspec URL).")
    url: str | None = Field(None, description="sql: SQLAlchemy URL of the team's database.")
    query: str | None = Field(None, description="sql: the query giving the labelled rows.")

    @model_validator(mode="after")
    def _complete(self) -> Data:
        need = {"store": (), "parquet": ("path",), "sql": ("url", "query")}[self.source]
        missing = [k for k in need if not getattr(self, k)]
        if missing:
            raise ValueError(f"data.source {self.source!r} needs data.{' and data.'.join(missing)}")
        extra = [k for k in ("path", "url", "query") if k not in need and getattr(self, k)]
        if extra:
            raise ValueError(
                f"data.{extra[0]} does not apply to data.source {self.source!r}; remove it"
            )
        return self


class Feedback(Section):
    """The HTTP JSON API that ``retrainer feedback MODEL`` (no FILE) pulls actuals from, page
    by page, resuming from the newest ``since_field`` value already taken. Unused without
    ``url``; every key can be overridden by the command's options."""

    url: str | None = Field(None, description="First page of the API (http or https).")
    records: str = Field(
        "records", description="Dotted path to the list of records in a page; '' = the body."
    )
    next: str | None = Field(
        None, description="Dotted path to the next page's link (or cursor); null: one page."
    )
    cursor_param: str | None = Field(
        None, description="Query parameter the `next` value is sent in; null: it is a link."
    )
    since_param: str | None = Field(
        None, description="Query parameter the stored since-cursor is sent in."
    )
    since_field: str | None = Field(
        None, description="Record field whose newest value is the cursor; default: time field."
    )
    token_env: str | None = Field(
        None, description="Environment variable holding a bearer token (never printed)."
    )
    timeout_seconds: float = Field(10, gt=0)
    retries: int = Field(3, ge=0, description="Retries of a timeout, 429 or 5xx per page.")
    id_field: str | None = Field(None, description="Record field holding the id column.")
    label_field: str | None = Field(None, description="Record field holding the target.")
    time_field: str | None = Field(None, description="Record field holding the time column.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.lower().startswith(("http://", "https://")):
            raise ValueError("feedback.url must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _cursor(self) -> Feedback:
        if self.cursor_param and not self.next:
            raise ValueError(
                "feedback.cursor_param needs feedback.next (the field holding the cursor)"
            )
        return self

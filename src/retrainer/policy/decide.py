"""The maintenance decision: a pure function of a :class:`MaintenanceState` and the spec.

Rules are declared once, in priority order, in ``_RULES``; the first that fires picks the
action, and every rule that fired for the same action adds its reason. A threshold set to
``None`` in the spec disables its rule. Reasons carry their numbers; ``Decision.numbers``
holds the raw values.

>>> from datetime import UTC, datetime
>>> from retrainer.core.spec_sections import Policy, Rollout
>>> from retrainer.policy.state import LivePerformance, MaintenanceState
>>> state = MaintenanceState(
...     model="churn", now=datetime(2025, 1, 1, tzinfo=UTC), champion="1.2.0",
...     days_since_full_retrain=12, days_since_update=3,
...     performance=LivePerformance("accuracy", live=0.712, baseline=0.871, n_samples=500))
>>> d = decide(state, Policy(), Rollout())
>>> d.action
'fine_tune'
>>> d.reasons[0]
'live accuracy 0.712 is 18.3% below baseline 0.871 (policy.degradation: 15%)'
>>> decide(state, Policy(degradation_points=0.1), Rollout()).reasons[0].split(" and ")[1]
'0.159 points worse than baseline 0.871 (policy.degradation_points: 0.1)'
>>> decide(state, Policy(degradation=0.2), Rollout()).action
'nothing'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.entities import Action, Decision
from ..core.metrics import METRICS
from ..core.spec_sections import Policy, Rollout
from .state import LivePerformance, MaintenanceState

QUALITY_BLOCK = "blocked by data quality"

# Severity of the retraining actions; more evidence never yields a milder one.
SEVERITY: dict[str, int] = {
    "nothing": 0,
    "incremental_update": 1,
    "fine_tune": 2,
    "full_retrain": 3,
}


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _days(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


@dataclass(frozen=True)
class _Context:
    state: MaintenanceState
    policy: Policy
    rollout: Rollout
    min_samples: int

    @property
    def degradation(self) -> float | None:
        """Degradation when it counts: measured, finite, on enough live samples."""
        perf = self.state.performance
        if perf is None or perf.n_samples < self.min_samples:
            return None
        value = perf.degradation
        return value if math.isfinite(value) else None

    @property
    def points(self) -> float | None:
        """Absolute degradation when it counts (same conditions as ``degradation``)."""
        perf = self.state.performance
        if perf is None or perf.n_samples < self.min_samples:
            return None
        value = perf.points
        return value if math.isfinite(value) else None

    @property
    def fine_tune_judgeable(self) -> bool:
        """Enough rows newer than the champion for the gate to judge a fine-tune: its
        validation slice reaches the gate's minimum (scaled to a small window when
        ``gate.min_rows`` is unset, see ``gate_min_rows_note``)."""
        s = self.state
        return s.rows_since_champion >= s.fine_tune_rows_needed

    @property
    def scaled(self) -> str:
        """``"; gate min_rows 40 (scaled: ...)"`` when the minimum was scaled, else empty."""
        note = self.state.gate_min_rows_note
        return "" if note is None else f"; gate {note}"

    def tune(self, reason: str, *, judge_what_is_there: bool = False) -> tuple[Action, str]:
        """A fine-tune; a full retrain when the family cannot warm start, when
        ``policy.max_fine_tunes`` fine-tunes were already made since the last full retrain,
        or when too few new rows exist for the gate to judge a fine-tune (it could never be
        deployed) unless ``judge_what_is_there``."""
        s = self.state
        if not s.capabilities.warm_start:
            return "full_retrain", f"{reason}; the family cannot warm start, so a full retrain"
        count, limit = s.fine_tunes_since_full_retrain, self.policy.max_fine_tunes
        if limit is not None and count >= limit:
            return "full_retrain", (
                f"{reason}; {count} fine-tunes since the last full retrain reach "
                f"policy.max_fine_tunes ({limit}), so a full retrain instead of another"
            )
        if judge_what_is_there:
            return "fine_tune", reason
        if not self.fine_tune_judgeable:
            return "full_retrain", (
                f"{reason}; a fine-tune on {s.rows_since_champion} new rows could not be judged "
                f"(the gate needs {s.fine_tune_rows_needed} for its validation slice{self.scaled})"
                ", so a full retrain"
            )
        return "fine_tune", reason


Fired = tuple[Action, str] | None
Rule = Callable[[_Context], Fired]


def _no_champion(c: _Context) -> Fired:
    if c.state.champion is None:
        return "full_retrain", "the model has no champion yet: train one from scratch"
    return None


def _quality(c: _Context) -> Fired:
    if c.state.quality_ok is not False:
        return None
    problems = "; ".join(c.state.quality_problems) or "the quality checks failed"
    return "nothing", f"{QUALITY_BLOCK}: {problems}"


def _regression(c: _Context) -> Fired:
    r = c.state.regression
    if r is None or not c.policy.rollback_on_regression or r.n_samples < c.rollout.min_samples:
        return None
    limit, points = c.rollout.auto_rollback_drop, c.rollout.auto_rollback_points
    relative = math.isfinite(r.drop) and r.drop > limit
    absolute = points is not None and math.isfinite(r.points) and r.points > points
    if not (relative or absolute):
        return None
    crossed = [f"rollout.auto_rollback_drop: {_pct(limit)}"] if relative else []
    if absolute and points is not None:
        crossed.append(f"rollout.auto_rollback_points: {_num(points)}")
    return "rollback", (
        f"live {r.metric} of {r.version} is {_num(r.live)}, {_pct(r.drop)} "
        f"({_num(r.points)} points) {_worse_side(r.metric)} previous champion "
        f"{r.previous_version} at {_num(r.previous)} on {r.n_samples} samples "
        f"({'; '.join(crossed)})"
    )


def _worse_side(metric: str) -> str:
    """Where a worse value lies: below for accuracy, above for an error such as mae.

    >>> _worse_side("accuracy"), _worse_side("mae")
    ('below', 'above')
    """
    m = METRICS.get(metric)
    return "above" if m is not None and not m.bigger_is_better else "below"


def _degradation_reason(c: _Context, relative: float | None, points: float | None, key: str) -> str:
    """What crossed: the relative drop against ``policy.<key>`` and/or the absolute drop
    against ``policy.<key>_points`` (None: that threshold was not crossed)."""
    perf = c.state.performance
    assert perf is not None
    head = f"live {perf.metric} {_num(perf.live)} is "
    base = f"baseline {_num(perf.bar)}{perf.bar_note}"
    if perf.baseline_from is not None:
        base += f", kept from {perf.baseline_from}"
    parts = []
    if relative is not None:
        assert c.degradation is not None
        parts.append(
            f"{_pct(c.degradation)} {_worse_side(perf.metric)} {base} "
            f"(policy.{key}: {_pct(relative)})"
        )
    if points is not None:
        assert c.points is not None
        parts.append(
            f"{_num(c.points)} points worse than {base} (policy.{key}_points: {_num(points)})"
        )
    return head + " and ".join(parts)


def _crossed(
    c: _Context, relative: float | None, points: float | None
) -> tuple[float | None, float | None]:
    """The relative and absolute thresholds that the live degradation exceeds."""
    return _exceeded(c.degradation, c.points, relative, points)


def _exceeded(
    degradation: float | None, worse_by: float | None, relative: float | None, points: float | None
) -> tuple[float | None, float | None]:
    """The thresholds (``relative``, ``points``; None: unset) that a relative
    ``degradation`` and an absolute ``worse_by`` exceed (None or NaN: not measured)."""

    def over(value: float | None, limit: float | None) -> float | None:
        if limit is None or value is None or not math.isfinite(value) or value <= limit:
            return None
        return limit

    return over(degradation, relative), over(worse_by, points)


def kept_baseline(
    policy: Policy,
    metric: str,
    bar: float | None,
    champion: float,
    challenger: float,
    own: float | None,
) -> float | None:
    """The baseline a new version keeps from the champion it replaces: the champion's
    ``bar`` (its baseline) when, on the gate's rows, the champion was critically worse than
    it (``policy.critical_degradation``, or ``critical_degradation_points`` when set) and the
    new version is too (``challenger``): the retrain did not recover from the change the
    monitor saw. Its own holdout metric (``own``), measured on the changed rows, would make
    the degradation its normal and silence the rule until the next scheduled retrain; kept,
    the next check still sees it and the policy retrains again (with the rows since the
    change, see ``training.choice``). None when either recovered, when ``own`` is no worse
    than ``bar``, or without a bar.

    >>> p = Policy()
    >>> kept_baseline(p, "mae", 0.9, champion=3.4, challenger=3.5, own=3.5)
    0.9
    >>> kept_baseline(p, "mae", 0.9, champion=3.4, challenger=1.0, own=1.0) is None  # recovered
    True
    >>> kept_baseline(p, "accuracy", 0.86, champion=0.84, challenger=0.5, own=0.5) is None
    True
    """
    if bar is None or own is None:
        return None

    def critical(value: float) -> bool:
        perf = LivePerformance(metric, value, bar, 0)
        limits = (policy.critical_degradation, policy.critical_degradation_points)
        return _exceeded(perf.degradation, perf.points, *limits) != (None, None)

    if not (critical(champion) and critical(challenger)):
        return None
    if not METRICS[metric].improvement(bar, own) > 0:  # its own holdout is no worse
        return None
    return bar


def _new_features(c: _Context) -> Fired:
    """The spec lists a feature the champion never saw: only a full retrain (a new major
    version) learns it; a fine-tune cannot change the feature schema."""
    new = c.state.new_features
    if not new:
        return None
    return "full_retrain", (
        f"new feature(s) {', '.join(new)} in the spec, not in champion {c.state.champion}'s "
        "schema: a full retrain learns them"
    )


def _critical_degradation(c: _Context) -> Fired:
    p = c.policy
    rel, pts = _crossed(c, p.critical_degradation, p.critical_degradation_points)
    if rel is None and pts is None:
        return None
    return "full_retrain", "critical degradation: " + _degradation_reason(
        c, rel, pts, "critical_degradation"
    )


def _floors(c: _Context) -> Fired:
    """An absolute limit per metric (a floor, or a ceiling for smaller-is-better metrics)."""
    perf = c.state.performance
    if not c.policy.floors or perf is None or perf.n_samples < c.min_samples:
        return None
    broken = []
    for name, limit in c.policy.floors.items():
        value = c.state.live_metrics.get(name)
        if value is None or not math.isfinite(value) or not METRICS[name].better(limit, value):
            continue
        side = "below its floor" if METRICS[name].bigger_is_better else "above its ceiling"
        broken.append(f"live {name} {_num(value)} is {side} {_num(limit)} (policy.floors.{name})")
    if not broken:
        return None
    return "full_retrain", f"{'; '.join(broken)} on {perf.n_samples} labelled rows"


def _drift_reason(c: _Context) -> str:
    d = c.state.drift
    assert d is not None
    names = f" ({', '.join(d.drifted)})" if d.drifted else ""
    return f"{_pct(d.share)} of features drifted{names}"


def _critical_drift(c: _Context) -> Fired:
    if c.state.drift is None or not c.state.drift.critical:
        return None
    return "full_retrain", f"critical data drift: {_drift_reason(c)}"


def _full_retrain_age(c: _Context) -> Fired:
    days, limit = c.state.days_since_full_retrain, c.policy.max_days_since_full_retrain
    if days is None or limit is None or days <= limit:
        return None
    return "full_retrain", (
        f"{_days(days)} days since the last full retrain "
        f"(policy.max_days_since_full_retrain: {_days(limit)})"
    )


def _new_data(c: _Context) -> Fired:
    """Enough new labelled rows, against what the champion learnt from, to be worth a refit.
    Counted since the last training attempt, so a rejected one waits for as many again."""
    s, share = c.state, c.policy.new_data_fraction
    if share is None or s.champion_rows <= 0:
        return None
    needed = math.ceil(share * s.champion_rows)
    if s.new_rows_since_update < needed:
        return None
    return "full_retrain", (
        f"{s.new_rows_since_update} new labelled rows since the last training, "
        f"{_pct(s.new_rows_since_update / s.champion_rows)} of the champion's "
        f"{s.champion_rows} (policy.new_data_fraction: {_pct(share)})"
    )


def _naive_gap(c: _Context) -> tuple[str, float] | None:
    """The best naive baseline when the champion is not better than it by more than
    ``policy.naive_margin`` over the monitor window on enough labelled actuals, by the live
    test of A/B rollouts where the metric has one (a tie on 112 actuals is noise, not a
    model no better than the majority class)."""
    n, margin = c.state.naive, c.policy.naive_margin
    if n is None or margin is None or n.n_samples < c.min_samples or not math.isfinite(n.live):
        return None
    return n.not_better(margin)


def _naive_sentence(c: _Context, best: tuple[str, float]) -> str:
    n = c.state.naive
    assert n is not None
    return (
        f"over the last {n.window} the model's {_metric_name(n.metric)} is {_num(n.live)}, "
        f"{best[0]}'s {_num(best[1])} on {n.n_samples} labelled actuals "
        f"({_naive_test(n.p_values.get(best[0]), n.significance)}"
        f"policy.naive_margin: {_num(c.policy.naive_margin or 0.0)})"
    )


def _naive_test(p: float | None, significance: float) -> str:
    """``p = 0.003 < 0.05; `` for a tested gap, nothing for a point comparison."""
    return "" if p is None else f"p = {p:.2g} < {_num(significance)}; "


def _metric_name(metric: str) -> str:
    """MAE, RMSE, F1 for the short names; accuracy as it is."""
    return metric.upper() if len(metric) <= 4 else metric


def _naive_debounced(c: _Context) -> bool:
    """The champion was trained within the monitor window: the naive rule waits."""
    n = c.state.naive
    return n is not None and n.champion_age_days is not None and n.champion_age_days < n.window_days


def _naive(c: _Context) -> Fired:
    """The model is not better than a trivial predictor over the watch window: a full
    retrain, but not again while the champion is younger than the window (a stream where
    the previous actual wins would otherwise retrain at every check)."""
    best = _naive_gap(c)
    if best is None or _naive_debounced(c):
        return None
    return "full_retrain", _naive_sentence(c, best)


def _degradation(c: _Context) -> Fired:
    rel, pts = _crossed(c, c.policy.degradation, c.policy.degradation_points)
    if rel is None and pts is None:
        return None
    return c.tune(_degradation_reason(c, rel, pts, "degradation"))


def _data_drift(c: _Context) -> Fired:
    if c.state.drift is None or not c.state.drift.drift:
        return None
    return c.tune(f"data drift: {_drift_reason(c)}")


def _concept_drift(c: _Context) -> Fired:
    if not c.state.concept_drift:
        return None
    return c.tune("concept drift on the error stream (persisted past the debounce)")


def _incremental(c: _Context) -> Fired:
    rows, limit = c.state.new_rows_since_update, c.policy.incremental_update_threshold
    if not c.state.capabilities.incremental or rows < limit:
        return None
    return "incremental_update", (
        f"{rows} new labelled rows since the last update "
        f"(policy.incremental_update_threshold: {limit})"
    )


def _fine_tune_rows(c: _Context) -> Fired:
    """A warm-start update once enough new labelled rows exist, judged on what is there: the
    "update every N rows" of families that learn in batches (an incremental family updates
    through ``incremental_update`` instead)."""
    rows, limit = c.state.new_rows_since_update, c.policy.fine_tune_every_rows
    if limit is None or rows < limit or c.state.capabilities.incremental:
        return None
    return c.tune(
        f"{rows} new labelled rows since the last update (policy.fine_tune_every_rows: {limit})",
        judge_what_is_there=True,
    )


def _stale(c: _Context) -> Fired:
    """Age fires on its own, with however few new rows: the fine-tune learns and is judged on
    what is there (the gate may find too few rows to judge it and keep the champion), and
    the reason says so. Only with fewer new rows than a fine-tune can run on at all
    (``fine_tune.min_rows``) does age wait, with a note."""
    s = c.state
    days, limit = s.days_since_update, c.policy.max_days_since_update
    if days is None or limit is None or days <= limit:
        return None
    reason = (
        f"{_days(days)} days since the last update (policy.max_days_since_update: {_days(limit)})"
    )
    if not s.capabilities.warm_start:
        return c.tune(reason)
    if s.rows_since_champion < s.fine_tune_min_rows:
        return None
    if not c.fine_tune_judgeable:
        reason += (
            f"; a fine-tune on the {s.rows_since_champion} new rows there are, judged on what "
            f"is there (the gate wants {s.fine_tune_rows_needed} to judge it fully and keeps "
            f"the champion when its slice is too small{c.scaled})"
        )
    return c.tune(reason, judge_what_is_there=True)


def _low_confidence(c: _Context) -> Fired:
    conf, limit = c.state.mean_confidence, c.policy.min_confidence
    if conf is None or limit is None or conf >= limit:
        return None
    return c.tune(f"mean confidence {_num(conf)} is below {_num(limit)} (policy.min_confidence)")


_RULES: tuple[tuple[str, Rule], ...] = (
    ("no_champion", _no_champion),
    ("data_quality", _quality),
    ("live_regression", _regression),
    ("new_features", _new_features),
    ("critical_degradation", _critical_degradation),
    ("floors", _floors),
    ("critical_drift", _critical_drift),
    ("full_retrain_age", _full_retrain_age),
    ("new_data", _new_data),
    ("naive_baseline", _naive),
    ("degradation", _degradation),
    ("data_drift", _data_drift),
    ("concept_drift", _concept_drift),
    ("incremental_update", _incremental),
    ("fine_tune_rows", _fine_tune_rows),
    ("days_since_update", _stale),
    ("low_confidence", _low_confidence),
)

RULE_NAMES: tuple[str, ...] = tuple(name for name, _ in _RULES)


def _notes(c: _Context) -> list[str]:
    """Measurements that were present but did not count, so nobody wonders why."""
    notes = []
    perf, r = c.state.performance, c.state.regression
    if perf is not None and perf.n_samples < c.min_samples:
        notes.append(
            f"degradation not counted: live {perf.metric} is measured on {perf.n_samples} "
            f"samples, fewer than the {c.min_samples} needed"
        )
    elif perf is not None and c.degradation is None:
        notes.append(f"degradation not counted: live {perf.metric} is undefined")
    if r is not None and r.n_samples < c.rollout.min_samples:
        notes.append(
            f"live regression not judged yet: {r.n_samples} samples since the deployment, "
            f"fewer than the {c.rollout.min_samples} needed"
        )
    elif (
        r is not None
        and not c.policy.rollback_on_regression
        and r.drop > c.rollout.auto_rollback_drop
    ):
        notes.append(
            f"live {r.metric} of {r.version} is {_pct(r.drop)} {_worse_side(r.metric)} "
            f"{r.previous_version}, "
            "but policy.rollback_on_regression is off"
        )
    best = _naive_gap(c)
    if best is not None and _naive_debounced(c) and c.state.naive is not None:
        notes.append(
            f"{_naive_sentence(c, best)}; no retrain for it: the champion was trained "
            f"{_days(c.state.naive.champion_age_days or 0.0)} days ago, within the window"
        )
    days, limit = c.state.days_since_update, c.policy.max_days_since_update
    stale = days is not None and limit is not None and days > limit
    s = c.state
    few = s.rows_since_champion < s.fine_tune_min_rows
    if stale and days is not None and s.capabilities.warm_start and few:
        notes.append(
            f"{_days(days)} days since the last update, but only {s.rows_since_champion} "
            f"new rows: a fine-tune needs at least {s.fine_tune_min_rows} "
            "(fine_tune.min_rows) to learn from"
        )
    return notes


def _all_clear(c: _Context) -> str:
    s, p, parts = c.state, c.policy, []
    if c.degradation is not None:
        parts.append(f"degradation {_pct(c.degradation)} (fine-tune above {_pct(p.degradation)})")
    if s.days_since_full_retrain is not None and p.max_days_since_full_retrain is not None:
        parts.append(
            f"{_days(s.days_since_full_retrain)} days since full retrain "
            f"(limit {_days(p.max_days_since_full_retrain)})"
        )
    if p.new_data_fraction is not None and s.champion_rows > 0:
        parts.append(
            f"{s.new_rows_since_update} new rows (retrain at "
            f"{math.ceil(p.new_data_fraction * s.champion_rows)})"
        )
    if p.max_fine_tunes is not None:
        parts.append(
            f"{s.fine_tunes_since_full_retrain} fine-tunes (the next due one is a full retrain "
            f"from {p.max_fine_tunes})"
        )
    if s.days_since_update is not None and p.max_days_since_update is not None:
        parts.append(
            f"{_days(s.days_since_update)} days since update "
            f"(limit {_days(p.max_days_since_update)})"
        )
    if s.drift is not None:
        parts.append(f"{_pct(s.drift.share)} of features drifted, below the drift share")
    return "no threshold crossed" + (": " + "; ".join(parts) if parts else "")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _numbers(c: _Context, rule: str | None, fired: list[str]) -> dict[str, Any]:
    s = c.state
    perf, drift, r = s.performance, s.drift, s.regression
    return {
        "rule": rule,
        "fired": fired,
        "champion": s.champion,
        "warm_start": s.capabilities.warm_start,
        "incremental": s.capabilities.incremental,
        "metric": perf.metric if perf else None,
        "live_metric": _finite(perf.live) if perf else None,
        "baseline_metric": _finite(perf.baseline) if perf else None,
        "baseline_from": perf.baseline_from if perf else None,
        "baseline_scale": perf.harder if perf and perf.harder > 1.0 else None,
        "live_samples": perf.n_samples if perf else None,
        "live_since": perf.since.isoformat() if perf and perf.since else None,
        "min_samples": c.min_samples,
        "degradation": _finite(perf.degradation) if perf else None,
        "degradation_counted": c.degradation is not None,
        "degradation_threshold": c.policy.degradation,
        "critical_degradation_threshold": c.policy.critical_degradation,
        "degradation_points": _finite(perf.points) if perf else None,
        "degradation_points_threshold": c.policy.degradation_points,
        "critical_degradation_points_threshold": c.policy.critical_degradation_points,
        "floors": dict(c.policy.floors),
        "live_metrics": {k: _finite(v) for k, v in s.live_metrics.items()},
        "days_since_full_retrain": s.days_since_full_retrain,
        "max_days_since_full_retrain": c.policy.max_days_since_full_retrain,
        "fine_tunes_since_full_retrain": s.fine_tunes_since_full_retrain,
        "max_fine_tunes": c.policy.max_fine_tunes,
        "rows_since_champion": s.rows_since_champion,
        "fine_tune_rows_needed": s.fine_tune_rows_needed,
        "gate_min_rows": s.gate_min_rows,
        "gate_min_rows_note": s.gate_min_rows_note,
        "days_since_update": s.days_since_update,
        "max_days_since_update": c.policy.max_days_since_update,
        "drift_share": drift.share if drift else None,
        "data_drift": drift.drift if drift else None,
        "critical_drift": drift.critical if drift else None,
        "drifted_features": list(drift.drifted) if drift else [],
        "concept_drift": s.concept_drift,
        "mean_confidence": s.mean_confidence,
        "min_confidence": c.policy.min_confidence,
        "new_rows_since_update": s.new_rows_since_update,
        "champion_rows": s.champion_rows,
        "new_data_fraction": c.policy.new_data_fraction,
        "incremental_update_threshold": c.policy.incremental_update_threshold,
        "quality_ok": s.quality_ok,
        "new_features": list(s.new_features),
        "regression_drop": _finite(r.drop) if r else None,
        "regression_samples": r.n_samples if r else None,
        "auto_rollback_drop": c.rollout.auto_rollback_drop,
        "auto_rollback_points": c.rollout.auto_rollback_points,
        "naive_margin": c.policy.naive_margin,
        "naive_baselines": dict(s.naive.baselines) if s.naive else {},
        "naive_live": _finite(s.naive.live) if s.naive else None,
        "naive_samples": s.naive.n_samples if s.naive else None,
        "naive_not_better": _naive_gap(c) is not None,
    }


def decide(
    state: MaintenanceState, policy: Policy, rollout: Rollout, *, min_samples: int = 100
) -> Decision:
    """Choose the maintenance action for ``state``; degradation counts only when the live
    metric rests on at least ``min_samples`` labelled rows (the spec's ``monitor.min_samples``).

    >>> from datetime import UTC, datetime
    >>> from retrainer.core.spec_sections import Policy, Rollout
    >>> s = MaintenanceState(model="m", now=datetime(2025, 1, 1, tzinfo=UTC),
    ...                      champion=None)
    >>> d = decide(s, Policy(), Rollout())
    >>> d.action, d.numbers["rule"]
    ('full_retrain', 'no_champion')
    """
    c = _Context(state, policy, rollout, min_samples)
    fired = [(name, out) for name, rule in _RULES if (out := rule(c)) is not None]
    notes = _notes(c)
    if not fired:
        reasons = [_all_clear(c), *notes]
        return Decision(state.model, "nothing", tuple(reasons), _numbers(c, None, []), state.now)
    rule, (action, first) = fired[0]
    reasons = [first]
    if rule == "no_champion":
        return Decision(state.model, action, (first,), _numbers(c, rule, [rule]), state.now)
    if rule == "data_quality":
        held = next(((a, why) for name, (a, why) in fired[1:] if a != "nothing"), None)
        if held is not None:
            reasons.append(f"held back: {held[0]} because {held[1]}")
    else:
        reasons += [why for _, (a, why) in fired[1:] if a == action]
    numbers = _numbers(c, rule, [name for name, _ in fired])
    return Decision(state.model, action, tuple(reasons + notes), numbers, state.now)


def search_due(policy: Policy, full_retrains_since_search: int) -> str | None:
    """Why the next full retrain runs a hyper-parameter search under
    ``policy.search_every`` (it is the Nth full retrain since the last search), or None.

    >>> search_due(Policy(search_every=3), 2)
    'policy.search_every: 3 (full retrain 3 since the last search)'
    >>> search_due(Policy(search_every=3), 1), search_due(Policy(), 7)
    (None, None)
    """
    every = policy.search_every
    nth = full_retrains_since_search + 1
    if every <= 0 or nth < every:
        return None
    return f"policy.search_every: {every} (full retrain {nth} since the last search)"

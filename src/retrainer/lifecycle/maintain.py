"""One turn of the loop: monitor → policy → act, under the model's lease, every decision
stored (taken or not)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..core.clock import utcnow
from ..core.durations import parse_duration
from ..core.entities import Decision, ModelVersion
from ..core.errors import InputError, QualityError, RetrainerError
from ..core.faults import fault_point
from ..core.fleet import check_single
from ..core.progress import Progress, current, reports
from ..core.spec import ModelSpec
from ..evaluation.arms import compare_arms
from ..families import family_class
from ..monitoring.naive import LAST
from ..plumbing.lease import held_lease, model_lease
from ..plumbing.workspace import Workspace
from ..policy.decide import decide
from ..policy.state import (
    Capabilities,
    DataDrift,
    LivePerformance,
    MaintenanceState,
    NaiveComparison,
)
from ..store.decisions import PENDING
from . import rollout
from .deploy import rollback
from .drift_check import check_drift
from .fine_tune import fine_tune
from .gating import window_min_rows
from .monitor import MonitorReport, VersionMonitor, monitor
from .rollout import live_regression
from .sources import count_rows, row_stats
from .train import choose_features, load_window, quality_of, train

FULL = ("initial", "full_retrain")
TRAINING = ("full_retrain", "fine_tune", "incremental_update")  # decide → register → deploy


@dataclass(frozen=True)
class MaintainResult:
    decision: Decision
    version: str | None
    deployed: bool
    failed: bool = False  # the action raised a runtime error (its outcome says which)


def _days(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds() / 86400


def fine_tunes_since_full_retrain(versions: list[ModelVersion]) -> list[ModelVersion]:
    """The fine-tunes (and incremental updates) registered after the newest full training,
    deployed or not: what ``policy.max_fine_tunes`` counts."""
    by_time = sorted(versions, key=lambda v: v.created_at)
    full = [v for v in by_time if v.kind in FULL]
    since = full[-1].created_at if full else None
    return [v for v in by_time if v.kind == "fine_tune" and (since is None or v.created_at > since)]


def build_state(ws: Workspace, model: str, now: datetime) -> MaintenanceState:
    """Everything the policy needs, measured now, except data quality
    (:func:`with_quality`)."""
    spec = ws.model_spec(model)
    champion = ws.store.roles(model).champion
    if champion is None:
        return MaintenanceState(model=model, now=now, champion=None)
    versions: list[ModelVersion] = ws.store.list_versions(model)
    champ = next(v for v in versions if v.version == champion)
    caps = family_class(champ.family).capabilities
    if caps.warm_start:  # the champion's own may be narrower (its estimator, its members)
        caps = ws.load(model, champion).capabilities
    by_time = sorted(versions, key=lambda v: v.created_at)
    full = [v for v in by_time if v.kind in FULL]
    last_full = full[-1] if full else None
    tunes = fine_tunes_since_full_retrain(versions)
    newest = by_time[-1]
    report = monitor(ws, model, now=now)
    concept = bool(report.concept and report.concept.get("drift"))
    perf = None
    live_metrics: dict[str, float] = {}
    try:
        report, live = champion_live(ws, spec, report, champion, champ.created_at, now)
        value = live.metrics.get(spec.primary_metric)
        base = live.baseline.get(spec.primary_metric)
        if value is not None and base is not None:
            origin = champ.baseline_from(spec.primary_metric)
            perf = LivePerformance(
                spec.primary_metric, value, base, live.labelled, report.since,
                None if origin == champion else origin,
                naive_pair(spec, report, versions, origin),
            )  # fmt: skip
        live_metrics = {k: v for k, v in live.metrics.items() if v is not None}
        confidence = live.mean_confidence
    except KeyError:
        confidence = None
    drift = None
    if "reference" in champ.details:
        s = check_drift(ws, model, now=now).summary
        drift = DataDrift(s.share, s.drift, s.critical, s.drifted)
    new_rows = count_rows(ws, spec, after=newest.train_end)
    since_champion = count_rows(ws, spec, after=champ.train_end)
    need = window_min_rows(ws, spec)  # gate.min_rows, or scaled to a small window
    needed = need.fine_tune_rows_needed(spec.fine_tune.validation_fraction)
    return MaintenanceState(
        model=model,
        now=now,
        champion=champion,
        regression=live_regression(ws, model, now),
        concept_drift=concept,
        rows_since_champion=since_champion,
        fine_tune_rows_needed=needed,
        gate_min_rows=need.rows,
        gate_min_rows_note=need.note,
        fine_tune_min_rows=spec.fine_tune.min_rows,
        live_metrics=live_metrics,
        champion_rows=rollout.rows_learnt(champ, versions),
        capabilities=Capabilities(caps.warm_start, caps.incremental),
        days_since_full_retrain=_days(now, last_full.created_at if last_full else None),
        fine_tunes_since_full_retrain=len(tunes),
        days_since_update=_days(now, newest.created_at),
        performance=perf,
        drift=drift,
        mean_confidence=confidence,
        new_rows_since_update=new_rows,
        new_features=_new_features_due(ws, spec, champ, newest, new_rows, need.rows),
        naive=naive_comparison(report, champion, _days(now, champ.created_at), spec),
    )


def naive_pair(
    spec: ModelSpec, report: MonitorReport, versions: list[ModelVersion], origin: str
) -> tuple[float, float] | None:
    """The previous actual's primary metric on the champion's live rows (``report``'s
    ``naive:last``) and on the holdout that measured its baseline (``origin``'s
    ``details["naive_holdout"]``): what ``policy.scale_baseline_by_naive`` scales the
    baseline by. None when the option is off or either is missing (a classifier, a version
    trained before it was recorded, too few live actuals)."""
    if not spec.policy.scale_baseline_by_naive:
        return None
    held = next((v for v in versions if v.version == origin), None)
    record = held.details.get("naive_holdout") if held is not None else None
    if not isinstance(record, dict) or record.get("metric") != spec.primary_metric:
        return None
    naive = next((b for b in report.baselines if b.version == LAST), None)
    live = naive.metrics.get(spec.primary_metric) if naive is not None else None
    if live is None:
        return None
    return float(live), float(record["value"])


def naive_comparison(
    report: MonitorReport, champion: str, champion_age_days: float | None, spec: ModelSpec
) -> NaiveComparison | None:
    """The champion's live primary metric over the monitor window next to each naive
    baseline's (by its description), on the champion's labelled actuals, each gap tested
    against ``policy.naive_margin`` by the live test of A/B rollouts at the gate's live
    significance; None when either is missing."""
    try:
        live = report.version(champion, "champion")
    except KeyError:
        return None
    metric = report.primary_metric
    value = live.metrics.get(metric)
    rows = {b.description or b.version: b for b in report.baselines}
    baselines = {k: v for k, b in rows.items() if (v := b.metrics.get(metric)) is not None}
    if value is None or not baselines:
        return None
    alpha = spec.gate.live_significance
    margin = spec.policy.naive_margin or 0.0
    p_values = {
        name: compare_arms(
            metric, value, live.labelled, baselines[name], rows[name].labelled,
            significance=alpha, champion_rmse=live.metrics.get("rmse"),
            challenger_rmse=rows[name].metrics.get("rmse"), margin=-margin,
        ).p_value
        for name in baselines
    }  # fmt: skip
    days = parse_duration(report.window, what="monitor window").total_seconds() / 86400
    return NaiveComparison(
        metric, report.window, value, baselines, live.labelled, champion_age_days, days,
        p_values, alpha,
    )  # fmt: skip


def champion_live(
    ws: Workspace,
    spec: ModelSpec,
    report: MonitorReport,
    champion: str,
    since: datetime,
    now: datetime,
) -> tuple[MonitorReport, VersionMonitor]:
    """The monitor report and the champion's live metrics in it over ``monitor.window``, or,
    when that window holds fewer than ``monitor.min_samples`` labelled pairs, over the window
    doubled until it holds them (never back past ``since``, the champion's creation). A model
    whose actuals come a few a day is judged on the samples the policy needs instead of never
    (a 7-day window of a daily stream holds 7); the naive baselines are compared over the
    same window. KeyError when the champion has no live data."""
    live = report.version(champion, "champion")
    span = parse_duration(spec.monitor.window, what="monitor.window")
    life = now - since
    while live.labelled < spec.monitor.min_samples and span < life:
        span = min(span * 2, life)
        report = monitor(ws, spec.name, window=span, now=now)
        live = report.version(champion, "champion")
    return report, live


def _new_features_due(
    ws: Workspace,
    spec: ModelSpec,
    champion: ModelVersion,
    newest: ModelVersion,
    new_rows: int,
    min_rows: int,
) -> tuple[str, ...]:
    """:func:`new_features`, unless a full retrain that learnt them was already made after the
    champion and kept back (its gate had too few rows newer than the champion's): the next
    one waits until ``min_rows`` rows (the gate's, scaled to the window when
    ``gate.min_rows`` is unset) newer than that attempt exist to judge it on, instead of a new
    major version at every check."""
    fresh = new_features(ws, spec, champion)
    if not fresh or newest is champion or newest.version == champion.version:
        return fresh
    schema = newest.feature_schema
    tried = {*schema.get("numeric", []), *schema.get("categorical", [])}
    if newest.kind in FULL and set(fresh) <= tried and new_rows < min_rows:
        return ()
    return fresh


def new_features(ws: Workspace, spec: ModelSpec, champion: ModelVersion) -> tuple[str, ...]:
    """The features a training would use now that ``champion`` was not trained on (the team
    added a column to the spec). The window is read only when the spec names such a column,
    to see which feature set a training would take."""
    schema = champion.feature_schema
    known = {*schema.get("numeric", []), *schema.get("categorical", [])}
    if all(f in known for f in spec.feature_names):
        return ()
    chosen = choose_features(spec, load_window(ws, spec)).spec
    return tuple(f for f in chosen.feature_names if f not in known)


def with_quality(
    ws: Workspace, model: str, state: MaintenanceState, trigger: str = "manual"
) -> MaintenanceState:
    """``state`` with the data-quality checks of the training window measured as a training
    started by ``trigger`` judges them (``quality.severity``). They are left unmeasured until
    an action is due: loading the window costs more than the rest of the state, and quality
    only matters to an action."""
    spec = ws.model_spec(model)
    if not row_stats(ws, spec)[0]:
        return replace(state, quality_ok=True, quality_problems=())
    frame = load_window(ws, spec)
    chosen = choose_features(spec, frame).spec  # the set a training would use
    problems = tuple(v.message for v in quality_of(chosen, frame, trigger).violations)
    return replace(state, quality_ok=not problems, quality_problems=problems)


@reports
def maintain(
    ws: Workspace,
    model: str,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    triggered_by: str = "policy",
    wait: float = 0,
    progress: Progress | None = None,
) -> MaintainResult:
    """Decide and (unless ``dry_run``) act once for ``model`` (``progress`` hears of each
    step: monitor and drift, data quality, the training it starts)."""
    spec = check_single(ws.model_spec(model), "maintain")
    at = now or utcnow()
    p = current()  # ``progress``, or the caller's
    with held_lease(ws, model_lease(model), wait=wait):
        if not dry_run:
            resume_pending(ws, model)
        if ws.store.roles(model).challenger is not None:
            p.stage("rollout turn")
            made = _rollout_turn(ws, model, at, dry_run, triggered_by)
            p.done()
            return made
        p.stage("monitor and drift")
        state = build_state(ws, model, at)
        d = decide(state, spec.policy, spec.rollout, min_samples=spec.monitor.min_samples)
        if d.action != "nothing":
            p.stage("data quality")
            state = with_quality(ws, model, state, triggered_by)
            d = decide(state, spec.policy, spec.rollout, min_samples=spec.monitor.min_samples)
        version, deployed, outcome = None, False, "dry run: nothing changed"
        stored = Decision(d.model, d.action, d.reasons, d.numbers, at, dry_run, outcome)
        if dry_run:
            ws.store.add_decision(stored)
            return MaintainResult(stored, version, deployed)
        _alert_state(ws, model, state, d)
        intent = None
        if d.action in TRAINING:  # stored first: a crash from here on leaves it pending
            pending = replace(stored, outcome=f"{PENDING} {d.action} under way")
            intent = ws.store.add_decision(pending)
            fault_point("maintain.after_intent")
        version, deployed, outcome, failed = _act(ws, model, d, triggered_by, intent)
        stored = replace(stored, outcome=outcome, id=intent)
        if intent is None:
            ws.store.add_decision(stored)
        else:
            ws.store.set_outcome(intent, outcome)
    p.done()
    return MaintainResult(stored, version, deployed, failed)


def resume_pending(ws: Workspace, model: str) -> list[Decision]:
    """Finish the decisions a killed maintain left pending (called under the model's lease,
    so no live run owns them): a decision whose version was registered is completed with
    what became of it (registration and placement are one transaction, so only its alerts
    and retention were left); one that registered nothing is abandoned, saying so."""
    from .deploy import apply_retention

    done = []
    for d in ws.store.pending_decisions(model):
        assert d.id is not None
        made = [v for v in ws.store.list_versions(model) if v.details.get("decision_id") == d.id]
        if made:
            v = made[-1]
            outcome = (
                f"resumed after the run was killed: {rollout.outcome(v, ws.store.roles(model))}"
            )
            apply_retention(ws, model)
        else:
            outcome = (
                f"abandoned: the run was killed before it registered a version "
                f"(the {d.action} was not carried out; this turn decides again)"
            )
        ws.store.set_outcome(d.id, outcome)
        done.append(replace(d, outcome=outcome))
    return done


def _rollout_turn(
    ws: Workspace, model: str, at: datetime, dry_run: bool, by: str
) -> MaintainResult:
    """While a challenger is on traffic, a turn judges its watch window (and trains nothing)."""
    if dry_run:
        ch = ws.store.roles(model).challenger
        assert ch is not None
        reasons: tuple[str, ...] = (
            f"{ch.mode} challenger {ch.version} on traffic at "
            f"{ch.fraction:.0%}; a turn would judge its watch window",
        )
        d = Decision(
            model,
            "nothing",
            reasons,
            {"challenger": ch.version},
            at,
            True,
            "dry run: nothing changed",
        )
        ws.store.add_decision(d)
        return MaintainResult(d, None, False)
    step = rollout.advance(ws, model, by=by, now=at)
    outcome = {
        "promote": f"promoted {step.version}",
        "withdraw": f"withdrew {step.version}",
        "canary_step": f"canary {step.version} stepped up",
    }.get(step.action, "watching")
    d = Decision(model, step.action, step.reasons, step.numbers, at, False, outcome)  # type: ignore[arg-type]
    ws.store.add_decision(d)
    return MaintainResult(d, step.version, step.action == "promote")


def _alert_state(ws: Workspace, model: str, state: MaintenanceState, d: Decision) -> None:
    if state.quality_ok is False:
        ws.alert(
            model,
            "quality_failed",
            "data quality blocks training",
            "; ".join(state.quality_problems),
        )
    perf = state.performance
    if "critical_degradation" in d.numbers.get("fired", []) and perf is not None:
        ws.alert(
            model,
            "critical_degradation",
            f"critical degradation of champion {state.champion}",
            f"live {perf.metric} {perf.live:.4g} against baseline {perf.bar:.4g}"
            f"{perf.bar_note} ({perf.degradation:.1%} worse, {perf.points:.4g} points) "
            f"on {perf.n_samples} labelled rows; decision: {d.action}",
            metric=perf.metric,
            live=round(perf.live, 4),
            baseline=round(perf.bar, 4),
            samples=perf.n_samples,
            action=d.action,
        )
    naive = state.naive
    if "naive_baseline" in d.numbers.get("fired", []) and naive is not None and naive.best:
        ws.alert(
            model,
            "naive_better",
            f"champion {state.champion} is not better than a naive baseline",
            d.reasons[0] if d.numbers.get("rule") == "naive_baseline" else
            next((r for r in d.reasons if r.startswith("over the last")), ""),
            metric=naive.metric,
            live=round(naive.live, 4),
            baseline=naive.best[0],
            baseline_value=round(naive.best[1], 4),
            samples=naive.n_samples,
            action=d.action,
        )  # fmt: skip
    if state.drift is not None and state.drift.critical:
        ws.alert(
            model,
            "critical_drift",
            "critical data drift",
            f"{state.drift.share:.0%} of features drifted: {', '.join(state.drift.drifted)}",
        )


def _act(
    ws: Workspace, model: str, d: Decision, by: str, intent: int | None = None
) -> tuple[str | None, bool, str, bool]:
    """Carry out the decision: (version, deployed, outcome, failed). A trained candidate goes
    through the gate and the spec's rollout in :func:`rollout.place`, the path every training
    that deploys takes."""
    reason = d.reasons[0] if d.reasons else d.action
    try:
        if d.action in ("full_retrain", "fine_tune", "incremental_update"):
            run = train if d.action == "full_retrain" else fine_tune
            made = run(
                ws,
                model,
                created_by=by,
                reason=reason,
                deploy=True,
                require_pass=True,
                decision_id=intent,
            )
            version = made.version
        elif d.action == "rollback":
            ev = rollback(ws, model, reason=reason, triggered_by=by)
            return ev.to_version, True, f"rolled back {ev.from_version} → {ev.to_version}", False
        else:
            return None, False, "nothing to do", False
    except (QualityError, InputError) as exc:
        return None, False, f"not done: {exc.message.splitlines()[0]}", False
    except RetrainerError as exc:
        return None, False, f"failed: {exc.code}: {exc.message.splitlines()[0]}", True
    deployed = bool(version.details.get("deployed"))
    said = rollout.outcome(version, ws.store.roles(model))
    note = choice_note(version.details.get("training_choice"))
    return version.version, deployed, said + note, False


def choice_note(choice: dict[str, Any] | None) -> str:
    """The training's window and weighting choice in the decision's words, with every
    candidate it skipped and why (empty without a choice).

    >>> note = choice_note({"metric": "mae", "chosen": {"window": "1/4", "half_life": "none",
    ...     "rows": 912, "value": 1.91}, "candidates": [{"window": "since_change",
    ...     "half_life": "none", "skipped": "no concept drift detected"}]})
    >>> for part in note.split("; ")[1:]:
    ...     print(part)
    chose window 1/4 (912 rows), half-life none: mae 1.91
    skipped since_change: no concept drift detected
    >>> choice_note({"metric": "mae", "chosen": {"window": "all", "half_life": "none",
    ...     "rows": 912, "value": 1.91}, "reused_from": "1.4.0"})
    '; chose window all (912 rows), half-life none: mae 1.91 (the choice of 1.4.0, reused)'
    """
    if not choice or "chosen" not in choice:
        return ""
    c = choice["chosen"]
    value = f": {choice['metric']} {c['value']:.4g}" if c.get("value") is not None else ""
    text = f"; chose window {c['window']} ({c['rows']:,} rows), half-life {c['half_life']}{value}"
    if choice.get("reused_from"):
        text += f" (the choice of {choice['reused_from']}, reused)"
    if choice.get("anew"):  # a reused choice that no longer held (choice.stale)
        text = f"; {choice['anew']}{text}"
    skipped = [
        f"{s['window'] if s['half_life'] == 'none' else 'half-life ' + s['half_life']}: "
        f"{s['skipped']}"
        for s in choice.get("candidates", [])
        if s.get("skipped") and s.get("skipped") != "same rows"
    ]
    return text + ("; skipped " + "; ".join(skipped) if skipped else "")

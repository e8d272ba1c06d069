"""Full training: window → quality gate → fit (with fallback) → register (→ deploy)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pandas as pd

from ..core import feature_sets
from ..core.clock import utcnow
from ..core.entities import Bump, ModelVersion
from ..core.errors import (
    ConfigError,
    ConflictError,
    DistributedError,
    FamilyUnavailableError,
    InputError,
    QualityError,
    RetrainerError,
)
from ..core.faults import fault_point
from ..core.feature_sets import RESERVED_PREFIX
from ..core.fleet import check_single
from ..core.progress import Progress, current, reports
from ..core.spec import ModelSpec
from ..evaluation.conformal import fit_interval
from ..evaluation.gate import GateRecord
from ..evaluation.quality import STRUCTURAL, QualityReport, check_quality
from ..families import family_class
from ..monitoring.reference import ReferenceStats
from ..plumbing.workspace import Workspace
from ..policy.decide import kept_baseline
from . import dask_engine, dask_rows, rollout
from .choice import (
    Incumbent,
    change_seen,
    incumbent,
    last_change,
    only_family,
    reuse_choice,
)
from .fitting import Fitted, check_recipe, fit_family, fold_summary
from .gating import gate_against_champion
from .naive_fold import check_window_season, naive_on_holdout
from .search import SearchRequest, run_if_asked
from .sources import describe, row_stats, training_frame
from .time_inputs import to_try, with_time_inputs


@dataclass(frozen=True)
class TrainingWindow:
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    rows: int


@dataclass(frozen=True)
class TrainPlan:
    """What a training run would do: ``train --dry-run`` shows it and writes nothing."""

    model: str
    family: str
    fallback_family: str | None
    window: TrainingWindow
    class_balance: dict[str, float]
    quality: QualityReport
    bump: Bump
    parent: str | None
    feature_set: dict[str, Any] = field(default_factory=dict)  # the set used, and any fallback

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "fallback_family": self.fallback_family,
            "window": {
                "start": _iso(self.window.start),
                "end": _iso(self.window.end),
                "rows": self.window.rows,
            },
            "class_balance": self.class_balance,
            "quality": self.quality.to_dict(),
            "bump": self.bump,
            "parent": self.parent,
            **({"feature_set": self.feature_set} if self.feature_set else {}),
        }


@dataclass(frozen=True)
class TrainResult:
    version: ModelVersion
    deployed: bool
    fitted: Fitted = field(repr=False)
    plan: TrainPlan = field(repr=False)


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else pd.Timestamp(ts).isoformat()


def load_window(ws: Workspace, spec: ModelSpec, days_back: int | None = None) -> pd.DataFrame:
    """Training rows of the spec's window (or the last ``days_back`` days), oldest first."""
    days = days_back or spec.training.window_days
    start = None
    if days:
        _, _, newest = row_stats(ws, spec)
        if newest is not None:
            start = newest - timedelta(days=days)
    frame = training_frame(ws, spec, start=start)
    if frame.empty:
        where = "" if spec.data.source == "store" else f" (read from the {describe(spec)})"
        raise InputError(
            f"Model {spec.name!r} has no training rows{' in the window' if start else ''}"
            f"{where}. Ingest labelled data first: `retrainer ingest {spec.name} FILE`"
            + ("" if not where else ", or check data.path / data.query in the spec")
            + "."
        )
    feature_sets.resolve(spec, feature_sets.present_columns(frame))  # a set it can train on
    return frame


def choose_features(spec: ModelSpec, frame: pd.DataFrame) -> feature_sets.FeatureChoice:
    """The feature set a training on ``frame`` uses: the flag's, or the fallback's when the
    rows lack the flag's columns (see :func:`retrainer.core.feature_sets.resolve`)."""
    return feature_sets.resolve(spec, feature_sets.present_columns(frame))


def check_target(spec: ModelSpec, frame: pd.DataFrame) -> None:
    """A classifier needs labels: a target of non-integer numbers belongs to a regression."""
    if spec.task != "classification":
        return
    y = pd.to_numeric(frame["target"], errors="coerce").dropna()
    fractional = y[(y % 1) != 0]
    if len(fractional):
        raise InputError(
            f"Model {spec.name!r} is a classifier, but its target {spec.target!r} holds "
            f"continuous numbers ({y.nunique()} distinct values, e.g. "
            f"{', '.join(f'{v:g}' for v in fractional.head(3))}). Set `task: regression` in "
            "the spec, or ingest class labels.",
            target=spec.target,
        )


def quality_of(spec: ModelSpec, frame: pd.DataFrame, trigger: str = "manual") -> QualityReport:
    """The quality report of ``frame`` as a training started by ``trigger`` (``manual``,
    ``api``, ``schedule``) sees it: ``quality.severity`` says whether a violation blocks
    or is a warning."""
    report = check_quality(
        frame,
        task=spec.task,
        target="target",
        numeric=spec.active_features.numeric,
        categorical=spec.active_features.categorical,
        rules=spec.quality,
        time="event_time",
    )
    return report.with_severity(spec.quality.severity.of(trigger))


def version_bump(ws: Workspace, spec: ModelSpec, family: str) -> tuple[Bump, str | None]:
    """major for the first version or a family/schema change, else minor."""
    roles = ws.store.roles(spec.name)
    versions = ws.store.list_versions(spec.name)
    if not versions:
        return "major", None
    base = roles.champion or versions[-1].version
    parent = next(v for v in versions if v.version == base)
    schema = parent.feature_schema
    # the time inputs it learnt are not the spec's columns
    numeric = [c for c in schema.get("numeric", []) if not c.startswith(RESERVED_PREFIX)]
    same_schema = (
        numeric == spec.active_features.numeric
        and list(schema.get("categorical", [])) == spec.active_features.categorical
    )
    if parent.family != family or not same_schema:
        return "major", base
    return "minor", base


def plan(
    ws: Workspace,
    model: str,
    *,
    family: str | None = None,
    days_back: int | None = None,
    frame: pd.DataFrame | None = None,
    trigger: str = "manual",
) -> TrainPlan:
    """What training ``model`` would do, its quality judged as ``trigger`` would see it."""
    spec = ws.model_spec(model)
    ws.artifacts.check_writable()  # an artifact store that cannot be written fails first
    fam = family or spec.family
    try:
        family_class(fam)  # unknown names fail here, before any work
    except FamilyUnavailableError:
        if spec.fallback_family in (None, fam):
            raise  # a library missing and no fallback: say so before any work
    frame = load_window(ws, spec, days_back) if frame is None else frame
    choice = choose_features(spec, frame)
    spec = choice.spec
    check_recipe(spec, fam)  # your own estimator and feature step, before any fit
    check_target(spec, frame)
    check_window_season(spec.monitor.season, frame["event_time"])
    report = quality_of(spec, frame, trigger)
    bump, parent = version_bump(ws, spec, fam)
    balance = {}
    if spec.task == "classification":
        balance = {
            str(k): float(v) for k, v in frame["target"].value_counts(normalize=True).items()
        }
    window = TrainingWindow(frame["event_time"].iloc[0], frame["event_time"].iloc[-1], len(frame))
    return TrainPlan(
        model, fam, spec.fallback_family, window, balance, report, bump, parent, choice.details()
    )


def fingerprint(frame: pd.DataFrame, columns: list[str]) -> str:
    """SHA-256 of the rows' values, each column hashed by its own type (numbers as numbers,
    not formatted as text first: that took 34 s for 2M rows of 25 columns).

    >>> df = pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]})
    >>> fingerprint(df, ["a", "b"]) == fingerprint(df.copy(), ["a", "b"]) != fingerprint(df, ["b"])
    True
    """
    hashed = pd.util.hash_pandas_object(frame[columns], index=False, categorize=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def fit_with_fallback(
    spec: ModelSpec,
    family: str,
    frame: pd.DataFrame,
    change_at: pd.Timestamp | None = None,
    held: Incumbent | None = None,
) -> tuple[Fitted, dict[str, Any]]:
    """Fit ``family``; if it cannot be imported or fails, fit the fallback and say why.
    ``change_at``, ``held``: what the choice knows of the past (:func:`fit_family`)."""
    try:
        fit = dask_engine.attempt(  # engine: dask (a lost worker: once more); else here
            spec.training,
            family,
            lambda _client: fit_family(spec, family, frame, change_at, held),
        )
        return fit, {}
    except (RetrainerError, ImportError, ValueError, RuntimeError, MemoryError) as exc:
        fallback = spec.fallback_family
        fails = InputError | ConfigError | DistributedError  # the fallback would not help
        if isinstance(exc, fails) or fallback is None or fallback == family:
            raise
        reason = f"{type(exc).__name__}: {exc}"
        return fit_family(spec, fallback, frame, change_at, held), {
            "requested": family,
            "reason": reason,
        }


@reports
def train(
    ws: Workspace,
    model: str,
    *,
    family: str | None = None,
    deploy: bool = False,
    created_by: str = "manual",
    reason: str = "",
    days_back: int | None = None,
    allow_quality_warnings: bool = False,
    progress: Progress | None = None,
    force: bool = False,
    require_pass: bool = False,
    decision_id: int | None = None,
    search: SearchRequest | None = None,
) -> TrainResult:
    """Train a new version of ``model`` on its window and register it.

    With ``deploy`` the version becomes champion in the same transaction that registers it,
    unless the gate rejects it against the current champion (``force`` overrides and is
    recorded as forced; ``require_pass`` also refuses an "insufficient" verdict).
    ``search``: run a hyper-parameter search first (:mod:`.search`; the spec's
    ``training.search`` or ``policy.search_every`` may ask for one too).
    ``progress`` hears of each stage (rows, window choice, fit, folds, register).
    ``family``: train that family (the choice tries no other, ``training.choice.families``).
    """
    p = current()  # ``progress``, or the caller's (see :func:`reports`)
    spec = check_single(ws.model_spec(model), "train")
    ws.artifacts.check_writable()  # before loading rows (once per store object)
    if dask_rows.unsupported(ws, spec) is None:  # the window on the Dask cluster
        from .dask_train import train_partitioned

        return train_partitioned(  # type: ignore[no-any-return]
            ws, spec, family=family, deploy=deploy, created_by=created_by, reason=reason,
            allow_quality_warnings=allow_quality_warnings, force=force,
            require_pass=require_pass, decision_id=decision_id, days_back=days_back,
            search=search,
        )  # fmt: skip
    p.stage("load rows", unit="rows")
    frame = load_window(ws, spec, days_back)
    p.advance(len(frame))
    the_plan = plan(ws, model, family=family, days_back=days_back, frame=frame, trigger=created_by)
    spec = choose_features(spec, frame).spec  # the set the plan chose (the flag's, or fallback)
    if family is not None:  # a family asked for by name is the one trained
        spec = only_family(spec)
    if not the_plan.quality.ok and not allow_quality_warnings:
        raise QualityError(
            f"Data quality checks failed for model {model!r}; nothing was trained.\n"
            f"{the_plan.quality.render()}\nFix the data, relax the `quality` rules in the spec, "
            f"or pass --allow-quality-warnings{_severity_hint(the_plan.quality, created_by)}.",
            quality=the_plan.quality.to_dict(),
        )
    spec, searched = run_if_asked(ws, spec, the_plan.family, frame, search)
    decisions = ws.store.decisions(model) if spec.training.choice.enabled else []
    change_at = last_change(decisions)
    versions = ws.store.list_versions(model)
    held = incumbent(versions, ws.store.roles(model).champion)
    spec, reused = reuse_choice(spec, versions, change_seen(decisions))
    held = replace(held, reused=reused)  # keeps the champion's time inputs, unless made anew
    tried = to_try(spec) if spec.training.choice.enabled else ()
    needed = held.inputs  # the champion's, for the gate, and those the choice may try
    for inputs in tried:
        needed = needed | inputs
    frame = with_time_inputs(ws, spec, frame, needed)
    fitted, fallback = fit_with_fallback(spec, the_plan.family, frame, change_at, held)
    fitted.fit_seconds += (searched or {}).get("cpu_seconds", 0.0)  # the search's, too
    window_rows = len(frame)
    frame = frame.iloc[fitted.first_row :]  # the chosen window's rows (training.choice)
    naive = naive_on_holdout(spec, frame, len(fitted.evaluation.holdout_ids))
    bump, parent = the_plan.bump, the_plan.parent
    if fallback or fitted.family != the_plan.family:  # another family won the choice
        bump, parent = version_bump(ws, spec, fitted.family)
    p.stage("gate and register")
    version = register_fitted(
        ws,
        spec,
        fitted,
        frame,
        bump=bump,
        parent=parent,
        kind="full_retrain" if parent else "initial",
        created_by=created_by,
        reason=reason or "full retrain",
        deploy=deploy,
        details={
            **({"fallback": fallback} if fallback else {}),
            **({"feature_set": the_plan.feature_set} if the_plan.feature_set else {}),
            **({"search": searched} if searched else {}),
            **({"naive_holdout": naive} if naive else {}),
            **(
                {"training_choice": fitted.choice.to_dict(), "window_rows": window_rows}
                if fitted.choice
                else {}
            ),
            **_warnings(the_plan.quality),
        },
        force=force,
        require_pass=require_pass,
        decision_id=decision_id,
    )
    p.done()
    return TrainResult(version, bool(version.details.get("deployed")), fitted, the_plan)


def _severity_hint(report: QualityReport, created_by: str) -> str:
    """How to let such a training go on past these violations, when a severity can: the
    ``quality.severity`` key a training started by ``created_by`` is judged by."""
    if all(v.check in STRUCTURAL for v in report.violations):
        return ""
    key = created_by if created_by in ("api", "schedule") else "manual"
    return f" (or set quality.severity.{key}: warn to record them and train when started so)"


def _warnings(report: QualityReport) -> dict[str, Any]:
    """The data-quality warnings the training went ahead with (recorded on the version)."""
    if not report.warnings:
        return {}
    return {"quality_warnings": [w.message for w in report.warnings]}


def offered_rows(details: dict[str, Any] | None, rows: int) -> int:
    """The rows the training's window offered: ``window_rows`` when it chose a part of them."""
    return int((details or {}).get("window_rows", rows))


def _gate_cpu(gate: GateRecord | None) -> float:
    return 0.0 if gate is None or gate.catch_up_fit is None else gate.catch_up_fit.cpu_seconds


def serving_cost(
    spec: ModelSpec, fitted: Fitted, frame: pd.DataFrame, data: bytes
) -> dict[str, Any] | None:
    """Latency and memory of the artifact ``data`` on the holdout's rows, measured in a fresh
    process as serving loads it; None unless the gate sets a latency or memory budget."""
    if not spec.gate.measures_serving:
        return None
    from ..plumbing.serving_cost import measure

    columns = list(fitted.model.schema_.columns)  # the spec's, and any it added (a previous actual)
    hold = frame.iloc[len(frame) - len(fitted.evaluation.holdout_ids) :][columns]
    cal = fitted.calibrator.to_dict() if fitted.calibrator is not None else None
    return measure(data, cal, hold, fitted.family)


def kept_from_champion(
    ws: Workspace, spec: ModelSpec, gate: GateRecord | None, own: dict[str, float]
) -> dict[str, Any] | None:
    """``details["kept_baseline"]`` of a version the gate compared with a critically degraded
    champion it does not recover from (:func:`~retrainer.policy.decide.kept_baseline`): the
    metric, the champion's baseline it keeps, the version whose holdout measured it, and why;
    None otherwise."""
    if gate is None or gate.comparison is None or gate.champion_version is None:
        return None
    cmp = gate.comparison
    if not spec.policy.keep_baseline:
        return None
    try:
        champ = ws.store.get_version(spec.name, gate.champion_version)
    except RetrainerError:
        return None
    bar = champ.baseline.get(cmp.metric)
    value = kept_baseline(
        spec.policy, cmp.metric, bar, cmp.champion, cmp.challenger, own.get(cmp.metric)
    )
    if value is None:
        return None
    origin = champ.baseline_from(cmp.metric)
    return {
        "metric": cmp.metric,
        "value": value,
        "from": origin,
        "reason": (
            f"champion {champ.version} was critically degraded on the gate's {cmp.n_rows} rows "
            f"({cmp.metric} {cmp.champion:.4g} against its baseline {value:.4g}) and this "
            f"version is too ({cmp.challenger:.4g}): it keeps that baseline (of {origin}) "
            f"instead of its own holdout's {own[cmp.metric]:.4g}, so the monitor still sees "
            "the degradation"
        ),
    }


def register_fitted(
    ws: Workspace,
    spec: ModelSpec,
    fitted: Fitted,
    frame: pd.DataFrame,
    *,
    bump: Bump,
    parent: str | None,
    kind: str,
    created_by: str,
    reason: str,
    deploy: bool,
    details: dict[str, Any] | None = None,
    force: bool = False,
    require_pass: bool = False,
    window_start: Any = None,
    decision_id: int | None = None,
    window: Any = None,
) -> ModelVersion:
    """Write the artifact durably, gate it against the champion, then register the version
    and, when ``deploy`` is asked, put it where the gate and the spec's rollout say
    (:func:`rollout.place`: champion, or a shadow/A/B/canary challenger), all in one
    transaction; then send its alerts (:func:`rollout.announce`).

    The gate judged the candidate against one champion; the registering transaction checks
    that it is still the champion (another training may have deployed meanwhile). If it is
    not, the version is registered without a role and a ConflictError says so and how to
    gate it again: deploying on a gate against a replaced champion is what the gate exists
    to prevent, and gating again is the user's call (the message names the commands), not a
    loop here that a stream of deploys could keep busy. A forced deploy skips that check.
    ``window``: the window's summary when its rows stayed on a Dask cluster
    (:class:`retrainer.lifecycle.dask_train.Summary`); ``frame`` then holds the holdout only.
    ``decision_id``: the maintenance decision this training carries out; its outcome names
    the version in the registering transaction."""
    interval = None
    if spec.calibration == "conformal":  # from residuals it was not fitted on; too few fail
        ev = fitted.evaluation  # here, before any artifact is written
        interval = fit_interval(ev.y_true, ev.predictions, spec.calibration_coverage)
    data = fitted.model.save()
    cost = serving_cost(spec, fitted, frame, data)
    gate = gate_against_champion(ws, spec, fitted, frame, len(data), cost)
    placed = rollout.place(
        spec.rollout,
        ws.store.roles(spec.name),
        gate,
        deploy=deploy,
        force=force,
        require_pass=require_pass,
    )
    do_deploy, forced = placed.champion, placed.forced
    offered = offered_rows(details, len(frame) if window is None else window.rows)
    shrunk = rollout.training_shrunk(ws, spec, kind, int(offered))
    art = ws.artifacts.put(spec.name, data)
    extra: dict[str, Any] = dict(details or {})
    if gate is not None:
        extra["gate"] = gate.to_dict()
    if cost is not None:
        extra["serving_cost"] = cost
    if fitted.evaluation.confusion is not None:
        extra["confusion_matrix"] = fitted.evaluation.confusion
    extra["deployed"] = do_deploy
    kept = kept_from_champion(ws, spec, gate, fitted.evaluation.metrics)
    if kept is not None:
        extra["kept_baseline"] = kept
    if forced:
        extra["forced"] = True
    if placed.held:
        extra["held"] = placed.held
    if placed.challenger is not None:
        extra["challenger"] = {"mode": placed.challenger[0], "fraction": placed.challenger[1]}
    if shrunk:
        extra["training_shrunk"] = shrunk
    if decision_id is not None:
        extra["decision_id"] = decision_id
    extra.update(
        holdout_rows=len(fitted.evaluation.holdout_ids),
        holdout_start=fitted.evaluation.holdout_start.isoformat(),
        **(
            {"holdout_days": spec.training.holdout_days}
            if spec.training.holdout_days is not None and fitted.from_recipe
            else {}
        ),
        # the training's whole cost: the evaluation fit, the final fit and any gate fit
        fit_cpu_seconds=round(fitted.fit_seconds + _gate_cpu(gate), 4),
        primary_metric=spec.primary_metric,
    )
    if fitted.folds:
        extra["folds"] = fitted.folds
        extra["folds_summary"] = fold_summary(fitted.folds)
    if fitted.calibrator is not None:
        extra["calibrator"] = fitted.calibrator.to_dict()
        extra["calibration"] = fitted.calibration
    if interval is not None:
        extra["interval"] = interval.to_dict()
    extra.update(fitted.model.lineage())  # e.g. an sklearn estimator and its feature step
    extra["reference"] = (
        window.reference
        if window is not None
        else ReferenceStats.from_frame(
            frame, spec.active_features.numeric, spec.active_features.categorical
        ).to_dict()
    )
    draft = ModelVersion(
        model=spec.name,
        version="0.0.0",
        parent=parent,
        family=fitted.family,
        params=fitted.params,
        created_at=utcnow(),
        created_by=created_by,
        reason=reason,
        kind=kind,
        train_start=window_start
        or (frame["event_time"].iloc[0] if window is None else window.start).to_pydatetime(),
        train_end=(frame["event_time"].iloc[-1] if window is None else window.end).to_pydatetime(),
        n_rows=len(frame) if window is None else window.rows,
        fingerprint=window.fingerprint
        if window is not None
        else fingerprint(frame, ["entity_id", "event_time", "target", *spec.feature_names]),
        feature_schema=fitted.model.schema_.to_dict(),
        metrics=fitted.evaluation.metrics,
        artifact_uri=art.uri,
        sha256=art.sha256,
        hmac=art.hmac,
        size_bytes=art.size_bytes,
        details=extra,
    )
    version = ws.store.register(
        draft,
        bump,
        deploy=do_deploy,
        challenger=placed.challenger,
        reason=reason,
        triggered_by=created_by,
        gate=extra.get("gate"),
        forced=forced,
        expect_champion=False if forced or gate is None else gate.champion_version,
        decision=None
        if decision_id is None
        else (decision_id, "pending: registered {version}; interrupted before it finished"),
    )
    fault_point("train.after_register")
    from .deploy import apply_retention

    stale = version.details.get("stale_gate")
    if stale is not None:
        apply_retention(ws, spec.name)
        raise ConflictError(
            f"Model {spec.name!r}: version {version.version} is registered but not deployed: "
            f"it was gated against champion {stale['gated_against'] or '(none)'}, and the "
            f"champion became {stale['champion']} meanwhile (another deploy). Train again to gate "
            f"against the new champion (`retrainer train {spec.name} --deploy`), judge this "
            f"version on live traffic (`retrainer rollout start {spec.name} "
            f"{version.version}`), or deploy it unjudged (`retrainer deploy {spec.name} "
            f"{version.version}`).",
            model=spec.name,
            version=version.version,
            gated_against=stale["gated_against"],
            champion=stale["champion"],
        )
    rollout.announce(ws, spec, version, placed)
    apply_retention(ws, spec.name)
    return version

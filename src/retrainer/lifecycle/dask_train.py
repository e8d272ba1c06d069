"""A full training whose window stays on the Dask cluster (``training.engine: dask``).

The window is read by the workers (:mod:`.dask_rows`); what this process computes from it:
the feature schema and class labels (reduced on the cluster), the quality report and the
reference statistics (a feature column at a time: the same checks and summaries as a local
training, on the same values), the fingerprint (chained per partition), and the holdout rows
(scored here, as the gate needs them). Every fit — the evaluation fit on the rows before the
holdout, the fit that settles the number of rounds, the final fit on the whole window —
trains on matrices built by the workers from their own partitions. With ``training.choice``
the window and weighting are chosen first by the local procedure over the partitions
(:mod:`.dask_choice`): this process then also holds the window's event times (8 bytes a row).
Walk-forward folds are fitted on the workers too, their test blocks scored there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from ..core.errors import ConfigError
from ..core.progress import current
from ..core.spec import ModelSpec
from ..core.spec_sections import Search
from ..evaluation.quality import QualityReport, Violation
from ..families import dask_boosting
from ..monitoring.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceStats,
    numeric_values,
)
from ..plumbing.workspace import Workspace
from . import dask_rows
from .choice import (
    Incumbent,
    change_seen,
    decide,
    incumbent,
    last_change,
    reuse_choice,
    with_leaves,
)
from .dask_choice import (
    ClusterFolds,
    ClusterRows,
    Recency,
    fingerprint_since,
    fit_calibrated,
    fit_rows,
    sorted_times,
    walk_forward_folds,
)
from .dask_rows import Cut, PartitionedWindow, WindowFacts
from .fitting import (
    Evaluation,
    Fitted,
    at_cap,
    calibration_summary,
    larger,
    make_model,
    score,
    uses_calibration,
)
from .naive_fold import naive_on_holdout
from .search import SearchRequest, asked, search_rows


@dataclass(frozen=True)
class Summary:
    """What registering a version records of the window (its rows stay on the cluster)."""

    rows: int
    start: pd.Timestamp
    end: pd.Timestamp
    fingerprint: str
    reference: dict[str, Any]
    partitions: int


@dataclass(frozen=True)
class Outcome:
    spec: ModelSpec  # with the feature set the window's columns allow
    fitted: Fitted
    holdout: pd.DataFrame  # the holdout rows, oldest first
    summary: Summary
    quality: QualityReport
    class_balance: dict[str, float]
    feature_set: dict[str, Any]
    facts: WindowFacts  # of the whole window (the summary's: of the chosen window's rows)
    searched: dict[str, Any] | None = None  # the hyper-parameter search's record


def train_window(
    ws: Workspace,
    spec: ModelSpec,
    family: str,
    client: Any,
    trigger: str,
    change_at: pd.Timestamp | None = None,
    allow_quality_warnings: bool = False,
    days_back: int | None = None,
    search: tuple[str, Search] | None = None,
    held: Incumbent | None = None,
) -> Outcome:
    """Read ``spec``'s window (or its last ``days_back`` days) on ``client``'s workers,
    check it and fit ``family`` there (choosing the window and weighting first with
    ``training.choice``; ``change_at``: the last change the monitor detected;
    ``held``: what the champion's recipe holds, see :func:`.choice.incumbent`); with
    ``search`` (why, settings), a hyper-parameter search on the rows before the holdout
    first, its trials' fits on the cluster. QualityError before any fit when the checks
    fail and ``allow_quality_warnings`` is not given."""
    from ..core import feature_sets
    from .train import check_target

    p = current()
    _n, _lo, newest = ws.store.training_stats(spec.name)
    start = (
        None
        if newest is None
        else dask_rows.days_before(pd.Timestamp(newest), days_back or spec.training.window_days)
    )
    window = dask_rows.read_window(ws, spec, client, start)
    facts = dask_rows.window_facts(window, spec)
    p.advance(facts.rows)
    choice = feature_sets.resolve(spec, facts.present)
    spec = choice.spec
    check_target(spec, pd.DataFrame({"target": list(facts.labels)}))
    quality, reference, balance, times = _per_column(window, spec, facts, trigger)
    if not quality.ok and not allow_quality_warnings:
        _refuse(spec, quality, trigger)
    cut = dask_rows.holdout_cut(window, spec, facts)
    hold = dask_rows.rows_between(window, cut, None)
    searched = None
    if search is not None:
        schema = dask_rows.schema_of(facts, spec)
        rows = ClusterRows(window, spec, family, facts, schema, sorted_times(times), hold)
        before = ClusterFolds(rows, len(times) - len(hold))
        spec, searched = search_rows(spec, family, before, search[1], search[0])
    p.stage(f"fit {family}")
    fitted, hold, since = _fit(window, spec, family, facts, cut, hold, times, change_at, held)
    fitted.fit_seconds += (searched or {}).get("cpu_seconds", 0.0)  # the search's, too
    names = ["entity_id", "event_time", "target", *spec.feature_names]
    if since is None:
        summary = Summary(
            facts.rows,
            facts.start,
            facts.end,
            dask_rows.fingerprint(window, names),
            reference,
            window.partitions,
        )
    else:  # the chosen window's rows, as a local training records them
        summary = Summary(
            int(since.after(times).sum()),
            since.at,
            facts.end,
            fingerprint_since(window, names, since),
            _reference(window, spec, times, since),
            window.partitions,
        )
    return Outcome(spec, fitted, hold, summary, quality, balance, choice.details(), facts, searched)


def _refuse(spec: ModelSpec, quality: QualityReport, trigger: str) -> None:
    from ..core.errors import QualityError
    from .train import _severity_hint

    raise QualityError(
        f"Data quality checks failed for model {spec.name!r}; nothing was trained.\n"
        f"{quality.render()}\nFix the data, relax the `quality` rules in the spec, "
        f"or pass --allow-quality-warnings{_severity_hint(quality, trigger)}.",
        quality=quality.to_dict(),
    )


def _per_column(
    window: PartitionedWindow, spec: ModelSpec, facts: WindowFacts, trigger: str
) -> tuple[QualityReport, dict[str, Any], dict[str, float], pd.Series]:
    """The quality report and reference statistics of the window, from the event time, the
    target and one feature column at a time in this process; and the event times (in
    partition order: the one column kept)."""
    from .train import quality_of

    base = pd.DataFrame(
        {"event_time": dask_rows.column(window, "event_time"),
         "target": dask_rows.column(window, "target")}
    )  # fmt: skip
    feats = spec.active_features
    whole = quality_of(_only(spec, [], []), base, trigger)
    violations = list(whole.violations)
    warnings = list(whole.warnings)
    missing: dict[str, float] = {}
    outliers: dict[str, float] = {}
    numeric: dict[str, NumericReference] = {}
    categorical: dict[str, CategoricalReference] = {}
    for name in feats.all:
        # without the target: its checks are the whole frame's (once, above), not a column's
        frame = base[["event_time"]].assign(**{name: dask_rows.column(window, name)})
        is_num = name in feats.numeric
        part = quality_of(_only(spec, [name] if is_num else [], [] if is_num else [name]), frame,
                          trigger)  # fmt: skip
        violations += _own(part.violations, name)
        warnings += _own(part.warnings, name)
        missing.update(part.missing)
        outliers.update(part.outliers)
        _summarise(frame, name, is_num, numeric, categorical)
    report = QualityReport(
        whole.n_rows, tuple(violations), whole.class_balance, missing, outliers, tuple(warnings)
    )
    reference = ReferenceStats(n_rows=facts.rows, numeric=numeric, categorical=categorical)
    balance = {}
    if spec.task == "classification":
        balance = {str(k): float(v) for k, v in base["target"].value_counts(normalize=True).items()}
    return report, reference.to_dict(), balance, base["event_time"]


def _summarise(
    frame: pd.DataFrame,
    name: str,
    is_num: bool,
    numeric: dict[str, NumericReference],
    categorical: dict[str, CategoricalReference],
) -> None:
    if is_num:
        numeric[name] = NumericReference.from_values(numeric_values(frame, name))
    else:
        categorical[name] = CategoricalReference.from_series(frame[name])


def _reference(
    window: PartitionedWindow, spec: ModelSpec, times: pd.Series, since: Cut
) -> dict[str, Any]:
    """The reference statistics of the rows at or after ``since`` (the chosen window's), a
    feature column at a time; ``times``: the window's event times in partition order."""
    keep = since.after(times)
    feats = spec.active_features
    numeric: dict[str, NumericReference] = {}
    categorical: dict[str, CategoricalReference] = {}
    for name in feats.all:
        frame = pd.DataFrame({name: dask_rows.column(window, name)[keep]})
        _summarise(frame, name, name in feats.numeric, numeric, categorical)
    rows = int(keep.sum())
    return ReferenceStats(n_rows=rows, numeric=numeric, categorical=categorical).to_dict()


def _only(spec: ModelSpec, numeric: list[str], categorical: list[str]) -> ModelSpec:
    """``spec`` with only these features (and the quality ranges of those)."""
    feats = spec.active_features.model_copy(update={"numeric": numeric, "categorical": categorical})
    quality = spec.quality.model_copy(
        update={"ranges": {k: v for k, v in spec.quality.ranges.items() if k in numeric}}
    )
    return spec.model_copy(update={"features": feats, "feature_sets": {}, "quality": quality})


def _own(found: tuple[Violation, ...], name: str) -> list[Violation]:
    return [v for v in found if v.feature == name]


def _fit(
    window: PartitionedWindow,
    spec: ModelSpec,
    family: str,
    facts: WindowFacts,
    cut: Cut,
    hold: pd.DataFrame,
    times: pd.Series,
    change_at: pd.Timestamp | None,
    held: Incumbent | None = None,
) -> tuple[Fitted, pd.DataFrame, Cut | None]:
    """The evaluation fit (the chosen candidate's with ``training.choice``), scored on the
    holdout, then the final fits on the (chosen) window; also the rows scored and the
    chosen window's start (None: the whole window). ``times``: the window's event times
    in partition order."""
    started = dask_boosting.cpu_seconds()  # the workers' CPU too
    seed = spec.training.seed
    schema = dask_rows.schema_of(facts, spec)
    record, since, recency, first = None, None, None, 0
    rows = ClusterRows(window, spec, family, facts, schema, sorted_times(times), hold)
    if spec.training.choice.enabled:
        (eval_model, eval_cal), first, record = decide(
            spec, family, rows, len(hold), change_at, held
        )
        spec = with_leaves(spec, family, record.chosen.leaves)  # every later fit's recipe
        rows = replace(rows, spec=spec)
        hold = hold.iloc[len(hold) - record.holdout_rows :]  # the rows since a change
        since = rows.cut(first)
        days = record.chosen.half_life_days
        if days is not None:
            recency = Recency(facts.end, days)
        current().stage(f"fit {family}")
    else:
        eval_model, eval_cal = fit_calibrated(window, spec, family, schema, facts, None, cut)
    X, y = hold[spec.feature_names], hold["target"]
    scored = score(eval_model, X, y, eval_cal)
    calibration = calibration_summary(spec, eval_model, X, scored)
    evaluation = Evaluation.of_rows(eval_model, hold, slice(0, len(hold)), scored)
    folds = walk_forward_folds(rows, first) if spec.validation.scheme == "walk_forward" else []
    model, cal = eval_model, eval_cal
    if spec.training.refit_on_full_window and uses_calibration(spec):  # no settling then
        model, cal = fit_calibrated(
            window, spec, family, schema, facts, since, None, recency=recency
        )
    elif spec.training.refit_on_full_window:
        settled = first_size = eval_model.settled_params()
        if first_size is not None and not at_cap(first_size, eval_model.effective_params):
            again = fit_rows(
                window, make_model(spec, family, seed), schema, facts, since, None,
                recency=recency,
            )  # fmt: skip
            settled = larger(again.settled_params(), first_size)
        final = make_model(spec, family, seed, settled)
        model = fit_rows(window, final, schema, facts, since, None, stop=False, recency=recency)
    fitted = Fitted(
        model=model,
        family=family,
        params=eval_model.effective_params,
        evaluation=evaluation,
        folds=folds,
        calibrator=cal,
        calibration=calibration,
        fit_seconds=dask_boosting.cpu_seconds() - started,
        # not refitted here on a shorter window (the window is on the cluster): the gate
        # makes no catch-up fit and judges on the holdout rows after the champion's window
        from_recipe=False,
        choice=record,
    )
    return fitted, hold, since


def train_partitioned(
    ws: Workspace,
    spec: ModelSpec,
    *,
    family: str | None,
    deploy: bool,
    created_by: str,
    reason: str,
    allow_quality_warnings: bool,
    force: bool,
    require_pass: bool,
    decision_id: int | None,
    days_back: int | None = None,
    search: SearchRequest | None = None,
) -> Any:
    """:func:`retrainer.lifecycle.train.train` with the window on the cluster: the same
    checks, gate and registration; a failed cluster is retried once (see
    :func:`retrainer.lifecycle.dask_engine.attempt`)."""
    from ..families import family_class
    from . import dask_engine
    from .train import (
        TrainingWindow,
        TrainPlan,
        TrainResult,
        _warnings,
        register_fitted,
        version_bump,
    )

    fam = family or spec.family
    family_class(fam)  # a missing library fails before the cluster starts
    ask = asked(ws, spec, search)  # as does a search without its extra
    p = current()
    p.stage("load rows", unit="rows")

    decisions = ws.store.decisions(spec.name) if spec.training.choice.enabled else []
    change_at = last_change(decisions)
    versions = ws.store.list_versions(spec.name)
    held = incumbent(versions, ws.store.roles(spec.name).champion)
    if held.inputs.columns:
        raise ConfigError(
            f"The champion of {spec.name!r} learnt inputs made from time "
            f"({', '.join(held.inputs.columns)}; training.choice.previous_actual and "
            "time_features), which the Dask engine does not compute. Retrain it with the "
            "local engine, or set both options to false and retrain locally once before "
            "moving to the Dask engine."
        )
    spec, reused = reuse_choice(spec, versions, change_seen(decisions))
    held = replace(held, reused=reused)  # judged by the choice (choice.stale)
    chosen_spec = spec

    def work(client: Any) -> Outcome:
        return train_window(
            ws, chosen_spec, fam, client, created_by, change_at, allow_quality_warnings,
            days_back, ask, held,
        )  # fmt: skip

    out = dask_engine.attempt(spec.training, fam, work)
    spec = out.spec
    bump, parent = version_bump(ws, spec, fam)
    s = out.summary
    plan = TrainPlan(
        spec.name,
        fam,
        spec.fallback_family,
        TrainingWindow(out.facts.start, out.facts.end, out.facts.rows),
        out.class_balance,
        out.quality,
        bump,
        parent,
        out.feature_set,
    )
    p.stage("gate and register")
    # the previous actual on the holdout, from the holdout's rows (its first row's previous
    # actual lies before it and is not counted)
    naive = naive_on_holdout(spec, out.holdout, len(out.holdout))
    version = register_fitted(
        ws,
        spec,
        out.fitted,
        out.holdout,
        bump=bump,
        parent=parent,
        kind="full_retrain" if parent else "initial",
        created_by=created_by,
        reason=reason or "full retrain",
        deploy=deploy,
        details={
            **({"feature_set": out.feature_set} if out.feature_set else {}),
            **(
                {"training_choice": choice.to_dict(), "window_rows": out.facts.rows}
                if (choice := out.fitted.choice)
                else {}
            ),
            **_warnings(out.quality),
            **({"search": out.searched} if out.searched else {}),
            **({"naive_holdout": naive} if naive else {}),
            "engine": {"name": "dask", "partitions": s.partitions},
        },
        force=force,
        require_pass=require_pass,
        decision_id=decision_id,
        window=s,
    )
    p.done()
    return TrainResult(version, bool(version.details.get("deployed")), out.fitted, plan)

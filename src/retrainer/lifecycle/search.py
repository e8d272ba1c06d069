"""Hyper-parameter search on a full retrain, with Optuna.

A search runs when the caller asks (``retrainer train --search``), when the spec asks on
every full retrain (``training.search.enabled``), or on every Nth full retrain since the last
search (``policy.search_every``). It happens before the fit (and before the window choice,
:mod:`.choice`): the rows before the gate's holdout are cut into ``training.search.folds``
walk-forward folds (:func:`retrainer.evaluation.splits.walk_forward`), each fitted with the
recipe's own evaluation fit (:func:`.fitting.fit_for_evaluation`: early stopping, calibration)
and scored on the gate's primary metric. A trial's value is the mean over its folds; after
each fold the running mean is reported to Optuna's MedianPruner, which stops a trial that is
worse than the median of the trials before it at the same fold. The spec's own parameters are
scored the same way first; the best trial's parameters train the version only when their
value beats that and the improvement passes the gate's paired bootstrap on the folds' test
rows pooled (one-sided p below ``gate.significance``, 0.05 when null, as the window choice
asks of a candidate: :mod:`.choice`); the gate then judges the version on its holdout, rows
the search never saw. The sampler is Optuna's TPE seeded with ``training.search.seed`` (or
``training.seed``): the same rows, seed and trial budget give the same search (a budget in
seconds ends after however many trials fit in it).

The version records the search under ``details["search"]`` (see :func:`run`), and
``retrainer versions --detail`` shows it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np
import pandas as pd

from ..core.custom_metrics import gate_metrics
from ..core.entities import ModelVersion
from ..core.errors import ConfigError, FamilyUnavailableError, InputError, RetrainerError
from ..core.extras import missing_library
from ..core.progress import current
from ..core.spec import ModelSpec
from ..core.spec_sections import Search
from ..evaluation.gate import paired_bootstrap
from ..evaluation.search_space import Dim, space_for
from ..evaluation.splits import Fold, walk_forward
from ..families import FamilyModel, family_class
from ..policy.decide import search_due
from . import dask_engine
from .fitting import fit_for_evaluation, holdout_slices, metric_proba, predict_encoded

if TYPE_CHECKING:
    import optuna

    from ..plumbing.workspace import Workspace

FULL = ("initial", "full_retrain")


@dataclass(frozen=True)
class SearchRequest:
    """A search the caller asks for (``train --search``); a budget given here replaces the
    spec's (``training.search.trials`` / ``seconds``).

    >>> SearchRequest(trials=5).trials
    5
    >>> try:
    ...     SearchRequest(trials=0)
    ... except InputError as exc:
    ...     print(exc.message.split(";")[0])
    --trials (training.search.trials) must be at least 1, got 0
    """

    trials: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.trials is not None and self.trials < 1:
            raise InputError(
                f"--trials (training.search.trials) must be at least 1, got {self.trials}; "
                "a search needs one trial or more, e.g. --trials 20",
                key="training.search.trials",
                value=self.trials,
            )
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise InputError(
                f"--search-seconds (training.search.seconds) must be above 0, got "
                f"{self.seconds}; give the search a time budget, e.g. --search-seconds 600",
                key="training.search.seconds",
                value=self.seconds,
            )

    def settings(self, spec: ModelSpec) -> Search:
        """The spec's search settings with this request's budget."""
        s = spec.training.search
        if self.trials is None and self.seconds is None:
            return s
        return s.model_copy(update={"trials": self.trials, "seconds": self.seconds})


def full_retrains_since_search(versions: Sequence[ModelVersion]) -> int:
    """Full trainings (initial and full retrains) registered after the newest one that ran a
    search: what ``policy.search_every`` counts."""
    count = 0
    for v in sorted(versions, key=lambda v: v.created_at, reverse=True):
        if v.kind not in FULL:
            continue
        if "best_value" in (v.details.get("search") or {}):
            break
        count += 1
    return count


def why_search(ws: Workspace, spec: ModelSpec, request: SearchRequest | None) -> str | None:
    """Why this full retrain searches (the caller's request, the spec, or the policy's
    count), or None when it does not."""
    if request is not None:
        return "asked (train --search)"
    if spec.training.search.enabled:
        return "training.search.enabled"
    if spec.policy.search_every <= 0:
        return None
    return search_due(spec.policy, full_retrains_since_search(ws.store.list_versions(spec.name)))


def with_params(spec: ModelSpec, family: str, params: dict[str, Any]) -> ModelSpec:
    """``spec`` whose ``family`` trains with ``params`` over its own.

    >>> from retrainer.core.spec import parse_spec
    >>> spec = parse_spec({"models": {"m": {"task": "regression", "target": "y",
    ...     "id_column": "i", "time_column": "t", "features": {"numeric": ["x"]},
    ...     "family": "lightgbm", "params": {"num_leaves": 15}}}}, environ={}).models["m"]
    >>> with_params(spec, "lightgbm", {"learning_rate": 0.1}).params_for("lightgbm")
    {'num_leaves': 15, 'learning_rate': 0.1}
    >>> with_params(spec, "xgboost", {"max_depth": 3}).params_for("xgboost")
    {'max_depth': 3}
    """
    if not spec.params_per_family and family == spec.family:
        return spec.model_copy(update={"params": {**spec.params, **params}})
    per = dict(spec.params) if spec.params_per_family else {}
    if spec.params and not spec.params_per_family:
        per = {spec.family: dict(spec.params)}  # flat params belong to the spec's family
    per[family] = {**spec.params_for(family), **params}
    return spec.model_copy(update={"params": per})


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise missing_library("A hyper-parameter search (training.search)", exc) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


FoldScores = tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]


class FoldRows(Protocol):
    """Rows a search scores its folds on somewhere other than a frame in this process (the
    window's partitions on a Dask cluster:
    :class:`retrainer.lifecycle.dask_choice.ClusterFolds`): their count, time-ordered, and
    :func:`fold_scores` of a fold of them."""

    def __len__(self) -> int: ...

    def fold_scores(
        self, spec: ModelSpec, family: str, params: dict[str, Any], fold: Fold
    ) -> FoldScores: ...

    def cpu(self) -> float:
        """The CPU seconds used so far wherever the fits run."""
        ...


Rows: TypeAlias = pd.DataFrame | FoldRows  # a frame here, or rows that score themselves
# what a failed trial raises: recorded as failed, the search goes on (a lost worker does not)
TRIAL_ERRORS = (RetrainerError, ValueError, RuntimeError, ArithmeticError)


def fold_scores(
    spec: ModelSpec, family: str, rows: Rows, params: dict[str, Any], fold: Fold
) -> FoldScores:
    """``family`` with ``params`` over ``spec``'s, fitted on ``fold``'s training rows of
    ``rows`` (the recipe's evaluation fit) and scored on its test rows: the model's classes
    (empty for a regression), the encoded actuals, the predictions and the probabilities the
    metric takes. Runs here or on a Dask worker; :class:`FoldRows` score themselves."""
    if not isinstance(rows, pd.DataFrame):
        return rows.fold_scores(spec, family, params, fold)
    spec = with_params(spec, family, params)
    X, y = rows[spec.feature_names], rows["target"]
    model, cal = fit_for_evaluation(spec, family, X.iloc[fold.train], y.iloc[fold.train])
    y_enc = model.encode_target(y.iloc[fold.test])
    pred, proba = predict_encoded(model, X.iloc[fold.test], cal)
    return scored_fold(model, y_enc, pred, proba)


def scored_fold(
    model: FamilyModel, y_enc: np.ndarray, pred: np.ndarray, proba: np.ndarray | None
) -> FoldScores:
    """A fold's :data:`FoldScores` from its model and its test rows' encoded actuals,
    predictions and class probabilities."""
    classes = [str(c) for c in model.classes_] if model.task == "classification" else []
    return classes, y_enc, pred, metric_proba(proba)


def fold_value(
    spec: ModelSpec, family: str, rows: Rows, params: dict[str, Any], fold: Fold
) -> tuple[float, float]:
    """The primary metric of :func:`fold_scores` and the CPU seconds it took."""
    started = cpu_of(rows)
    _, y, pred, proba = fold_scores(spec, family, rows, params, fold)
    measure = gate_metrics(spec.gate, spec.task)[spec.primary_metric]
    return float(measure.compute(y, pred, proba)), cpu_of(rows) - started


def cpu_of(rows: Rows) -> float:
    """CPU seconds so far where ``rows`` are fitted: this process's for a frame."""
    return time.process_time() if isinstance(rows, pd.DataFrame) else rows.cpu()


def p_value(
    objective: Objective,
    defaults: Sequence[FoldScores],
    best: Sequence[FoldScores],
    samples: int,
    seed: int,
) -> float | None:
    """The one-sided p-value of the best parameters' improvement over the defaults on the
    folds' test rows pooled, by the gate's paired bootstrap; None when the folds' models
    know different classes (their encoded labels cannot be pooled)."""
    if len({tuple(f[0]) for f in [*defaults, *best]}) > 1:
        return None
    y = np.concatenate([f[1] for f in defaults])

    def pooled(scores: Sequence[FoldScores]) -> tuple[np.ndarray, np.ndarray | None]:
        probas = [f[3] for f in scores if f[3] is not None]
        proba = np.concatenate(probas) if len(probas) == len(scores) else None
        return np.concatenate([f[2] for f in scores]), proba

    d = paired_bootstrap(
        objective.measure, y, pooled(defaults), pooled(best), samples=samples, seed=seed
    )
    return float((1 + np.sum(d <= 0)) / (len(d) + 1))


class Objective:
    """The mean of the primary metric over walk-forward folds of ``rows`` (time-ordered) for
    one set of parameters; called by Optuna with a trial."""

    def __init__(self, spec: ModelSpec, family: str, rows: Rows, folds: int, pruning: bool) -> None:
        self.spec, self.family, self.rows, self.pruning = spec, family, rows, pruning
        self.metric = spec.primary_metric
        self.measure = gate_metrics(spec.gate, spec.task)[self.metric]
        try:
            self.folds = walk_forward(len(rows), folds, spec.validation.gap)
        except InputError as exc:
            said = exc.message.replace("validation.folds", "training.search.folds")
            raise InputError(
                f"Model {spec.name!r}: the search's walk-forward over the {len(rows)} rows "
                f"before the gate's holdout: {said}",
                key="training.search.folds",
            ) from None
        self.space = space_for(family)

    @property
    def direction(self) -> str:
        return "maximize" if self.measure.bigger_is_better else "minimize"

    def report(self, trial: Any, values: list[float], step: int) -> bool:
        """Tell ``trial`` its running mean after fold ``step``; whether the pruner stops it."""
        trial.set_user_attr("folds", [round(v, 6) for v in values])
        trial.report(sum(values) / len(values), step)
        return self.pruning and bool(trial.should_prune())

    def evaluate(self, params: dict[str, Any], trial: Any = None) -> tuple[float, list[float]]:
        """(mean, per-fold values) of ``params``; with ``trial``, each running mean is
        reported and a trial the pruner stops raises ``optuna.TrialPruned``."""
        values: list[float] = []
        for fold in self.folds:
            values.append(fold_value(self.spec, self.family, self.rows, params, fold)[0])
            if trial is not None and self.report(trial, values, fold.index):
                raise _optuna().TrialPruned()
        return sum(values) / len(values), values

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {d.name: _suggest(trial, d) for d in self.space}

    def __call__(self, trial: Any) -> float:
        started = cpu_of(self.rows)
        try:
            return self.evaluate(self.suggest(trial), trial)[0]
        finally:
            trial.set_user_attr("cpu_seconds", round(cpu_of(self.rows) - started, 4))
            current().advance()


def _suggest(trial: Any, d: Dim) -> int | float:
    if d.type == "int":
        return int(trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log))
    return float(trial.suggest_float(d.name, d.low, d.high, log=d.log))


def make_study(direction: str, settings: Search, seed: int) -> optuna.Study:
    """An in-memory study: TPE seeded with ``seed`` (its random start: a third of the trial
    budget, 3 to 10 trials), and the median pruner from the third trial on."""
    optuna = _optuna()
    startup = 10 if settings.trials is None else max(3, min(10, settings.trials // 3))
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        if settings.pruning
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)


def _trial_row(t: Any) -> dict[str, Any]:
    value = t.value if t.value is not None and math.isfinite(t.value) else None
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": None if value is None else round(value, 6),
        "params": t.params,
        "folds": t.user_attrs.get("folds", []),
        "cpu_seconds": t.user_attrs.get("cpu_seconds"),
    }


def run(
    spec: ModelSpec,
    family: str,
    frame: pd.DataFrame,
    settings: Search,
    why: str,
    client: Any = None,
) -> tuple[ModelSpec, dict[str, Any]]:
    """Search ``family``'s space on ``frame`` (the window, oldest first; its holdout is
    left out) and return the spec that trains with the chosen parameters and the record:
    trigger, metric and direction, rows and folds, space, budget, seed, trial counts
    (complete, pruned, failed), the defaults' value and parameters, the best trial's value and
    parameters, which was chosen, CPU and wall seconds, and every trial. With a Dask
    ``client`` the trials run in parallel on its workers (:mod:`.search_dask`)."""
    train_part, _ = holdout_slices(spec, frame)
    return search_rows(spec, family, frame.iloc[train_part], settings, why, client)


def search_rows(
    spec: ModelSpec,
    family: str,
    rows: Rows,
    settings: Search,
    why: str,
    client: Any = None,
) -> tuple[ModelSpec, dict[str, Any]]:
    """:func:`run` on ``rows``, the rows before the gate's holdout: a frame (its trials in
    parallel on the workers of a Dask ``client``) or :class:`FoldRows` (the window's
    partitions: the trials one after another, each fold's fits on the cluster)."""
    optuna = _optuna()
    try:
        space_for(family)
    except ValueError as exc:
        raise ConfigError(f"Model {spec.name!r}: {exc}.", family=family) from None
    if not isinstance(rows, pd.DataFrame):
        client = None  # each fold's fits already spread over the cluster
    cpu0, wall0 = cpu_of(rows), time.perf_counter()
    objective = Objective(spec, family, rows, settings.folds, settings.pruning)
    seed = spec.training.seed if settings.seed is None else settings.seed
    current().stage(f"search {family}", total=settings.trials, unit="trials")
    study = make_study(objective.direction, settings, seed)
    worker_cpu, parallel = 0.0, 1
    if client is None:
        default_folds = objective.evaluate({})[1]
        study.optimize(
            objective, n_trials=settings.trials, timeout=settings.seconds, catch=TRIAL_ERRORS
        )
    else:
        from . import search_dask

        parallel = search_dask.workers(client)
        default_folds, worker_cpu = search_dask.defaults_on(client, objective, objective.rows)
        worker_cpu += search_dask.optimize_on(client, study, objective, settings)
    default_value = sum(default_folds) / len(default_folds)
    trials = study.trials
    states = [t.state.name.lower() for t in trials]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if done else None
    best_value = None if best is None else float(best.values[0])
    better = objective.measure.better
    use = best_value is not None and (
        not math.isfinite(default_value) or better(best_value, default_value)
    )
    alpha, p = spec.gate.live_significance, None
    if use and best is not None and math.isfinite(default_value):
        scored = _scores_of(objective, [{}, dict(best.params)], client)
        p = p_value(objective, scored[0], scored[1], spec.gate.bootstrap_samples, seed)
        use = p is None or p < alpha
    chosen = dict(best.params) if use and best is not None else {}
    recipe = family_class(family).default_params | spec.params_for(family)
    record: dict[str, Any] = {
        "trigger": why,
        "family": family,
        "metric": objective.metric,
        "direction": objective.direction,
        "objective": f"mean {objective.metric} over {settings.folds} walk-forward folds of "
        f"the {len(rows):,} rows before the gate's holdout",
        "rows": len(rows),
        "folds": settings.folds,
        "space": [d.to_dict() for d in objective.space],
        "budget": {"trials": settings.trials, "seconds": settings.seconds},
        "seed": seed,
        "pruning": settings.pruning,
        "parallel": parallel,
        "trials": {s: states.count(s) for s in ("complete", "pruned", "fail")},
        "default_value": round(default_value, 6),
        "default_folds": [round(v, 6) for v in default_folds],
        "default_params": {d.name: recipe.get(d.name) for d in objective.space},
        "best_value": None if best_value is None else round(best_value, 6),
        "best_params": {} if best is None else dict(best.params),
        "best_trial": None if best is None else best.number,
        "p_value": None if p is None else round(p, 4),
        "significance": alpha,
        "chosen": "search" if use else "defaults",
        "params": chosen,
        "cpu_seconds": round(cpu_of(rows) - cpu0 + worker_cpu, 4),
        **({"workers_cpu_seconds": round(worker_cpu, 4)} if client is not None else {}),
        "wall_seconds": round(time.perf_counter() - wall0, 3),
        "history": [_trial_row(t) for t in trials],
    }
    return with_params(spec, family, chosen), record


def _scores_of(
    objective: Objective, params: list[dict[str, Any]], client: Any = None
) -> list[list[FoldScores]]:
    """:func:`fold_scores` of each of ``params`` on every fold (on the workers with a Dask
    ``client``)."""
    o = objective
    if client is None:
        return [[fold_scores(o.spec, o.family, o.rows, p, f) for f in o.folds] for p in params]
    futures = [
        [client.submit(fold_scores, o.spec, o.family, o.rows, p, f, pure=False) for f in o.folds]
        for p in params
    ]
    return [list(client.gather(row)) for row in futures]


def asked(
    ws: Workspace, spec: ModelSpec, request: SearchRequest | None
) -> tuple[str, Search] | None:
    """Why this full retrain searches and with which settings (:func:`why_search`), or None
    when it does not; a missing ``search`` extra fails here, before any work."""
    why = why_search(ws, spec, request)
    if why is None:
        return None
    _optuna()
    return why, request.settings(spec) if request is not None else spec.training.search


def run_if_asked(
    ws: Workspace,
    spec: ModelSpec,
    family: str,
    frame: pd.DataFrame,
    request: SearchRequest | None,
) -> tuple[ModelSpec, dict[str, Any] | None]:
    """The search this full retrain runs, if any (:func:`asked`): the spec that trains
    with its parameters and its record; ``(spec, None)`` without one. A family whose library
    is missing is not searched (the fallback trains; the record says why)."""
    ask = asked(ws, spec, request)
    if ask is None:
        return spec, None
    why, settings = ask
    try:
        family_class(family)
    except FamilyUnavailableError as exc:
        return spec, {"trigger": why, "family": family, "skipped": exc.message}
    with dask_engine.engine(spec.training, family) as client:  # dask: trials on its workers
        return run(spec, family, frame, settings, why, client)

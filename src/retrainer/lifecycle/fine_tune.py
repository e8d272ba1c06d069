"""Fine-tune: warm-start the champion on rows newer than its window; a patch version."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd

from ..core import feature_sets
from ..core.entities import ModelVersion
from ..core.errors import CapabilityError, InputError, NoChampion
from ..core.fleet import check_single
from ..core.progress import Progress, current, reports
from ..core.spec import ModelSpec
from ..evaluation.splits import temporal_holdout
from ..families import FamilyModel, ValidationSet, family_class, load_model
from ..plumbing.workspace import Workspace
from .fitting import Evaluation, Fitted, score
from .gating import window_min_rows
from .predictor import load_predictor
from .sources import row_stats, training_frame
from .time_inputs import TimeInputs, with_inputs, with_time_inputs
from .train import register_fitted


@dataclass(frozen=True)
class FineTuneResult:
    version: ModelVersion
    deployed: bool
    champion_metrics: dict[str, float]
    fitted: Fitted = field(repr=False)


def new_rows(ws: Workspace, model: str, champion: ModelVersion, days: int | None) -> pd.DataFrame:
    """The rows a fine-tune learns: those after the champion's window (or of the last
    ``days`` days), from the store and the model's data source."""
    spec = ws.model_spec(model)
    if days:
        _, _, newest = row_stats(ws, spec)
        start = (newest or champion.train_end or pd.Timestamp.now()) - timedelta(days=days)
        return training_frame(ws, spec, start=start)
    return training_frame(ws, spec, after=champion.train_end)


def learning_rate_factor(spec: ModelSpec, model: FamilyModel) -> float:
    """The factor the fine-tune's rounds scale the model's learning rate by: the spec's
    ``fine_tune.learning_rate_factor``, or ``fine_tune.learning_rate`` (absolute) over the
    model's own rate.

    >>> from retrainer.core.spec import parse_spec
    >>> from retrainer.lifecycle.fitting import make_model
    >>> spec = parse_spec({"models": {"m": {"task": "regression", "target": "y",
    ...     "id_column": "id", "time_column": "t", "features": {"numeric": ["x"]},
    ...     "family": "lightgbm", "params": {"learning_rate": 0.1},
    ...     "fine_tune": {"learning_rate": 0.03}}}}, environ={}).models["m"]
    >>> round(learning_rate_factor(spec, make_model(spec, "lightgbm", 0)), 6)
    0.3
    """
    absolute = spec.fine_tune.learning_rate
    if absolute is None:
        return spec.fine_tune.learning_rate_factor
    base = model.effective_params.get("learning_rate")
    if base is None:
        raise InputError(
            f"fine_tune.learning_rate is set for model {spec.name!r}, but its "
            f"{model.name!r} family has no learning rate. Remove fine_tune.learning_rate "
            "(it applies to lightgbm, xgboost and catboost), or use learning_rate_factor."
        )
    return float(absolute) / float(base)


@reports
def fine_tune(
    ws: Workspace,
    model: str,
    *,
    days: int | None = None,
    deploy: bool = False,
    created_by: str = "manual",
    reason: str = "fine-tune on new rows",
    force: bool = False,
    require_pass: bool = False,
    decision_id: int | None = None,
    progress: Progress | None = None,
) -> FineTuneResult:
    """Continue training the champion on new rows and register a patch version (``progress``
    hears of each stage: new rows, fine-tune, register)."""
    p = current()  # ``progress``, or the caller's
    spec = check_single(ws.model_spec(model), "fine-tune")
    ws.artifacts.check_writable()  # an artifact store that cannot be written fails first
    roles = ws.store.roles(model)
    if roles.champion is None:
        raise NoChampion(
            f"Model {model!r} has no champion to fine-tune. Train one first: "
            f"`retrainer train {model} --deploy`."
        )
    champion = ws.store.get_version(model, roles.champion)
    caps = family_class(champion.family).capabilities
    if caps.warm_start:  # the champion's own may be narrower (its estimator, its members)
        caps = ws.load(model, champion.version).capabilities
    if not caps.warm_start:
        final = champion.details.get("estimator", {}).get("final")
        raise CapabilityError(
            f"The champion of {model!r} ({champion.version}) is a {champion.family!r} model"
            f"{f' ({final}, with neither partial_fit nor warm_start)' if final else ''}, "
            "which cannot warm-start. A full retrain is the way: `retrainer train "
            f"{model}`."
        )
    schema = champion.feature_schema
    p.stage("load new rows", unit="rows")
    frame = new_rows(ws, model, champion, days)
    p.advance(len(frame))
    if len(frame):  # the set a training on these rows would use (the flag's, or fallback)
        spec = feature_sets.resolve(spec, feature_sets.present_columns(frame)).spec
    learnt = TimeInputs.of_columns(schema["numeric"])  # and any time inputs it learnt
    inputs = with_inputs(spec, learnt)
    frame = with_time_inputs(ws, spec, frame, learnt)
    if (list(schema["numeric"]), list(schema["categorical"])) != (
        inputs.active_features.numeric,
        inputs.active_features.categorical,
    ):
        raise CapabilityError(
            f"The spec's features of {model!r} differ from champion {champion.version}'s "
            f"({schema['numeric'] + schema['categorical']}). A feature-schema change needs a "
            f"new major version: run a full retrain (`retrainer train {model}`)."
        )
    if len(frame) < spec.fine_tune.min_rows:
        raise InputError(
            f"Model {model!r} has {len(frame)} new rows since champion {champion.version}'s "
            f"window ended ({champion.train_end}); fine-tune.min_rows is "
            f"{spec.fine_tune.min_rows}. Wait for more labelled rows, use --days N, or lower "
            "fine_tune.min_rows."
        )
    p.stage(f"fine-tune {champion.family}")
    started = time.process_time()
    base = load_predictor(ws, champion)
    tuned = load_model(
        ws.artifact_bytes(champion), threads=spec.training.threads
    )  # a fresh copy to train further
    X, y = frame[inputs.feature_names], frame["target"]
    fit_part, val = temporal_holdout(len(frame), spec.fine_tune.validation_fraction)
    k = window_min_rows(ws, spec).validation_rows(len(frame), spec.fine_tune.validation_fraction)
    if k > val.stop - val.start:  # a small window: the slice its scaled gate minimum needs
        fit_part, val = slice(0, len(frame) - k), slice(len(frame) - k, len(frame))
    before = _size(tuned)
    tuned.fine_tune(
        X.iloc[fit_part],
        y.iloc[fit_part],
        ValidationSet(X.iloc[val], y.iloc[val]),
        learning_rate_factor=learning_rate_factor(spec, tuned),
        rounds=spec.fine_tune.rounds,
    )
    scored = score(tuned, X.iloc[val], y.iloc[val], base.calibrator)
    champ_metrics = score(base.model, X.iloc[val], y.iloc[val], base.calibrator)[0]
    evaluation = Evaluation.of_rows(tuned, frame, val, scored)
    fitted = Fitted(
        model=tuned,
        family=champion.family,
        params=champion.params,
        evaluation=evaluation,
        calibrator=base.calibrator,
        fit_seconds=time.process_time() - started,
        from_recipe=False,
    )
    p.stage("gate and register")
    version = register_fitted(
        ws,
        spec,
        fitted,
        frame,
        bump="patch",
        parent=champion.version,
        kind="fine_tune",
        created_by=created_by,
        reason=reason,
        deploy=deploy,
        details={
            "base_rows": champion.n_rows,
            "champion_metrics_on_validation": champ_metrics,
            **_rounds_choice(spec, before, _size(tuned), val.stop - val.start),
        },
        window_start=champion.train_start,
        force=force,
        require_pass=require_pass,
        decision_id=decision_id,
    )
    p.done()
    return FineTuneResult(version, version.details["deployed"], champ_metrics, fitted)


def _size(model: FamilyModel) -> int | None:
    """The rounds (or trees) a boosting model predicts with; None for other families."""
    settled = model.settled_params()
    return None if settled is None else int(next(iter(settled.values())))


def _rounds_choice(
    spec: ModelSpec, before: int | None, after: int | None, validation_rows: int
) -> dict[str, object]:
    """How many rounds the fine-tune added: early stopping on its validation slice (the
    newest rows) chose them, up to ``fine_tune.rounds``.

    >>> from retrainer.core.spec_sections import FineTune
    >>> class S: fine_tune = FineTune(rounds=100)
    >>> _rounds_choice(S, 120, 157, 40)["training_choice"]["rounds"]
    {'added': 37, 'most': 100, 'chosen_by': 'early stopping on 40 validation rows'}
    """
    if before is None or after is None:
        return {}
    rounds = {
        "added": after - before,
        "most": spec.fine_tune.rounds,
        "chosen_by": f"early stopping on {validation_rows} validation rows",
    }
    return {"training_choice": {"rounds": rounds}}

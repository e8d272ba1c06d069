"""Fit and evaluate one family on a time-ordered frame. Pure computation, no storage.

The newest ``holdout_fraction`` of rows (or the window's last ``holdout_days`` days) measures
the model; walk-forward folds (when the spec asks) measure it again in time order; then the
model is refitted on the whole window (minus the newest slice when it is kept to fit the
calibration map). A boosting family first settles its number of rounds by early stopping on the
newest 10% of the window (the larger of that and the evaluation fit's estimate, see
:func:`larger`), then learns every row.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import FamilyUnavailableError
from ..core.metrics import compute_all
from ..core.progress import current
from ..core.spec import ModelSpec
from ..evaluation.calibration import Calibrator, calibration_report, fit_calibrator
from ..evaluation.splits import holdout_by_days, temporal_holdout, walk_forward
from ..families import FamilyModel, ValidationSet, family_class
from ..families.feature_step import FeatureStep
from .choice import (
    ChoiceRecord,
    Incumbent,
    choose,
    inputs_of,
    recency_weights,
    with_leaves,
    with_params,
)
from .time_inputs import with_inputs

EARLY_STOP_FRACTION = 0.1
CALIBRATION_FRACTION = 0.1


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    y_true: np.ndarray  # encoded (class indices or floats)
    predictions: np.ndarray  # encoded predictions on the holdout
    proba: np.ndarray | None
    holdout_ids: list[str]
    holdout_start: pd.Timestamp
    # classification: {"labels": [...], "matrix": rows actual x columns predicted} on the holdout
    confusion: dict[str, Any] | None = None

    @classmethod
    def of_rows(
        cls,
        model: FamilyModel,
        frame: pd.DataFrame,
        rows: slice,
        scored: tuple[dict[str, float], np.ndarray, np.ndarray, np.ndarray | None],
    ) -> Evaluation:
        """The evaluation of ``model`` on ``frame``'s ``rows`` (a slice at the end of the
        window), from what :func:`score` gave on them; a classifier's confusion matrix too."""
        metrics, y_enc, pred, proba = scored
        confusion = (
            confusion_matrix(model.classes_, y_enc, pred)
            if model.task == "classification"
            else None
        )
        return cls(
            metrics,
            y_enc,
            pred,
            proba,
            frame["entity_id"].iloc[rows].tolist(),
            frame["event_time"].iloc[rows.start],
            confusion,
        )


@dataclass
class Fitted:
    model: FamilyModel
    family: str
    params: dict[str, Any]
    evaluation: Evaluation
    folds: list[dict[str, float]] = field(default_factory=list)
    calibrator: Calibrator | None = None
    calibration: dict[str, Any] | None = None
    fit_seconds: float = 0.0
    # Made by the recipe from rows alone (a full fit), so it can be fitted again on a shorter
    # window; a fine-tune continues the champion and cannot.
    from_recipe: bool = True
    # the chosen window and weighting (training.choice); the model learnt frame[first_row:]
    choice: ChoiceRecord | None = None
    first_row: int = 0


def make_model(
    spec: ModelSpec, family: str, seed: int, settled: dict[str, Any] | None = None
) -> FamilyModel:
    params = spec.params_for(family)
    params.update(settled or {})
    klass = family_class(family)
    model = klass(
        spec.task,
        spec.active_features.numeric,
        spec.active_features.categorical,
        params,
        seed,
        threads=spec.training.threads,
    )
    transform = spec.active_features.transform
    if transform is not None and klass.takes_feature_step:  # the model applies it everywhere
        model.feature_step = FeatureStep.load(transform)
    return model


def check_recipe(spec: ModelSpec, family: str) -> None:
    """Import and check the code of the user's own that ``family``'s recipe names (the
    sklearn family's estimator, the feature step), so a bad path stops a training, or a
    ``train --dry-run``, before any work: InputError naming the path and what was found."""
    try:
        klass = family_class(family)
    except FamilyUnavailableError:
        return  # said by the plan, or the fallback trains
    if klass.takes_feature_step:
        make_model(spec, family, spec.training.seed).check_recipe()


def fit_with_early_stopping(
    model: FamilyModel, X: pd.DataFrame, y: pd.Series, weight: np.ndarray | None = None
) -> FamilyModel:
    """Fit, holding the newest 10% out for early stopping where the family uses it."""
    n_val = int(len(X) * EARLY_STOP_FRACTION)
    if n_val < 20 or len(X) - n_val < 20:
        return model.fit(X, y, weight=weight)
    cut = len(X) - n_val
    w = None if weight is None else weight[:cut]
    val = ValidationSet(X.iloc[cut:], y.iloc[cut:])
    return model.fit(X.iloc[:cut], y.iloc[:cut], val, weight=w)


def predict_encoded(
    model: FamilyModel, X: pd.DataFrame, calibrator: Calibrator | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    raw = model.predict_raw(X)
    if model.task == "regression":
        return raw, None
    if calibrator is not None:
        raw = calibrator.apply(raw)
    return np.argmax(raw, axis=1), raw


def metric_proba(proba: np.ndarray | None) -> np.ndarray | None:
    """What the metrics take of class probabilities: a binary classifier's positive column,
    a multi-class one's matrix, None for a regression.

    >>> metric_proba(np.array([[0.25, 0.75], [0.5, 0.5]])).tolist(), metric_proba(None)
    ([0.75, 0.5], None)
    """
    return proba[:, 1] if proba is not None and proba.shape[1] == 2 else proba


def score(
    model: FamilyModel, X: pd.DataFrame, y: pd.Series, cal: Calibrator | None = None
) -> tuple[dict[str, float], np.ndarray, np.ndarray, np.ndarray | None]:
    y_enc = model.encode_target(y)
    pred, proba = predict_encoded(model, X, cal)
    return compute_all(model.task, y_enc, pred, metric_proba(proba)), y_enc, pred, proba


def larger(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """The larger of two early-stopping estimates of a model's size, per parameter.

    Both err low: each stops at the first minimum of a noisy curve on a slice a tenth of its
    rows, and the final fit learns from more rows than either. The evaluation fit's estimate
    (on the slice before its holdout) and the whole window's are two draws of that error.

    >>> larger({"n_estimators": 60}, {"n_estimators": 85}), larger(None, {"n_estimators": 9})
    ({'n_estimators': 85}, None)
    """
    if a is None or b is None:
        return a
    return {k: max(v, b.get(k, v)) for k, v in a.items()}


def at_cap(settled: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether an early-stopping estimate already reached the most its recipe allows.

    >>> at_cap({"n_estimators": 200}, {"n_estimators": 200}), at_cap({"n_estimators": 90}, {})
    (True, False)
    """
    return all(v >= params.get(k, math.inf) for k, v in settled.items())


def settle_size(
    spec: ModelSpec,
    family: str,
    eval_model: FamilyModel,
    X: pd.DataFrame,
    y: pd.Series,
    weight: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """The size of the final fit on every row: early stopping on the newest 10% of the whole
    window, or the evaluation fit's estimate when that is larger (see :func:`larger`). None for
    a family that settles nothing. When the evaluation fit already ran to its cap no estimate
    can be larger, so the second early-stopping fit is skipped."""
    first = eval_model.settled_params()
    if first is None or at_cap(first, eval_model.effective_params):
        return first
    settle = fit_with_early_stopping(
        make_model(spec, family, seed=spec.training.seed), X, y, weight
    )
    return larger(settle.settled_params(), first)


def refit_members(
    spec: ModelSpec,
    members: list[FamilyModel],
    X: pd.DataFrame,
    y: pd.Series,
    weight: np.ndarray | None = None,
) -> FamilyModel:
    """A blend's final fit (``training.choice.blend``): each member, of the evaluation fit's
    ``members``, refitted on every row at the size it settles (:func:`settle_size`) with its
    own recipe, then blended again."""
    from ..families.ensemble import EnsembleModel

    seed = spec.training.seed
    final = []
    for member in members:
        own = with_params(spec, member.name, member.params)
        size = settle_size(own, member.name, member, X, y, weight)
        final.append(make_model(own, member.name, seed, size).fit(X, y, weight=weight))
    return EnsembleModel.of(final)


def uses_calibration(spec: ModelSpec) -> bool:
    return spec.task == "classification" and spec.calibration != "none"


def fit_for_evaluation(
    spec: ModelSpec,
    family: str,
    X: pd.DataFrame,
    y: pd.Series,
    weight: np.ndarray | None = None,
) -> tuple[FamilyModel, Calibrator | None]:
    """The recipe's fit on time-ordered rows: early stopping on the newest 10% where the
    family uses it, and the calibration map on the newest slice when the spec asks for one.
    ``weight``: one per row (recency weighting, see :mod:`.choice`)."""
    seed = spec.training.seed
    if not uses_calibration(spec):
        return fit_with_early_stopping(make_model(spec, family, seed), X, y, weight), None
    n_cal = max(20, int(len(X) * CALIBRATION_FRACTION))
    w = None if weight is None else weight[:-n_cal]
    m = fit_with_early_stopping(make_model(spec, family, seed), X.iloc[:-n_cal], y.iloc[:-n_cal], w)
    cal_y = m.encode_target(y.iloc[-n_cal:])
    return m, fit_calibrator(spec.calibration, m.predict_raw(X.iloc[-n_cal:]), cal_y)


def calibration_summary(
    spec: ModelSpec,
    model: FamilyModel,
    X_hold: pd.DataFrame,
    scored: tuple[dict[str, float], np.ndarray, np.ndarray, np.ndarray | None],
) -> dict[str, Any] | None:
    """The version's ``calibration`` record: the method and how the holdout's raw and
    calibrated probabilities compare (:func:`score`'s ``scored``); None without one."""
    if not uses_calibration(spec):
        return None
    _, y_enc, _, proba = scored
    raw = model.predict_raw(X_hold)
    report = calibration_report(raw, proba if proba is not None else raw, y_enc)
    return {"method": spec.calibration, **report.to_dict()}


def holdout_slices(spec: ModelSpec, frame: pd.DataFrame) -> tuple[slice, slice]:
    """The rows that train and the rows that measure: the window's last
    ``training.holdout_days`` days when set, else its newest ``holdout_fraction``."""
    days = spec.training.holdout_days
    if days is not None:
        return holdout_by_days(frame["event_time"], days)
    return temporal_holdout(len(frame), spec.training.holdout_fraction)


def fit_family(
    spec: ModelSpec,
    family: str,
    frame: pd.DataFrame,
    change_at: pd.Timestamp | None = None,
    held: Incumbent | None = None,
) -> Fitted:
    """Evaluate on the temporal holdout (and folds), then refit for serving. With
    ``training.choice`` enabled the window and weighting are chosen first (:mod:`.choice`;
    ``change_at``: the last concept drift detected; ``held``: what the champion's recipe
    holds, see :func:`.choice.incumbent`) and the model learns ``frame`` from the chosen
    window's start (``Fitted.first_row``)."""
    started = time.process_time()
    seed = spec.training.seed
    train_part, hold = holdout_slices(spec, frame)
    use_cal = uses_calibration(spec)
    record, first, weight = None, 0, None
    if spec.training.choice.enabled:  # reports its candidates as a stage of their own
        n_hold = hold.stop - hold.start
        (eval_model, eval_cal), first, record = choose(spec, family, frame, n_hold, change_at, held)
        family = record.chosen.family or family  # another family may have won the choice
        spec = with_leaves(spec, family, record.chosen.leaves)  # every later fit's recipe
        if record.chosen.members:  # a blend: the ensemble of the members' recipes
            spec = with_params(spec, family, eval_model.effective_params)
        spec = with_inputs(spec, inputs_of(record.chosen, spec))
        n_hold = record.holdout_rows  # the rows since a detected change, when it chose them
        frame = frame.iloc[first:]
        train_part, hold = slice(0, len(frame) - n_hold), slice(len(frame) - n_hold, len(frame))
        days = record.chosen.half_life_days
        if days is not None:
            weight = recency_weights(frame["event_time"], days)
    current().stage(f"fit {family}")
    X, y = frame[spec.feature_names], frame["target"]
    if record is None:
        eval_model, eval_cal = fit_for_evaluation(
            spec, family, X.iloc[train_part], y.iloc[train_part]
        )
    scored = score(eval_model, X.iloc[hold], y.iloc[hold], eval_cal)
    calibration = calibration_summary(spec, eval_model, X.iloc[hold], scored)
    evaluation = Evaluation.of_rows(eval_model, frame, hold, scored)
    folds: list[dict[str, float]] = []
    if spec.validation.scheme == "walk_forward":
        v = spec.validation
        current().stage("walk-forward folds", total=v.folds, unit="folds")
        for fold in walk_forward(len(frame), v.folds, v.gap):
            fm, fc = fit_for_evaluation(spec, family, X.iloc[fold.train], y.iloc[fold.train])
            fold_metrics = score(fm, X.iloc[fold.test], y.iloc[fold.test], fc)[0]
            folds.append(
                {
                    "fold": fold.index,
                    "train_rows": fold.train.stop,
                    "test_rows": fold.test.stop - fold.test.start,
                    **fold_metrics,
                }
            )
            current().advance()
        current().stage(f"refit {family}")
    settled = None
    if spec.training.refit_on_full_window and not use_cal:
        settled = settle_size(spec, family, eval_model, X, y, weight)
    members = getattr(eval_model, "members_", None) if record and record.chosen.members else None
    if members and spec.training.refit_on_full_window and not use_cal:
        model, cal = refit_members(spec, members, X, y, weight), None
    elif settled is not None:
        model, cal = make_model(spec, family, seed, settled).fit(X, y, weight=weight), None
    elif spec.training.refit_on_full_window:
        model, cal = fit_for_evaluation(spec, family, X, y, weight)
    else:
        model, cal = eval_model, eval_cal
    return Fitted(
        model=model,
        family=family,
        params=eval_model.effective_params,  # the recipe, not the size it settled on
        evaluation=evaluation,
        folds=folds,
        calibrator=cal,
        calibration=calibration,
        fit_seconds=time.process_time() - started,
        choice=record,
        first_row=first,
    )


def confusion_matrix(labels: list[Any], y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Counts of (actual, predicted) class pairs: rows are actual, columns predicted, in the
    order of ``labels`` (the model's classes; ``y`` and ``pred`` are their indices).

    >>> confusion_matrix(["no", "yes"], np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
    {'labels': ['no', 'yes'], 'matrix': [[2, 0], [1, 1]]}
    """
    k = len(labels)
    counts = np.bincount(y.astype(int) * k + pred.astype(int), minlength=k * k).reshape(k, k)
    return {"labels": [_plain(v) for v in labels], "matrix": counts.tolist()}


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def fold_summary(folds: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric over the folds."""
    if not folds:
        return {}
    names = [k for k in folds[0] if k not in ("fold", "train_rows", "test_rows")]
    out = {}
    for name in names:
        vals = np.array([f[name] for f in folds], dtype=float)
        vals = vals[np.isfinite(vals)]
        out[name] = {
            "mean": float(vals.mean()) if len(vals) else math.nan,
            "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
        }
    return out

"""The champion/challenger gate at training time, on rows neither model trained on.

Those rows are the tail of the challenger's evaluation slice (its holdout, or a fine-tune's
validation slice) that is newer than the champion's training window. With too few of them
the verdict is "insufficient", never a pass.

Both sides must also know the same past. The challenger's evaluation fit ends where its holdout
begins and learns from the rows before it; a champion trained later than that, or on more rows
(the usual case for a retrain a few months after the last one), beats it for that reason alone.

- A new recipe (another family or other parameters) is then fitted again on the challenger's
  rows up to the champion's cut-off, and that fit is what the gate compares ("catch-up fit",
  recorded in the result).
- A refresh (the champion's own recipe) has nothing fairer to compare: that recipe on the
  challenger's rows before its holdout *is* the evaluation fit. Its comparison is reported
  but not judged (``handicap`` in the result); the guards and budgets still apply, and the
  live monitor (with automatic rollback) judges it in production.

The fewest rows the gate judges on (``gate.min_rows``) scales, when unset, with the model's
window (:func:`~retrainer.evaluation.gate.min_rows_for`): a full retrain's own holdout, and
for a fine-tune the holdout a full retrain of the window would get (:func:`window_min_rows`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..core.spec import ModelSpec
from ..evaluation.gate import CatchUpFit, GateRecord, budget_gate, run_gate
from ..evaluation.min_rows import MinRows, min_rows_for
from ..plumbing.workspace import Workspace
from .choice import with_params
from .fitting import Fitted, fit_for_evaluation, predict_encoded
from .predictor import load_predictor
from .sources import count_rows, row_stats
from .time_inputs import of_model, with_inputs


def window_min_rows(ws: Workspace, spec: ModelSpec) -> MinRows:
    """The gate's minimum for ``spec``'s model as its window holds now: ``gate.min_rows``
    when set (nothing is counted), else scaled to the holdout a full retrain of the window
    would get (``training.holdout_fraction`` of its rows, or its last
    ``training.holdout_days`` days). What the policy and a fine-tune plan with."""
    if spec.gate.min_rows is not None:
        return min_rows_for(spec.gate)
    total, _, newest = row_stats(ws, spec)
    days, rows = spec.training.window_days, total
    if days and newest is not None:
        rows = count_rows(ws, spec, newest - timedelta(days=days))
    hold_days = spec.training.holdout_days
    if hold_days and newest is not None:
        holdout = count_rows(ws, spec, newest - timedelta(days=hold_days))
    else:
        holdout = max(1, round(rows * spec.training.holdout_fraction)) if rows else 0
    return min_rows_for(spec.gate, holdout, rows)


def gate_against_champion(
    ws: Workspace,
    spec: ModelSpec,
    fitted: Fitted,
    frame: pd.DataFrame,
    size_bytes: int,
    cost: dict[str, Any] | None = None,
) -> GateRecord | None:
    """The gate record of ``fitted`` against the current champion. Without a
    champion: the budgets alone when the spec sets one, else None. ``cost``: the measured
    serving cost (``serving_cost.measure``), whose p95 single-row latency and peak memory
    growth the budgets judge."""
    latency_ms = memory_mb = None
    if cost is not None:
        latency_ms = cost["latency_ms"]["single_row"]["p95"]
        memory_mb = cost["memory_mb"]
    champion_name = ws.store.roles(spec.name).champion
    if champion_name is None:
        return budget_gate(spec.gate, latency_ms, memory_mb, size_bytes)
    champion_v = ws.store.get_version(spec.name, champion_name)
    champion = load_predictor(ws, champion_v)
    ev = fitted.evaluation
    hold = frame.iloc[len(frame) - len(ev.holdout_ids) :]
    mask = np.ones(len(hold), dtype=bool)
    if champion_v.train_end is not None:
        mask = (hold["event_time"] > pd.Timestamp(champion_v.train_end)).to_numpy()
    same_classes = champion.model.classes_ == fitted.model.classes_
    if not same_classes:
        mask[:] = False
    rows = hold[mask]
    y = ev.y_true[mask]
    chal_pred = ev.predictions[mask]
    chal_proba = ev.proba[mask] if ev.proba is not None else None
    catch_up: CatchUpFit | None = None
    handicap: str | None = None
    refresh = fitted.family == champion_v.family and fitted.params == champion_v.params
    cut = None if champion_v.train_end is None else pd.Timestamp(champion_v.train_end)
    later = cut is not None and cut >= ev.holdout_start
    eval_rows = len(frame) - len(hold)
    lenient = refresh and spec.gate.refresh_tolerance is not None  # else judged as a new recipe
    if lenient and fitted.from_recipe and (later or champion_v.n_rows > eval_rows):
        # The same recipe on the challenger's rows before its holdout is the evaluation fit
        # itself: a champion that learnt from more (or later) rows beats it for that alone.
        handicap = (
            f"the champion learnt from {champion_v.n_rows} rows up to "
            f"{_day(champion_v.train_end)}, the challenger's evaluation fit from {eval_rows} "
            f"rows up to {_day(ev.holdout_start)}; the live monitor watches the refresh"
        )
    elif len(rows) and fitted.from_recipe and later and cut is not None:
        caught = _catch_up(spec, fitted, frame, cut, rows)
        if caught is not None:
            chal_pred, chal_proba, catch_up = caught
    champ_pred: np.ndarray
    champ_proba = None
    if len(rows):
        raw = champion.raw(rows)
        if spec.task == "classification":
            champ_pred, champ_proba = np.argmax(raw, axis=1), raw
        else:
            champ_pred = raw
            chal_proba = None
    else:  # nothing newer than the champion's rows: "insufficient", on any metric
        champ_pred = np.empty(0)
        if spec.task == "classification" and chal_proba is not None:
            champ_proba = np.empty((0, *chal_proba.shape[1:]))
    need = (  # a full retrain's frame is the window; a fine-tune's, only its new rows
        min_rows_for(spec.gate, len(hold), len(frame))
        if fitted.from_recipe
        else window_min_rows(ws, spec)
    )
    result = run_gate(
        y,
        champ_pred,
        chal_pred,
        task=spec.task,
        gate=spec.gate,
        champion_proba=champ_proba,
        challenger_proba=chal_proba,
        size_bytes=size_bytes,
        latency_ms=latency_ms,
        memory_mb=memory_mb,
        seed=spec.training.seed,
        refresh=refresh,
        handicap=handicap,
        min_rows=need,
    )
    if not same_classes:
        why = "the champion and challenger know different classes"
        result = replace(result, reasons=(*result.reasons, why))
    return GateRecord(result, champion_name, catch_up)


def _catch_up(
    spec: ModelSpec, fitted: Fitted, frame: pd.DataFrame, cut: pd.Timestamp, rows: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray | None, CatchUpFit] | None:
    """The challenger's recipe fitted on its rows up to ``cut``, scored on ``rows`` (those
    after it); None when too few rows precede the cut or that fit knows other classes."""
    started = time.process_time()
    past = frame[frame["event_time"] <= cut]
    if len(past) < max(spec.quality.min_rows, len(rows)):
        return None
    spec = with_inputs(spec, of_model(fitted.model))  # the challenger's inputs
    spec = with_params(spec, fitted.family, fitted.params)  # and recipe (a blend, its leaves)
    model, cal = fit_for_evaluation(spec, fitted.family, past[spec.feature_names], past["target"])
    if spec.task == "classification" and model.classes_ != fitted.model.classes_:
        return None
    pred, proba = predict_encoded(model, rows[spec.feature_names], cal)
    info = CatchUpFit(cut.isoformat(), len(past), round(time.process_time() - started, 4))
    return pred, proba, info


def _day(at: Any) -> str:
    return pd.Timestamp(at).date().isoformat()

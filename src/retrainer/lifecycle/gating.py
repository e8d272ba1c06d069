"""The champion/challenger gate at training time, on rows neither model trained on.

Those rows are the tail of the challenger's evaluation slice (its holdout, or a fine-tune's
validation slice) that is newer than the champion's training window. With too few of them
the verdict is "insufficient", never a pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.spec import ModelSpec
from ..evaluation.gate import run_gate
from .fitting import Fitted
from .predictor import load_predictor
from .workspace import Workspace


def gate_against_champion(
    ws: Workspace, spec: ModelSpec, fitted: Fitted, frame: pd.DataFrame, size_bytes: int
) -> dict[str, Any] | None:
    """The gate result (JSON-safe) of ``fitted`` against the current champion, or None
    when there is no champion."""
    champion_name = ws.store.roles(spec.name).champion
    if champion_name is None:
        return None
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
    champ_pred: np.ndarray
    champ_proba = None
    chal_proba = None
    if len(rows):
        raw = champion.raw(rows)
        if spec.task == "classification":
            champ_pred, champ_proba = np.argmax(raw, axis=1), raw
            chal_proba = ev.proba[mask] if ev.proba is not None else None
        else:
            champ_pred = raw
    else:
        champ_pred = np.empty(0)
    result = run_gate(
        y,
        champ_pred,
        ev.predictions[mask],
        task=spec.task,
        gate=spec.gate,
        champion_proba=champ_proba,
        challenger_proba=chal_proba,
        size_bytes=size_bytes,
        seed=spec.training.seed,
        refresh=fitted.family == champion_v.family and fitted.params == champion_v.params,
    )
    out = result.to_dict()
    out["champion_version"] = champion_name
    if not same_classes:
        out["reasons"] = [*out["reasons"], "the champion and challenger know different classes"]
    return out

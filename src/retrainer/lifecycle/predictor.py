"""A loaded, verified version ready to score: the family model plus its calibration map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..core.entities import ModelVersion
from ..evaluation.calibration import Calibrator
from ..evaluation.conformal import ConformalInterval
from ..families import FamilyModel, load_model
from ..plumbing.workspace import Workspace


@dataclass(frozen=True)
class Predictor:
    version: ModelVersion
    model: FamilyModel
    calibrator: Calibrator | None
    interval: ConformalInterval | None = None  # a regression's calibrated interval

    @property
    def task(self) -> str:
        return self.model.task

    def raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        out = self.model.predict_raw(X)
        if self.calibrator is not None:
            out = self.calibrator.apply(out)
        return out

    def predict(self, X: pd.DataFrame | np.ndarray) -> tuple[list[Any], np.ndarray | None]:
        """Predictions in original labels, and class probabilities for classifiers."""
        raw = self.raw(X)
        if self.task == "regression":
            return raw.tolist(), None
        classes = self.model.classes_
        return [classes[i] for i in np.argmax(raw, axis=1)], raw


def load_predictor(ws: Workspace, version: ModelVersion) -> Predictor:
    model = load_model(ws.artifact_bytes(version))
    cal = version.details.get("calibrator")
    iv = version.details.get("interval")
    return Predictor(
        version,
        model,
        Calibrator.from_dict(cal) if cal else None,
        ConformalInterval.from_dict(iv) if iv else None,
    )

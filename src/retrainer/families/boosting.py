"""What the boosting families share: they train in rounds and fine-tune by continuing from
the fitted model at a lower learning rate (LightGBM ``init_model``, XGBoost ``xgb_model``,
CatBoost ``init_model``). Each implements ``_train`` once; fit and fine-tune are the same call.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from .base import FamilyModel


class BoostingModel(FamilyModel):
    rounds_param: ClassVar[str] = "n_estimators"  # the parameter holding the round count
    model_attr: ClassVar[str] = "booster_"  # where ``_train`` keeps the fitted model

    @abstractmethod
    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        rounds: int,
        lr_factor: float,
        init: Any,
        weight: np.ndarray | None = None,
    ) -> None:
        """Train ``rounds`` rounds (continuing from ``init`` when given) and store the model."""

    @abstractmethod
    def _rounds(self) -> int:
        """The rounds the fitted model predicts with (the best one under early stopping)."""

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        self._train(X, y, val, int(self.effective_params[self.rounds_param]), 1.0, None, weight)

    def settled_params(self) -> dict[str, Any] | None:
        self._check_fitted()
        return {self.rounds_param: max(1, self._rounds())}

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        self._train(X, y, val, rounds, learning_rate_factor, getattr(self, self.model_attr))

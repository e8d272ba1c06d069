"""RandomForest (scikit-learn), saved through skops. Fine-tune adds trees fitted on the new
rows (``warm_start``); missing values go to scikit-learn's native NaN support.

Training uses ``n_threads`` (``n_jobs``), a prediction ``predict_threads``; the estimator
is saved with ``n_jobs=None``, so an artifact carries no thread count of the machine that
fitted it.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.arange(100.0)})
>>> m = RandomForestModel("regression", ["x"], params={"n_estimators": 10}).fit(X, X["x"] * 2)
>>> bool(abs(m.predict(X.iloc[[50]])[0] - 100) < 5)
True
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from ..core.errors import InputError
from ..core.family_params import ACCEPTED
from . import skops_io
from .base import Capabilities, FamilyModel

_ACCEPTED = ACCEPTED["randomforest"]


class RandomForestModel(FamilyModel):
    name = "randomforest"
    capabilities = Capabilities(warm_start=True)
    default_params: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "min_samples_leaf": 2,
        "max_features": "sqrt",
    }
    accepted_params = _ACCEPTED
    payload_name = "model.skops"
    thread_param = "n_jobs"

    def _estimator(self) -> RandomForestClassifier | RandomForestRegressor:
        params = self.runtime_params
        if self.task == "regression":
            params = {k: v for k, v in params.items() if k != "class_weight"}
            if params.get("max_features") == "sqrt":
                params["max_features"] = 1.0
            return RandomForestRegressor(random_state=self.seed, **params)
        return RandomForestClassifier(random_state=self.seed, **params)

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        self.estimator_ = self._estimator().fit(X, y, sample_weight=weight)

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        est = self.estimator_
        if self.task == "classification" and len(np.unique(y)) < self.n_classes:
            raise InputError(
                f"A randomforest fine-tune needs every class among the new rows; they hold "
                f"{len(np.unique(y))} of {self.n_classes}. Use more new rows (--days) or a "
                "full retrain."
            )
        added = max(1, min(rounds, est.n_estimators // 2))
        est.set_params(
            warm_start=True, n_estimators=est.n_estimators + added, n_jobs=self.n_threads
        )
        est.fit(X, y)
        est.set_params(warm_start=False)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        self.estimator_.n_jobs = self.predict_threads(len(X))
        if self.task == "regression":
            out: np.ndarray = self.estimator_.predict(X)
            return out
        proba: np.ndarray = self.estimator_.predict_proba(X)
        return proba

    def _dump(self) -> bytes:
        self.estimator_.n_jobs = None  # set again before every use
        return skops_io.dumps(self.estimator_)

    def _load(self, payload: bytes) -> None:
        self.estimator_ = skops_io.loads(payload)

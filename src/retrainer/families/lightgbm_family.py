"""LightGBM: native text format; fine-tune continues boosting from the champion (``init_model``).

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.arange(200.0), "c": ["a", "b"] * 100})
>>> y = (X["x"] > 100).astype(int)
>>> m = LightGBMModel("classification", ["x"], ["c"], {"n_estimators": 20}).fit(X, y)
>>> m.predict(X.head(2)).tolist(), m.capabilities.warm_start
([0, 0], True)

Training uses ``n_threads`` (``num_threads``); a prediction uses ``predict_threads``: one thread
through a predictor kept with the booster for a request's rows, the model's threads for a
large batch. The model text LightGBM writes lists the training run's parameters; its thread
count is written as ``0`` (LightGBM's "OpenMP default"), so the artifact does not depend on the
machine's CPUs: every call passes its own count.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from ..core.family_params import ACCEPTED
from . import dask_boosting
from .base import Capabilities
from .boosting import BoostingModel

_THREADS_LINE = re.compile(r"^\[num_threads: -?\d+\]$", re.M)
_ACCEPTED = ACCEPTED["lightgbm"]


class LightGBMModel(BoostingModel):
    name = "lightgbm"
    capabilities = Capabilities(warm_start=True, native_categorical=True)
    default_params: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "early_stopping_rounds": 50,
    }
    accepted_params = _ACCEPTED
    payload_name = "model.txt"
    linear_leaf_params: ClassVar[dict[str, Any] | None] = {"linear_tree": True}
    thread_param = "num_threads"

    def _booster_params(self, lr_factor: float = 1.0) -> dict[str, Any]:
        p = self.runtime_params
        params = {k: v for k, v in p.items() if k not in ("n_estimators", "early_stopping_rounds")}
        params["learning_rate"] = float(p["learning_rate"]) * lr_factor
        params.update(verbosity=-1, seed=self.seed, deterministic=True, force_row_wise=True)
        if self.task == "regression":
            params["objective"] = "regression"
        elif self.n_classes == 2:
            params["objective"] = "binary"
        else:
            params.update(objective="multiclass", num_class=self.n_classes)
        return params

    def _dataset(
        self,
        X: np.ndarray,
        y: np.ndarray,
        ref: lgb.Dataset | None = None,
        weight: np.ndarray | None = None,
    ) -> lgb.Dataset:
        cats = self.schema_.categorical_indices
        return lgb.Dataset(
            X,
            label=y,
            weight=weight,
            categorical_feature=cats or "auto",
            reference=ref,
            free_raw_data=False,
            params={"linear_tree": True} if self.runtime_params.get("linear_tree") else None,
        )

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        rounds: int,
        lr_factor: float,
        init: lgb.Booster | None,
        weight: np.ndarray | None = None,
    ) -> None:
        client = dask_boosting.active()
        if client is not None and init is None:  # engine: dask; a fine-tune stays local
            self._scorer = None
            self.booster_ = dask_boosting.train_lightgbm(
                client,
                self._booster_params(lr_factor),
                X,
                y,
                weight,
                val,
                rounds,
                int(self.effective_params["early_stopping_rounds"]),
                self.schema_.categorical_indices,
            )
            return
        train = self._dataset(X, y, weight=weight)
        callbacks: list[Any] = []
        valid_sets = []
        if val is not None and len(val[1]) > 0:
            valid_sets = [self._dataset(val[0], val[1], ref=train)]
            stop = int(self.effective_params["early_stopping_rounds"])
            callbacks.append(lgb.early_stopping(stop, verbose=False))
        self._scorer = None
        self.booster_ = lgb.train(
            self._booster_params(lr_factor),
            train,
            num_boost_round=rounds,
            valid_sets=valid_sets,
            callbacks=callbacks,
            init_model=init,
            keep_training_booster=init is not None,
        )

    def _rounds(self) -> int:
        return int(self.booster_.best_iteration or self.booster_.current_iteration())

    def _predict(self, X: np.ndarray) -> np.ndarray:
        booster = self.booster_
        threads = self.predict_threads(len(X))
        if threads != 1:  # a large batch: building a predictor per call costs nothing here
            return np.asarray(
                booster.predict(X, num_iteration=booster.best_iteration, num_threads=threads)
            )
        scorer = self.__dict__.get("_scorer")
        if scorer is None:  # built once per booster: _train and _load drop it
            scorer = self._scorer = _scorer(booster)
        if scorer is False:
            return np.asarray(booster.predict(X, num_threads=1))
        return np.asarray(scorer.predict(X, num_iteration=booster.best_iteration))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_scorer", None)  # holds a native handle
        return state

    def _dump(self) -> bytes:
        text: str = self.booster_.model_to_string()
        return _THREADS_LINE.sub("[num_threads: 0]", text).encode()

    def _load(self, payload: bytes) -> None:
        self._scorer = None
        self.booster_ = lgb.Booster(model_str=payload.decode())


def _scorer(booster: lgb.Booster) -> Any:
    """A predictor kept with the model. ``Booster.predict`` builds one on every call (it
    parses the booster's parameters and copies the keyword arguments): about a fifth of the
    time to score one row. False when this LightGBM has no such class; then predict as usual."""
    try:
        from lightgbm.basic import _InnerPredictor

        return _InnerPredictor.from_booster(booster=booster, pred_parameter={"num_threads": 1})
    except (ImportError, AttributeError, TypeError):
        return False

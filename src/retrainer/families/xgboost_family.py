"""XGBoost: native JSON format; fine-tune continues boosting from the champion (``xgb_model``).

Categorical columns reach XGBoost as their level codes in a ``DMatrix`` whose feature types
mark them ``'c'`` (``enable_categorical``), so trees split on sets of levels, not on code
order. Missing values and levels unseen in training are NaN, which XGBoost routes natively.
With a validation set, training stops early and the booster is cut at its best round.
Training uses ``n_threads`` (``nthread``); a prediction uses ``predict_threads``, set on the
booster only when it changes (the booster keeps its last count).

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.arange(200.0), "c": ["a", "b"] * 100})
>>> y = (X["x"] > 100).astype(int)
>>> m = XGBoostModel("classification", ["x"], ["c"], {"n_estimators": 20}).fit(X, y)
>>> m.predict(X.iloc[[0, 199]]).tolist(), m.capabilities.native_categorical
([0, 1], True)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import xgboost as xgb

from ..core.family_params import ACCEPTED
from . import dask_boosting
from .base import Capabilities
from .boosting import BoostingModel

_ACCEPTED = ACCEPTED["xgboost"]
_NOT_BOOSTER = ("n_estimators", "early_stopping_rounds")


class XGBoostModel(BoostingModel):
    name = "xgboost"
    capabilities = Capabilities(warm_start=True, native_categorical=True)
    default_params: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "max_depth": 6,
        "tree_method": "hist",
        "early_stopping_rounds": 50,
    }
    accepted_params = _ACCEPTED
    payload_name = "model.json"
    thread_param = "nthread"
    _booster_threads: int | None = None  # the booster's prediction threads; None: not set yet

    def _booster_params(self, lr_factor: float = 1.0) -> dict[str, Any]:
        p = self.runtime_params
        params = {k: v for k, v in p.items() if k not in _NOT_BOOSTER}
        params.update(
            learning_rate=float(p["learning_rate"]) * lr_factor, seed=self.seed, verbosity=0
        )
        if self.task == "regression":
            params["objective"] = "reg:squarederror"
        elif self.n_classes == 2:
            params["objective"] = "binary:logistic"
        else:
            params.update(objective="multi:softprob", num_class=self.n_classes)
        return params

    def _feature_types(self) -> list[str]:
        return ["q"] * len(self.schema_.numeric) + ["c"] * len(self.schema_.categorical)

    def _dmatrix(
        self,
        X: np.ndarray,
        y: np.ndarray | None = None,
        threads: int = 1,
        weight: np.ndarray | None = None,
    ) -> xgb.DMatrix:
        return xgb.DMatrix(
            X,
            label=y,
            weight=weight,
            missing=np.nan,
            feature_types=self._feature_types(),
            enable_categorical=True,
            nthread=threads,
        )

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        rounds: int,
        lr_factor: float,
        init: xgb.Booster | None,
        weight: np.ndarray | None = None,
    ) -> None:
        params = self._booster_params(lr_factor)
        client = dask_boosting.active()
        if client is not None and init is None:  # engine: dask; a fine-tune stays local
            self.booster_ = dask_boosting.train_xgboost(
                client,
                params,
                X,
                y,
                weight,
                val,
                rounds,
                int(self.effective_params["early_stopping_rounds"]),
                self._feature_types(),
            )
            self._booster_threads = None
            return
        evals = []
        stop = None
        threads = int(params["nthread"])
        if val is not None and len(val[1]) > 0:
            evals = [(self._dmatrix(*val, threads=threads), "validation")]
            stop = int(self.effective_params["early_stopping_rounds"])
        booster = xgb.train(
            params,
            self._dmatrix(X, y, threads=threads, weight=weight),
            num_boost_round=rounds,
            evals=evals,
            early_stopping_rounds=stop,
            xgb_model=init,
            verbose_eval=False,
        )
        if stop is not None:
            # xgb.train returns every round; keep the best one (this also drops the
            # best_* attributes, so the saved JSON depends on the trees only).
            booster = booster[: booster.best_iteration + 1]
        self.booster_ = booster
        self._booster_threads = None

    def _rounds(self) -> int:
        return int(self.booster_.num_boosted_rounds())  # cut to the best round when stopping

    def _predict(self, X: np.ndarray) -> np.ndarray:
        threads = self.predict_threads(len(X))
        if self._booster_threads != threads:
            self.booster_.set_param({"nthread": threads})
            self._booster_threads = threads
        out: np.ndarray = self.booster_.predict(self._dmatrix(X, threads=threads))
        return out.astype(np.float64)

    def _dump(self) -> bytes:
        return bytes(self.booster_.save_raw("json"))

    def _load(self, payload: bytes) -> None:
        booster = xgb.Booster()
        booster.load_model(bytearray(payload))
        self.booster_ = booster
        self._booster_threads = None

"""CatBoost: native categorical features, native ``.cbm`` format; fine-tune continues from the
champion (``init_model``) at a lower learning rate.

Categorical columns reach CatBoost as integer level codes listed in ``cat_features`` (ordered
target statistics, not code order). CatBoost refuses NaN in a categorical column, so missing
values and levels unseen in training share the sentinel code ``-1``; numeric NaN is native
(``nan_mode=Min``). CatBoost stamps each model with its training time and a random GUID; both
are blanked after every training run, so a fixed seed gives byte-identical artifacts.
Training uses ``n_threads`` (``thread_count``), a prediction ``predict_threads``; the thread
count CatBoost records among the training options is dropped too, so the artifact does not
depend on the machine's CPUs.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.arange(200.0), "c": ["a", "b"] * 100})
>>> y = (X["x"] > 100).astype(int)
>>> m = CatBoostModel("classification", ["x"], ["c"], {"iterations": 30}).fit(X, y)
>>> m.predict(X.iloc[[0, 199]]).tolist(), m.save() == m.save()
([0, 1], True)
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, ClassVar

import catboost
import numpy as np
import pandas as pd

from ..core.family_params import ACCEPTED
from .base import Capabilities
from .boosting import BoostingModel

MISSING_CODE = -1
_ACCEPTED = ACCEPTED["catboost"]
# Metadata CatBoost writes that differs between two identical training runs.
_VOLATILE_METADATA = ("train_finish_time", "model_guid")


class CatBoostModel(BoostingModel):
    name = "catboost"
    rounds_param = "iterations"
    model_attr = "model_"
    capabilities = Capabilities(warm_start=True, native_categorical=True)
    default_params: ClassVar[dict[str, Any]] = {
        "iterations": 300,
        "learning_rate": 0.05,
        "depth": 6,
        "early_stopping_rounds": 50,
    }
    accepted_params = _ACCEPTED
    payload_name = "model.cbm"
    thread_param = "thread_count"

    def _estimator(
        self, iterations: int, lr_factor: float
    ) -> catboost.CatBoostClassifier | catboost.CatBoostRegressor:
        p = {k: v for k, v in self.runtime_params.items() if k != "early_stopping_rounds"}
        p.update(
            iterations=iterations,
            learning_rate=float(p["learning_rate"]) * lr_factor,
            random_seed=self.seed,
            verbose=False,
            allow_writing_files=False,
        )
        if self.task == "regression":
            return catboost.CatBoostRegressor(loss_function="RMSE", **p)
        loss = "Logloss" if self.n_classes == 2 else "MultiClass"
        return catboost.CatBoostClassifier(
            loss_function=loss, class_names=list(range(self.n_classes)), **p
        )

    def _pool(
        self, X: np.ndarray, y: np.ndarray | None = None, weight: np.ndarray | None = None
    ) -> catboost.Pool:
        schema = self.schema_
        n_num = len(schema.numeric)
        frame = pd.DataFrame(X[:, :n_num], columns=list(schema.numeric))
        for k, col in enumerate(schema.categorical):
            codes = X[:, n_num + k]
            frame[col] = np.where(np.isnan(codes), MISSING_CODE, codes).astype(np.int64)
        return catboost.Pool(frame, label=y, weight=weight, cat_features=list(schema.categorical))

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        rounds: int,
        lr_factor: float,
        init: catboost.CatBoost | None,
        weight: np.ndarray | None = None,
    ) -> None:
        model = self._estimator(rounds, lr_factor)
        kwargs: dict[str, Any] = {}
        if val is not None and len(val[1]) > 0:
            kwargs = {
                "eval_set": self._pool(*val),
                "early_stopping_rounds": int(self.effective_params["early_stopping_rounds"]),
            }
        model.fit(self._pool(X, y, weight), init_model=init, **kwargs)
        metadata = model.get_metadata()
        for key in _VOLATILE_METADATA:
            metadata[key] = ""
        if "params" in metadata:
            metadata["params"] = _without_threads(metadata["params"])
        self.model_ = model

    def _rounds(self) -> int:
        return int(self.model_.tree_count_)  # use_best_model keeps the best iteration's trees

    def _predict(self, X: np.ndarray) -> np.ndarray:
        pool = self._pool(X)
        threads = self.predict_threads(len(X))
        if isinstance(self.model_, catboost.CatBoostClassifier):
            proba: np.ndarray = self.model_.predict_proba(pool, thread_count=threads)
            return proba
        out: np.ndarray = self.model_.predict(pool, thread_count=threads)
        return out.astype(np.float64)

    def _dump(self) -> bytes:
        # save_model only writes to a path; the file lives for the duration of the call.
        with tempfile.TemporaryDirectory(prefix="retrainer-cbm-") as tmp:
            path = os.path.join(tmp, self.payload_name)
            self.model_.save_model(path, format="cbm")
            with open(path, "rb") as fh:
                return fh.read()

    def _load(self, payload: bytes) -> None:
        regress = self.task == "regression"
        model = catboost.CatBoostRegressor() if regress else catboost.CatBoostClassifier()
        model.load_model(blob=payload)
        self.model_ = model


def _without_threads(params_json: str) -> str:
    """CatBoost's recorded training options without the thread count (set on every use).

    >>> _without_threads('{"flat_params":{"depth":6,"thread_count":2}}')
    '{"flat_params":{"depth":6}}'
    """
    params = json.loads(params_json)
    for section in ("flat_params", "system_options"):
        if isinstance(params.get(section), dict):
            params[section].pop("thread_count", None)
    return json.dumps(params, separators=(",", ":"))

"""Between retrainer's native payloads and MLflow's model flavours, both ways.

Out (:func:`log_native`): a version's payload becomes its library's model object with the
spec's feature names (a LightGBM text model's ``feature_names=`` line, an XGBoost booster's
``feature_names``, CatBoost's ``set_feature_names``, a forest's ``feature_names_in_``; a
forest also gets its class labels back, as retrainer's forests learn class indices) and is
logged with that library's flavour, registered under ``registered_name``.

In (:func:`native_file`): the flavour of a downloaded MLflow model gives a file in a format
:mod:`~retrainer.lifecycle.import_model` reads, so the import takes the one path every
imported file takes. LightGBM, XGBoost and CatBoost models are loaded with their flavour and
saved natively; a scikit-learn model is taken as the skops file MLflow wrote, and loaded by
the import with retrainer's allow-list. Pickled models (MLflow's ``cloudpickle``/``pickle``
formats, a LightGBM scikit-learn wrapper) are refused before anything loads them: loading a
pickle runs whatever code it holds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError

FLAVOURS = ("lightgbm", "xgboost", "catboost", "sklearn")
TREE = "sklearn.tree._tree.Tree"
PICKLE_FIX = (
    "Log it again in a format that holds no code: mlflow.sklearn.log_model(..., "
    "serialization_format='skops'), or the booster of a LightGBM/XGBoost model "
    "(model.booster_ / model.get_booster()) with its own flavour"
)


def log_native(
    family: str,
    task: str,
    payload: bytes,
    names: list[str],
    classes: list[Any],
    registered_name: str,
) -> tuple[str, Any]:
    """Log ``payload`` (a version's native model) to the active MLflow run in its flavour and
    register it; returns the flavour's name and MLflow's ``ModelInfo``."""
    import mlflow

    kw: dict[str, Any] = {
        "name": "model",
        "registered_model_name": registered_name,
        "await_registration_for": 60,
    }
    if family == "lightgbm":
        import lightgbm as lgb
        import mlflow.lightgbm

        booster = lgb.Booster(model_str=lgb_named(payload.decode(), names))
        req = [f"lightgbm=={lgb.__version__}"]
        return "lightgbm", mlflow.lightgbm.log_model(booster, pip_requirements=req, **kw)
    if family == "xgboost":
        import mlflow.xgboost
        import xgboost as xgb

        xbooster = xgb.Booster()
        xbooster.load_model(bytearray(payload))
        xbooster.feature_names = names
        req = [f"xgboost=={xgb.__version__}"]
        info = mlflow.xgboost.log_model(xbooster, model_format="json", pip_requirements=req, **kw)
        return "xgboost", info
    if family == "catboost":
        import catboost
        import mlflow.catboost

        klass = (
            catboost.CatBoostClassifier if task == "classification" else catboost.CatBoostRegressor
        )
        cb = klass()
        cb.load_model(blob=payload)
        cb.set_feature_names(names)
        req = [f"catboost=={catboost.__version__}"]
        return "catboost", mlflow.catboost.log_model(cb, pip_requirements=req, **kw)
    import mlflow.sklearn
    import sklearn
    import skops

    from ..families import skops_io

    if family == "linear":
        est = linear_pipeline(payload, task, names, classes)
    else:
        est = skops_io.loads(payload)
        if classes:
            est.classes_ = np.asarray(classes)  # predict() gives the labels, as retrainer's does
        est.feature_names_in_ = np.asarray(names, dtype=object)
    req = [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"]
    import skops.io as sio

    # all scikit-learn's own; MLflow asks for the trees' node storage to be named too
    trusted = sorted({*sio.get_untrusted_types(data=skops_io.dumps(est)), TREE})
    info = mlflow.sklearn.log_model(
        est, serialization_format="skops", skops_trusted_types=trusted, pip_requirements=req, **kw
    )
    return "sklearn", info


def linear_pipeline(payload: bytes, task: str, names: list[str], classes: list[Any]) -> Any:
    """A version of the linear family (numeric features) as the scikit-learn Pipeline that
    computes what it computes: the median imputer with its missing-value indicators, the
    scaler, then logistic regression (its classes the labels) or ridge, their fitted numbers
    the version's. The imputer is fitted on three rows made to have the version's medians and
    its columns with missing values; the rest are set from the payload.

    >>> import json
    >>> state = {"medians": [1.0, 2.0], "flagged": [False, True], "levels": [],
    ...     "means": [1.0, 2.0, 0.5], "scales": [1.0, 2.0, 0.5], "coef": [[1.0, 0.5, 2.0]],
    ...     "intercept": [0.25], "classes": None}
    >>> pipe = linear_pipeline(json.dumps(state).encode(), "regression", ["a", "b"], [])
    >>> import pandas as pd
    >>> pipe.predict(pd.DataFrame({"a": [2.0], "b": [float("nan")]})).round(3).tolist()
    [3.25]
    """
    import json

    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    state = json.loads(payload)
    medians = np.asarray(state["medians"], dtype=np.float64)
    flagged = np.asarray(state["flagged"], dtype=bool)
    rows = pd.DataFrame(
        np.vstack([medians, medians, np.where(flagged, np.nan, medians)]), columns=names
    )
    imputer = SimpleImputer(strategy="median", add_indicator=True).fit(rows)
    scales = np.asarray(state["scales"], dtype=np.float64)
    scaler = StandardScaler()
    scaler.mean_ = np.asarray(state["means"], dtype=np.float64)
    scaler.scale_, scaler.var_ = scales, scales**2
    scaler.n_features_in_, scaler.n_samples_seen_ = len(scales), 1
    coef = np.asarray(state["coef"], dtype=np.float64)
    intercept = np.asarray(state["intercept"], dtype=np.float64)
    final: Any
    if task == "classification":
        final = LogisticRegression()
        final.coef_, final.intercept_ = coef, intercept
        seen = state["classes"] or list(range(len(classes)))
        final.classes_ = np.asarray([classes[i] for i in seen] if classes else seen)
        final.n_iter_ = np.zeros(1, dtype=np.int32)
    else:
        final = Ridge()
        final.coef_, final.intercept_ = coef[0], float(intercept[0])
    final.n_features_in_ = len(scales)
    return Pipeline([("impute", imputer), ("scale", scaler), ("model", final)])


def lgb_named(text: str, names: list[str]) -> str:
    """A LightGBM text model with ``names`` as its feature names (LightGBM names may hold no
    whitespace: then the model keeps its own).

    >>> lgb_named("tree\\nfeature_names=Column_0 Column_1\\nx=1\\n", ["a", "b"])
    'tree\\nfeature_names=a b\\nx=1\\n'
    """
    if any(not n or re.search(r"\s", n) for n in names):
        return text
    return re.sub(
        r"^feature_names=.*$", "feature_names=" + " ".join(names), text, count=1, flags=re.M
    )


def native_file(local: Path, flavours: dict[str, Any], uri: str, tmp: Path) -> tuple[str, Path]:
    """The flavour used and a model file for the import, from the MLflow model downloaded
    into ``local`` (its ``MLmodel`` lists ``flavours``); InputError when no flavour fits."""
    found = [f for f in FLAVOURS if f in flavours]
    if not found:
        raise InputError(
            f"The MLflow model {uri} has no flavour retrainer imports (it has "
            f"{', '.join(sorted(flavours)) or 'none'}). Log it with one of "
            f"{', '.join(FLAVOURS)} (scikit-learn: a random forest saved with skops).",
            uri=uri,
        )
    flavour = found[0]
    conf = flavours[flavour] or {}
    if flavour == "sklearn":
        fmt = conf.get("serialization_format", "cloudpickle")
        if fmt != "skops":
            raise InputError(
                f"The MLflow model {uri} is a scikit-learn model saved as {fmt}, a pickle: "
                f"retrainer never loads one. {PICKLE_FIX}.",
                uri=uri,
            )
        return flavour, local / str(conf.get("pickled_model", "model.skops"))
    model_class = str(conf.get("model_class", ""))
    if flavour == "lightgbm" and not model_class.endswith("Booster"):
        raise InputError(
            f"The MLflow model {uri} is a LightGBM {model_class or 'model'} that MLflow "
            f"pickles; retrainer never loads a pickle. {PICKLE_FIX}.",
            uri=uri,
        )
    import importlib

    loader = importlib.import_module(f"mlflow.{flavour}")  # mlflow.lightgbm, .xgboost, .catboost
    try:
        obj = loader.load_model(str(local))
    except Exception as exc:  # each library raises its own types
        raise InputError(
            f"The MLflow model {uri} does not load with its {flavour} flavour "
            f"({type(exc).__name__}: {exc}). Check that it was logged completely.",
            uri=uri,
        ) from None
    if flavour == "lightgbm":
        out = tmp / "model.txt"
        obj.save_model(str(out))
    elif flavour == "xgboost":
        booster = obj.get_booster() if hasattr(obj, "get_booster") else obj
        out = tmp / "model.json"
        booster.save_model(str(out))
    else:
        out = tmp / "model.cbm"
        obj.save_model(str(out), format="cbm")
    return flavour, out

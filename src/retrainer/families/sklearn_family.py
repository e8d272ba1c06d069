"""Bring your own scikit-learn model: ``family: sklearn`` with ``params.estimator`` naming a
callable (``"mypkg.models:make_pipeline"``) that returns any scikit-learn-compatible estimator
or Pipeline (a ColumnTransformer feature step included), or an estimator class.

What the estimator receives: a DataFrame with the spec's feature columns by name, numeric
columns as float64 and categorical ones as their level text (NaN when missing or not seen in
training), the same in training, batch predict and serving; after the feature step
(``features.transform``) when the spec names one. The target of a classifier is the class
index (0..k-1); its ``predict_proba`` gives the class probabilities.

- ``params.kwargs``: keyword arguments for the callable; a callable with a ``task`` parameter
  also gets ``"classification"`` or ``"regression"``. Every ``*random_state`` left ``None`` is
  set to the spec's seed.
- Saved with skops. Types outside the built-in allow-list (scikit-learn, numpy, builtins),
  such as your own transformer classes or functions, must be listed in
  ``params.trusted_types``; training refuses otherwise, naming them. The artifact records the
  exact list the file needs, and loading trusts that list and nothing else.
- Fine-tune: ``partial_fit`` on the final estimator when it has one, else ``warm_start`` (with
  more trees for an ensemble), with earlier pipeline steps kept as fitted; an estimator with
  neither is refused (the maintenance policy then runs a full retrain).
- Row weights go to ``fit(sample_weight=...)`` when the final estimator's fit accepts them.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.arange(60.0)})
>>> m = SklearnModel("regression", ["x"],
...                  params={"estimator": "sklearn.linear_model:LinearRegression"})
>>> round(float(m.fit(X, X["x"] * 2).predict(X.iloc[[10]])[0]), 6)
20.0
>>> m.capabilities.warm_start, m.capabilities.sample_weight
(False, True)
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_regressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import has_fit_parameter

from ..core.errors import CapabilityError, ConfigError, InputError
from ..core.family_params import ACCEPTED
from . import skops_io
from .base import Capabilities, FamilyModel
from .feature_step import FeatureStep, resolve


class SklearnModel(FamilyModel):
    name = "sklearn"
    # What some estimators can; a fitted or loaded model says what its estimator can.
    capabilities = Capabilities(warm_start=True, native_categorical=True)
    accepted_params = ACCEPTED["sklearn"]
    payload_name = "model.skops"
    takes_feature_step = True

    def __init__(
        self,
        task: str,
        numeric: Sequence[str],
        categorical: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        *,
        threads: int | None = None,
    ) -> None:
        super().__init__(task, numeric, categorical, params, seed, threads=threads)
        if "estimator" not in self.params:
            raise ConfigError(
                "The 'sklearn' family needs params.estimator: a 'package.module:name' path to "
                "a function returning a scikit-learn estimator (or an estimator class), e.g. "
                "params: {estimator: 'mypkg.models:make_pipeline'}.",
                family=self.name,
            )
        self.trusted_: list[str] = []

    # ---- the estimator ----------------------------------------------------------------
    @property
    def estimator_path(self) -> str:
        return str(self.params["estimator"])

    def build(self) -> Any:
        """A new, unfitted estimator from ``params.estimator`` (InputError naming the path and
        what it found when that is not a scikit-learn estimator fit for the task)."""
        path = self.estimator_path
        target = resolve(path, "params.estimator")
        kwargs = dict(self.params.get("kwargs") or {})
        if not callable(target):
            raise InputError(
                f"params.estimator {path!r} names a {type(target).__name__} ({target!r:.80}), "
                "not an estimator class or a function returning an estimator.",
                path=path,
            )
        if not isinstance(target, type) and _takes(target, "task"):
            kwargs.setdefault("task", self.task)
        try:
            est = target(**kwargs)
        except Exception as exc:
            raise InputError(
                f"params.estimator {path!r} raised {type(exc).__name__} when called with "
                f"{kwargs or 'no arguments'}: {exc}. Fix the function or params.kwargs.",
                path=path,
            ) from None
        self._check_estimator(est, path)
        seeds = {
            k: self.seed
            for k, v in est.get_params(deep=True).items()
            if k.endswith("random_state") and v is None
        }
        if seeds:
            est.set_params(**seeds)
        return est

    def check_recipe(self) -> None:
        self.build()

    def _check_estimator(self, est: Any, path: str) -> None:
        found = f"{type(est).__module__}.{type(est).__qualname__}"
        missing = [m for m in ("fit", "predict", "get_params", "set_params") if not hasattr(est, m)]
        if isinstance(est, type) or missing:
            raise InputError(
                f"params.estimator {path!r} gave {found}, which is not a scikit-learn "
                f"estimator (it lacks {', '.join(missing) or 'an instance: it is a class'}). "
                "Return an estimator or Pipeline instance, e.g. make_pipeline(...).",
                path=path,
                found=found,
            )
        if self.task == "classification" and (is_regressor(est) or not is_classifier(est)):
            raise InputError(
                f"params.estimator {path!r} gave {found}, which is not a classifier; this "
                "model does classification. Return a classifier (or change task).",
                path=path,
                found=found,
            )
        if self.task == "regression" and is_classifier(est):
            raise InputError(
                f"params.estimator {path!r} gave {found}, a classifier; this model does "
                "regression. Return a regressor (or change task).",
                path=path,
                found=found,
            )
        if self.task == "classification" and not hasattr(est, "predict_proba"):
            raise InputError(
                f"params.estimator {path!r} gave {found}, which has no predict_proba; "
                "retrainer scores classifiers by their class probabilities. Use one that "
                "has it (e.g. SGDClassifier(loss='log_loss'), or wrap it in "
                "CalibratedClassifierCV).",
                path=path,
                found=found,
            )

    def _capabilities(self, est: Any) -> Capabilities:
        final = _final(est)
        return Capabilities(
            warm_start=hasattr(final, "partial_fit") or "warm_start" in final.get_params(),
            native_categorical=True,
            predict_proba=self.task == "classification",
            sample_weight=has_fit_parameter(final, "sample_weight"),
        )

    # ---- what the estimator receives --------------------------------------------------
    def frame(self, X: np.ndarray) -> pd.DataFrame:
        """The rows of the encoded matrix as the estimator receives them: a DataFrame with the
        spec's columns by name (categories as level text, NaN when missing or unseen), after
        the feature step when there is one."""
        schema = self.schema_
        data: dict[str, Any] = {c: X[:, j] for j, c in enumerate(schema.numeric)}
        k = len(schema.numeric)
        for i, col in enumerate(schema.categorical):
            levels = np.array([*schema.categories.get(col, ()), np.nan], dtype=object)
            codes = X[:, k + i]
            index = np.where(np.isnan(codes), len(levels) - 1, codes).astype(np.int64)
            data[col] = levels[index]
        df = pd.DataFrame(data, columns=list(schema.columns))
        return df if self.feature_step is None else self.feature_step.apply(df)

    # ---- FamilyModel hooks ------------------------------------------------------------
    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        est = self.build()
        caps = self._capabilities(est)
        fit_kw: dict[str, Any] = {}
        if weight is not None:
            if not caps.sample_weight:
                raise CapabilityError(
                    f"The estimator of params.estimator {self.estimator_path!r} "
                    f"({type(_final(est)).__name__}) takes no sample_weight in fit, so it "
                    "takes no row weights. Train it without recency weighting "
                    "(training.choice.half_lives: [none])."
                )
            fit_kw = {_param(est, "sample_weight"): weight}
        est.fit(self.frame(X), y, **fit_kw)
        self.estimator_ = est
        self.capabilities = caps
        self.trusted_ = self._trusted(skops_io.dumps(est))

    def _trusted(self, payload: bytes) -> list[str]:
        needed = skops_io.outside_allow_list(payload)
        listed = set(self.params.get("trusted_types") or ())
        missing = [t for t in needed if t not in listed]
        if missing:
            raise InputError(
                f"The estimator of params.estimator {self.estimator_path!r} saves types "
                f"that skops does not trust by default: {missing}. Loading a model runs the "
                "code of these types; if you trust them, list them in the spec under "
                f"params.trusted_types (e.g. trusted_types: {missing}).",
                path=self.estimator_path,
                untrusted=missing,
            )
        return needed

    def fine_tune(self, *args: Any, **kwargs: Any) -> FamilyModel:
        self._check_fitted()
        if not self.capabilities.warm_start:
            final = _final(self.estimator_)
            raise CapabilityError(
                f"This sklearn model's estimator ({type(final).__name__}, from "
                f"params.estimator {self.estimator_path!r}) has neither partial_fit nor a "
                "warm_start parameter, so it cannot fine-tune. Run a full retrain instead "
                "(`retrainer train`); the maintenance policy does so by itself."
            )
        return super().fine_tune(*args, **kwargs)

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        est = self.estimator_
        final = _final(est)
        rows: Any = self.frame(X)
        if isinstance(est, Pipeline):  # earlier steps stay as fitted: the columns keep
            rows = est[:-1].transform(rows)
        if hasattr(final, "partial_fit"):
            kw = {"classes": np.arange(self.n_classes)} if self.task == "classification" else {}
            final.partial_fit(rows, y, **kw)
            return
        if self.task == "classification" and len(np.unique(y)) < self.n_classes:
            raise InputError(
                f"A warm-start fine-tune of {type(final).__name__} needs every class among the "
                f"new rows; they hold {len(np.unique(y))} of {self.n_classes}. Use more new "
                "rows (--days) or a full retrain."
            )
        params: dict[str, Any] = {"warm_start": True}
        n = final.get_params().get("n_estimators")
        if isinstance(n, int):  # an ensemble learns new members on the new rows
            params["n_estimators"] = n + max(1, min(rounds, n // 2))
        final.set_params(**params)
        final.fit(rows, y)
        final.set_params(warm_start=False)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        rows = self.frame(X)
        try:
            if self.task == "regression":
                out = np.asarray(self.estimator_.predict(rows), dtype=np.float64)
                return out.reshape(len(X))
            proba = np.asarray(self.estimator_.predict_proba(rows), dtype=np.float64)
        except ValueError as exc:  # e.g. a NaN the user's pipeline does not impute
            raise InputError(
                f"The estimator of params.estimator {self.estimator_path!r} cannot score "
                f"these rows: {exc}. Fix the rows, or make the pipeline handle such values "
                "(e.g. a SimpleImputer for missing ones).",
                path=self.estimator_path,
            ) from None
        seen = np.asarray(_final(self.estimator_).classes_, dtype=np.int64)
        if len(seen) == self.n_classes:
            return proba
        out = np.zeros((len(X), self.n_classes))
        out[:, seen] = proba
        return out

    def _dump(self) -> bytes:
        return skops_io.dumps(self.estimator_)

    def _load(self, payload: bytes) -> None:
        self.estimator_ = skops_io.loads(payload, also_trusted=self.trusted_)
        self.capabilities = self._capabilities(self.estimator_)

    def _meta(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"trusted_types": list(self.trusted_)}
        if self.feature_step is not None:
            extra["feature_step"] = self.feature_step.to_dict()
        return extra

    def _restore_meta(self, extra: dict[str, Any]) -> None:
        self.trusted_ = [str(t) for t in extra.get("trusted_types", [])]
        record = extra.get("feature_step")
        self.feature_step = FeatureStep.restore(record) if record else None

    def lineage(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if hasattr(self, "estimator_"):
            final = _final(self.estimator_)
            out["estimator"] = {
                "path": self.estimator_path,
                "class": f"{type(self.estimator_).__module__}.{type(self.estimator_).__name__}",
                "final": f"{type(final).__module__}.{type(final).__name__}",
                "trusted_types": list(self.trusted_),
            }
        if self.feature_step is not None:
            out["feature_step"] = self.feature_step.to_dict()
        return out


def _final(est: Any) -> Any:
    """The estimator that learns: a Pipeline's last step, else the estimator itself."""
    return est.steps[-1][1] if isinstance(est, Pipeline) else est


def _param(est: Any, name: str) -> str:
    """The fit keyword that reaches the final estimator's ``name``."""
    return f"{est.steps[-1][0]}__{name}" if isinstance(est, Pipeline) else name


def _takes(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False

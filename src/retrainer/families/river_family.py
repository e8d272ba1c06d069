"""River: true online learning with an adaptive random forest (``ARFClassifier`` /
``ARFRegressor``), one row at a time in the order given (pass rows in time order).

``fit`` learns from scratch; ``fine_tune`` and ``partial_fit`` keep learning in place on new
rows (the learning-rate factor and round count do not apply to online learners). Each row
becomes a dict: missing numeric values and missing or unseen categorical levels are left out
(river trees route a row that lacks a feature down their most-travelled branch), and
categorical columns carry their level names, so the trees split on them as nominal features.
For regression the leaf linear models see the numeric features only.

The payload is a canonical pickle (protocol 4) of the learned forest: sets are written sorted
and the unused sampling RNGs of the trees' Gaussian estimators are pinned, so the same seed,
rows and order give the same bytes in any process (whatever ``PYTHONHASHSEED``). It is loaded
only behind the registry's hash/HMAC check, and then through the restricted unpickler of
:mod:`retrainer.families.safe_pickle`: globals from a short allow-list, calls of constructors
only, state applied only to objects the pickle made (never to a class), else
``IntegrityError``.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.arange(200.0) % 20, "c": ["a", "b"] * 100})
>>> m = RiverModel("regression", ["x"], ["c"], {"n_models": 3}).fit(X, X["x"])
>>> m = m.partial_fit(X.head(50), X["x"].head(50))
>>> m.capabilities.incremental, bool(np.isfinite(m.predict(X.head(3))).all())
(True, True)
"""

from __future__ import annotations

import io
import pickle
import random
from collections.abc import Hashable
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd
from river import compose, forest, linear_model
from river.proba.base import Distribution

from ..core.family_params import ACCEPTED
from .base import Capabilities, FamilyModel
from .safe_pickle import restricted_loads

_PICKLE_PROTOCOL = 4


class RiverModel(FamilyModel):
    name = "river"
    capabilities = Capabilities(
        warm_start=True, incremental=True, native_categorical=True, sample_weight=False
    )
    default_params: ClassVar[dict[str, Any]] = {"n_models": 10}
    accepted_params = ACCEPTED["river"]
    payload_name = "model.pkl"

    # ---- public API -------------------------------------------------------------------
    def partial_fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> RiverModel:
        """Learn from new rows in place, in the order given; the first call fits."""
        if not hasattr(self, "schema_"):
            self.fit(X, y)
            return self
        self._learn(self._matrix(X), self._encode_target(np.asarray(y)))
        return self

    # ---- family hooks -----------------------------------------------------------------
    def _estimator(self) -> forest.ARFClassifier | forest.ARFRegressor:
        p = self.effective_params
        if self.task == "classification":
            return forest.ARFClassifier(seed=self.seed, **p)
        if self.schema_.categorical:
            # Leaf linear models need numbers: let them see the numeric features only.
            leaf = compose.Discard(*self.schema_.categorical) | linear_model.LinearRegression()
            return forest.ARFRegressor(seed=self.seed, leaf_model=cast(Any, leaf), **p)
        return forest.ARFRegressor(seed=self.seed, **p)

    def _rows(self, X: np.ndarray) -> list[dict[Hashable, Any]]:
        schema = self.schema_
        n_num = len(schema.numeric)
        levels = [schema.categories.get(c, ()) for c in schema.categorical]
        rows = []
        for r in X:
            row: dict[Hashable, Any] = {
                col: float(v)
                for col, v in zip(schema.numeric, r[:n_num], strict=True)
                if not np.isnan(v)
            }
            for col, lv, v in zip(schema.categorical, levels, r[n_num:], strict=True):
                if not np.isnan(v):
                    row[col] = lv[int(v)]
            rows.append(row)
        return rows

    def _learn(self, X: np.ndarray, y: np.ndarray) -> None:
        targets = y.tolist()  # plain Python ints/floats keep the pickle free of numpy
        for row, target in zip(self._rows(X), targets, strict=True):
            self.model_.learn_one(row, target)

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None:
        self.model_ = self._estimator()
        self._learn(X, y)

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        self._learn(X, y)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        rows = self._rows(X)
        if self.task == "regression":
            return np.asarray([self.model_.predict_one(r) for r in rows], dtype=np.float64)
        model = cast(forest.ARFClassifier, self.model_)
        k = self.n_classes
        out = np.full((len(rows), k), 1.0 / k)
        for i, row in enumerate(rows):
            proba = model.predict_proba_one(row)
            vec = np.asarray([float(proba.get(c, 0.0)) for c in range(k)])
            total = vec.sum()
            if total > 0 and np.isfinite(total):
                out[i] = vec / total
        return out

    def _dump(self) -> bytes:
        buf = io.BytesIO()
        _CanonicalPickler(buf, protocol=_PICKLE_PROTOCOL).dump(self.model_)
        return buf.getvalue()

    def _load(self, payload: bytes) -> None:
        self.model_ = restricted_loads(payload)


def _order(item: Any) -> tuple[str, str]:
    return type(item).__qualname__, repr(item)


class _CanonicalPickler(pickle._Pickler):
    """The pure-Python pickler, made canonical so one learned forest gives one byte string:
    sets are written sorted (their order follows the per-process string hash seed), and
    unseeded river distributions, whose OS-seeded ``random.Random`` only ``sample()`` uses
    (trees never call it), get a fixed one."""

    dispatch: ClassVar[dict[type, Any]] = dict(pickle._Pickler.dispatch)

    def _save_set(self, obj: set[Any]) -> None:
        p: Any = self  # the pure-Python pickler's internals are untyped in typeshed
        p.write(pickle.EMPTY_SET)
        p.memoize(obj)
        items = sorted(obj, key=_order)
        for start in range(0, len(items), p._BATCHSIZE):
            p.write(pickle.MARK)
            for item in items[start : start + p._BATCHSIZE]:
                p.save(item)
            p.write(pickle.ADDITEMS)

    dispatch[set] = _save_set

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Distribution) and obj.seed is None:
            reduced = obj.__reduce_ex__(_PICKLE_PROTOCOL)
            if isinstance(reduced, tuple) and len(reduced) > 2 and isinstance(reduced[2], dict):
                state = {**reduced[2], "_rng": random.Random(0)}
                return (*reduced[:2], state, *reduced[3:])
        return NotImplemented


__all__ = ["RiverModel", "restricted_loads"]

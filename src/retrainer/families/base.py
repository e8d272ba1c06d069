"""The one interface every model family implements.

Constructors only store parameters; ``fit`` learns state whose names end in ``_``. The base
class owns what all families share: the feature schema, class labels, parameter checks,
predictions in original labels, the thread count, and the artifact container (a
deterministic zip holding ``meta.json`` and the family's native payload).

Threads are a property of the machine, not of the recipe. A family names its library's
thread parameter once (``thread_param``); unless ``params`` set it explicitly, the model
computes with ``threads`` (the spec's ``training.threads``) or else every CPU this process may
use (:func:`~retrainer.core.cpus.available_cpus`), never more than those. The count is
resolved on every use and never saved: a model trained on a large machine and loaded on a
small one uses the small one's CPUs. ``effective_params`` stays the recipe (what a version
records and the gate compares); ``runtime_params`` is the recipe plus the resolved count.
Predictions of fewer than ``BATCH_ROWS`` rows use one thread (waking a pool costs more than
it saves for a request's rows); larger batches use the training count.
"""

from __future__ import annotations

import io
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..core.cpus import available_cpus
from ..core.errors import CapabilityError, ConfigError, InputError, IntegrityError
from ..core.family_params import check_params
from .feature_step import FeatureStep
from .schema import FeatureSchema

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# From this many rows a prediction uses the model's threads; below, one thread (see module doc).
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class Capabilities:
    warm_start: bool = False
    incremental: bool = False
    native_categorical: bool = False
    predict_proba: bool = True
    handles_missing: bool = True
    # fit(..., weight=...) takes a weight per training row (recency weighting)
    sample_weight: bool = True


@dataclass(frozen=True)
class ValidationSet:
    X: pd.DataFrame
    y: pd.Series


class FamilyModel(ABC):
    """A model family. Subclasses implement the ``_``-prefixed hooks on float matrices."""

    name: ClassVar[str]
    # Declared per class; an instance may narrow it (an ensemble warm-starts if its members do).
    capabilities: Capabilities
    default_params: ClassVar[dict[str, Any]] = {}
    accepted_params: ClassVar[frozenset[str]] = frozenset()
    payload_name: ClassVar[str] = "model.bin"
    # the params that fit a linear model in each leaf (training.choice.leaves 'linear');
    # None: the family has no such leaves
    linear_leaf_params: ClassVar[dict[str, Any] | None] = None
    # The library's own thread-count parameter; None when there is none to set (river, tabpfn)
    # or the family's members set their own (ensemble).
    thread_param: ClassVar[str | None] = None
    # Whether the family applies a feature step (``features.transform``) to its input rows;
    # the spec allows one only for such a family (sklearn).
    takes_feature_step: ClassVar[bool] = False
    feature_step: FeatureStep | None = None

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
        self.task = task
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.params = dict(params or {})
        self.seed = seed
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ConfigError(
                f"The threads of a {self.name!r} model must be a whole number of at least 1, "
                f"or None for every available CPU; got {threads!r}. Fix training.threads.",
                family=self.name,
                threads=threads,
            )
        self.threads = threads
        try:
            check_params(self.name, task, self.params)
        except ValueError as exc:
            raise ConfigError(
                f"{str(exc)[0].upper()}{str(exc)[1:]}.",
                family=self.name,
                params=sorted(self.params),
            ) from None

    # ---- public API -------------------------------------------------------------------
    @property
    def effective_params(self) -> dict[str, Any]:
        """The recipe: the family's defaults overlaid by ``params`` (no machine-made thread
        count: see ``runtime_params``)."""
        return {**self.default_params, **self.params}

    @property
    def n_threads(self) -> int:
        """The threads this model trains (and predicts large batches) with: the family's own
        thread parameter when ``params`` set it, else ``threads``, else every CPU this process
        may use; the last two never more than those CPUs. Resolved on every call.

        >>> from retrainer.families.randomforest import RandomForestModel
        >>> RandomForestModel("regression", ["x"], params={"n_jobs": 3}, threads=1).n_threads
        3
        >>> RandomForestModel("regression", ["x"], threads=1).n_threads
        1
        >>> RandomForestModel("regression", ["x"]).n_threads == available_cpus()
        True
        """
        if self.thread_param is not None and self.params.get(self.thread_param) is not None:
            explicit: int = self.params[self.thread_param]
            return explicit
        cpus = available_cpus()
        return cpus if self.threads is None else min(self.threads, cpus)

    @property
    def runtime_params(self) -> dict[str, Any]:
        """``effective_params`` with the family's thread parameter set to ``n_threads``: what
        the family hands its library."""
        params = self.effective_params
        if self.thread_param is not None:
            params[self.thread_param] = self.n_threads
        return params

    def predict_threads(self, n_rows: int) -> int:
        """Threads for scoring ``n_rows`` rows: one below ``BATCH_ROWS``, else ``n_threads``.

        >>> from retrainer.families.randomforest import RandomForestModel
        >>> m = RandomForestModel("regression", ["x"], threads=1)
        >>> m.predict_threads(1), m.predict_threads(BATCH_ROWS)
        (1, 1)
        """
        return 1 if n_rows < BATCH_ROWS else self.n_threads

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        validation: ValidationSet | None = None,
        *,
        weight: np.ndarray | None = None,
    ) -> FamilyModel:
        """Learn ``X`` -> ``y`` (early stopping on ``validation`` where the family uses it);
        ``weight``: one non-negative weight per row of ``X`` (families whose capabilities
        say ``sample_weight``)."""
        if weight is not None:
            weight = self._check_weight(weight, len(X))
        self.schema_ = FeatureSchema.learn(X, self.numeric, self.categorical)
        y_enc = self._encode_target(np.asarray(y), learn=True)
        Xm = self._matrix(X)
        val = None
        if validation is not None:
            val = (self._matrix(validation.X), self._encode_target(np.asarray(validation.y)))
        self._fit(Xm, y_enc, val, weight)
        return self

    def _check_weight(self, weight: np.ndarray, n: int) -> np.ndarray:
        if not self.capabilities.sample_weight:
            raise CapabilityError(
                f"The {self.name!r} family takes no row weights. Train it without recency "
                "weighting (training.choice.half_lives: [none])."
            )
        w = np.asarray(weight, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any():
            raise InputError(
                f"Row weights for the {self.name!r} family must be {n} finite numbers >= 0, "
                f"one per row; got shape {w.shape}."
            )
        return w

    def check_recipe(self) -> None:
        """Check what the recipe names before any fit (the sklearn family imports and checks
        its estimator); raises InputError naming the bad part."""
        return None

    def lineage(self) -> dict[str, Any]:
        """What a version records about the model beyond its family and params (the sklearn
        family: its estimator's class and its feature step's path and source hash)."""
        return {}

    def settled_params(self) -> dict[str, Any] | None:
        """After a fit with a validation set: the parameters that give a model of the size
        early stopping chose, without one (e.g. boosting rounds). None when the fit settles
        nothing, so a refit on every row simply repeats the recipe."""
        return None

    def fine_tune(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        validation: ValidationSet | None = None,
        *,
        learning_rate_factor: float = 0.5,
        rounds: int = 100,
    ) -> FamilyModel:
        """Continue training on new rows (warm start); returns self."""
        self._check_fitted()
        if not self.capabilities.warm_start:
            raise CapabilityError(
                f"The {self.name!r} family cannot warm-start, so it cannot fine-tune. "
                "Run a full retrain instead (`retrainer train`)."
            )
        y_enc = self._encode_target(np.asarray(y))
        val = None
        if validation is not None:
            val = (self._matrix(validation.X), self._encode_target(np.asarray(validation.y)))
        self._fine_tune(self._matrix(X), y_enc, val, learning_rate_factor, rounds)
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        raw = self.predict_raw(X)
        if self.task == "regression":
            return raw
        return np.asarray(self.classes_, dtype=object)[np.argmax(raw, axis=1)]

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if self.task != "classification":
            raise CapabilityError(
                f"predict_proba needs a classifier; this {self.name} model regresses."
            )
        return self.predict_raw(X)

    def predict_raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Regression values, or the (n, k) class-probability matrix; accepts the float matrix."""
        self._check_fitted()
        Xm = X if isinstance(X, np.ndarray) else self._matrix(X)
        out = self._predict(Xm)
        if self.task == "classification" and out.ndim == 1:
            out = np.column_stack([1.0 - out, out])
        return out

    def encode_target(self, y: pd.Series | np.ndarray) -> np.ndarray:
        """Class indices for labels (classification) or floats (regression)."""
        self._check_fitted()
        return self._encode_target(np.asarray(y))

    def save(self) -> bytes:
        """The artifact: a deterministic zip of meta.json and the native payload."""
        self._check_fitted()
        meta = {
            "format": 1,
            "family": self.name,
            "task": self.task,
            "params": self.params,
            "seed": self.seed,
            "schema": self.schema_.to_dict(),
            "classes": self.classes_,
            "extra": self._meta(),
        }
        return write_zip(
            [
                ("meta.json", json.dumps(meta, sort_keys=True).encode()),
                (self.payload_name, self._dump()),
            ]
        )

    @classmethod
    def adopt(
        cls,
        task: str,
        numeric: Sequence[str],
        categorical: Sequence[str],
        payload: bytes,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        threads: int | None = None,
    ) -> FamilyModel:
        """A fitted model of this family from a native payload made elsewhere (an imported
        file, ``retrainer deploy --from-file``): the feature schema is learned from ``X`` and
        the class labels from ``y`` as :meth:`fit` would learn them, then the payload is
        loaded. The caller checks that the payload fits both (columns, classes); ``save``
        then writes the usual artifact. Its recipe is unknown, so ``params`` stay empty."""
        model = cls(task, numeric, categorical, {}, 0, threads=threads)
        model.schema_ = FeatureSchema.learn(X, model.numeric, model.categorical)
        model._encode_target(np.asarray(y), learn=True)
        model._load(payload)
        return model

    # ---- helpers ----------------------------------------------------------------------
    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        return self.schema_.matrix(X)

    def _encode_target(self, y: np.ndarray, learn: bool = False) -> np.ndarray:
        if self.task == "regression":
            try:
                out = y.astype(np.float64)
            except (TypeError, ValueError):
                raise InputError(
                    "A regression target must be numeric; got values like "
                    f"{list(map(str, y[:3]))}. Use task: classification for labels."
                ) from None
            if learn:
                self.classes_: list[Any] = []
            return out
        # One label per distinct value, not per row: a million rows hold a few classes.
        codes, uniques = pd.factorize(pd.Series(y, dtype=object), use_na_sentinel=False)
        labels = [_label(u) for u in uniques]
        if learn:
            self.classes_ = sorted(set(labels), key=_sort_key)
            if len(self.classes_) < 2:
                raise InputError(
                    f"The target has one class only ({self.classes_}); a classifier needs at "
                    "least two. Widen the training window or check the target column."
                )
        index = {c: i for i, c in enumerate(self.classes_)}
        try:
            table = np.array([index[v] for v in labels], dtype=np.int64)
        except KeyError as exc:
            raise InputError(
                f"Target value {exc.args[0]!r} was not seen in training; known classes: "
                f"{self.classes_}."
            ) from None
        return table[codes] if len(codes) else np.empty(0, dtype=np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "schema_"):
            raise CapabilityError(
                f"This {type(self).__name__} is not fitted yet. Call fit(X, y) first, "
                "or load a saved model with load_model(bytes)."
            )

    def _meta(self) -> dict[str, Any]:
        return {}

    def _restore_meta(self, extra: dict[str, Any]) -> None:
        return None

    @abstractmethod
    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        weight: np.ndarray | None = None,
    ) -> None: ...

    def _fine_tune(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        learning_rate_factor: float,
        rounds: int,
    ) -> None:
        raise CapabilityError(f"The {self.name!r} family cannot warm-start.")

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _dump(self) -> bytes: ...

    @abstractmethod
    def _load(self, payload: bytes) -> None: ...

    @property
    def n_classes(self) -> int:
        return len(self.classes_)


def _label(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, int | float) else (1, str(v))


def class_labels(y: pd.Series | np.ndarray) -> list[Any]:
    """The class labels of a target in the order every family indexes them (as ``fit``).

    >>> class_labels(np.array(["yes", "no", "yes"])), class_labels(np.array([1.0, 0.0]))
    (['no', 'yes'], [0, 1])
    """
    uniques = pd.unique(pd.Series(np.asarray(y), dtype=object))
    return sorted({_label(u) for u in uniques}, key=_sort_key)


def write_zip(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """A deterministic zip of named byte strings (fixed timestamps and modes, given order)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def read_zip(data: bytes, what: str) -> dict[str, bytes]:
    """The entries of a zip made by ``write_zip``, in order; IntegrityError names ``what``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {name: zf.read(name) for name in zf.namelist()}
    except (zipfile.BadZipFile, KeyError) as exc:
        raise IntegrityError(f"The {what} is not a readable zip archive ({exc}).") from None


def read_artifact(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split an artifact into its meta.json and payload."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            meta = json.loads(zf.read("meta.json"))
            payload = zf.read(next(n for n in names if n != "meta.json"))
    except (zipfile.BadZipFile, KeyError, StopIteration, json.JSONDecodeError) as exc:
        raise IntegrityError(f"The artifact is not a retrainer model archive ({exc}).") from None
    return meta, payload

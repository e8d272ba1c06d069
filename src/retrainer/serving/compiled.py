"""The serving backend of a loaded version: ``native`` (the family's library) or ``onnx``
(``serving.backend: onnx``: the tree model compiled to ONNX and scored by ONNX Runtime).

The compiled model is built when the server loads a version, from the native artifact that
the registry has just verified (hash and HMAC), and kept with the loaded version for as long
as it serves: nothing new is stored, so there is no second artifact to sign, verify or
migrate. Before it serves a single request it is checked: both backends score a
verification sample through the predictor (calibration included) and the largest difference
must stay within ``serving.compiled_tolerance`` (absolute for probabilities, times
``max(1, |value|)`` for regression values). Anything else — a family without a converter,
a CatBoost model with categorical features, the ``compiled`` extra missing, a conversion
error, one difference too large, a NaN on one side only — logs a warning naming the reason
and the version is served native: a compiled model never serves numbers the native one
would not.

The verification sample is made from the version's own reference statistics (stored with
it at training): every numeric column takes the values of its training sketch (actual
training values, min and max included) in a seeded shuffle, with a share of missing values;
every categorical column each level the model knows and missing. Columns vary
independently, so the rows reach more of each tree than the training rows would.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import CapabilityError, RetrainerError
from ..core.spec_sections import Serving
from ..families.compiled import BACKEND, CompiledModel, compile_model
from ..lifecycle.predictor import Predictor
from ..monitoring.reference import ReferenceStats

log = logging.getLogger("retrainer.serving")

MIN_ROWS, MAX_ROWS = 256, 4096
MISSING_SHARE = 0.05


@dataclass(frozen=True)
class Backend:
    """What scores a loaded version, and what the check at load found."""

    name: str  # "native" | "onnx"
    requested: str = "native"
    max_abs_diff: float | None = None
    rows: int = 0  # rows of the verification sample
    compile_seconds: float | None = None
    reason: str | None = None  # why an asked-for onnx backend is not serving

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "requested": self.requested,
            "max_abs_diff": self.max_abs_diff,
            "verified_rows": self.rows,
            "compile_seconds": self.compile_seconds,
            "reason": self.reason,
        }


NATIVE = Backend("native")


@dataclass(frozen=True)
class CompiledPredictor(Predictor):
    """A predictor whose model scores through the compiled session; everything else (the
    schema, classes, calibration, interval) is the native version's."""

    compiled: CompiledModel | None = field(default=None, compare=False, repr=False)

    def raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        assert self.compiled is not None
        Xm = X if isinstance(X, np.ndarray) else self.model.schema_.matrix(X)
        out = self.compiled.predict_raw(Xm)
        if self.calibrator is not None:
            out = self.calibrator.apply(out)
        return out


def verification_sample(predictor: Predictor, seed: int = 0) -> np.ndarray:
    """The version's verification rows as the model's float matrix (see the module doc);
    CapabilityError when the version has no reference statistics to make them from."""
    version = predictor.version
    record = version.details.get("reference")
    if not record:
        raise CapabilityError(
            f"Version {version.model} {version.version} has no reference statistics, so there "
            "is no sample to verify a compiled model on. Retrain it (training stores them)."
        )
    ref = ReferenceStats.from_dict(record)
    schema = predictor.model.schema_
    knots = {c: ref.numeric[c].knots if c in ref.numeric else () for c in schema.numeric}
    n = min(MAX_ROWS, max(MIN_ROWS, *(len(k) for k in knots.values()), 0))
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for col in schema.numeric:
        values = np.asarray(knots[col] or (0.0,), dtype=np.float64)
        data[col] = rng.permutation(np.resize(values, n))
    for col in schema.categorical:
        levels = np.array([*schema.categories.get(col, ()), None], dtype=object)
        data[col] = rng.permutation(np.resize(levels, n))
    frame = pd.DataFrame(data, columns=list(schema.columns))
    X = schema.matrix(frame)
    if predictor.model.capabilities.handles_missing and len(schema.numeric):
        k = len(schema.numeric)
        X[:, :k][rng.random((n, k)) < MISSING_SHARE] = np.nan
    return X


def max_difference(native: np.ndarray, compiled: np.ndarray, task: str) -> tuple[float, float]:
    """(the largest absolute difference, the largest difference over its allowed scale):
    the scale is 1 for probabilities, max(1, |native|) for regression values. A NaN on one
    side only is an infinite difference.

    >>> d = max_difference(np.array([100.0, 1.0]), np.array([100.001, 1.0]), "regression")
    >>> round(d[0], 6), round(d[1], 8)
    (0.001, 1e-05)
    >>> max_difference(np.array([1.0]), np.array([np.nan]), "regression")
    (inf, inf)
    """
    a, b = np.asarray(native, dtype=np.float64), np.asarray(compiled, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf"), float("inf")
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if (nan_a != nan_b).any():
        return float("inf"), float("inf")
    diff = np.where(nan_a, 0.0, np.abs(a - b))
    if diff.size == 0:
        return 0.0, 0.0
    scale = np.maximum(1.0, np.abs(np.where(nan_a, 0.0, a))) if task == "regression" else 1.0
    return float(diff.max()), float((diff / scale).max())


def choose_backend(predictor: Predictor, serving: Serving) -> tuple[Predictor, Backend]:
    """The predictor to serve and its backend: ``predictor`` itself unless ``serving.backend``
    is ``onnx`` and the compiled model passes the check (see the module doc)."""
    if serving.backend == "native":
        return predictor, NATIVE
    v = predictor.version
    started = time.perf_counter()
    try:
        compiled = compile_model(predictor.model)
        seconds = round(time.perf_counter() - started, 3)
        candidate = CompiledPredictor(
            predictor.version,
            predictor.model,
            predictor.calibrator,
            predictor.interval,
            compiled=compiled,
        )
        X = verification_sample(predictor)
        diff, scaled = max_difference(predictor.raw(X), candidate.raw(X), predictor.task)
    except RetrainerError as exc:
        return predictor, _refused(v.model, v.version, serving, exc.message)
    except Exception as exc:  # ONNX Runtime refusing a graph, say: never fail the load
        return predictor, _refused(v.model, v.version, serving, f"{type(exc).__name__}: {exc}")
    if not scaled <= serving.compiled_tolerance:
        reason = (
            f"the compiled model differs from the native one by up to {diff:.3g} on {len(X)} "
            f"verification rows, over serving.compiled_tolerance {serving.compiled_tolerance:g}"
        )
        return predictor, _refused(v.model, v.version, serving, reason, diff, len(X))
    log.info(
        "model %s: %s serves with the %s backend (max difference %.3g on %d rows, "
        "compiled in %.2f s)",
        v.model,
        v.version,
        BACKEND,
        diff,
        len(X),
        seconds,
    )
    return candidate, Backend(BACKEND, serving.backend, diff, len(X), seconds)


def _refused(
    model: str,
    version: str,
    serving: Serving,
    reason: str,
    diff: float | None = None,
    rows: int = 0,
) -> Backend:
    log.warning(
        "model %s: %s is served native, not %s: %s", model, version, serving.backend, reason
    )
    return Backend("native", serving.backend, diff, rows, None, reason)

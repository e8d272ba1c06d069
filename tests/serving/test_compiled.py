"""The compiled (ONNX Runtime) serving backend: equal to the native prediction on the family
conformance data, refused with a reason (and served native) where it cannot be, and a
mismatching compiled model never serves.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime", reason="the compiled extra: pip install 'retrainer[compiled]'")

from retrainer.core.entities import ModelVersion
from retrainer.core.errors import CapabilityError
from retrainer.core.spec_sections import Serving
from retrainer.evaluation.calibration import fit_calibrator
from retrainer.families import FamilyModel, family_class
from retrainer.families.compiled import COMPILED_FAMILIES, CompiledModel, compile_model
from retrainer.lifecycle.predictor import Predictor
from retrainer.monitoring.reference import ReferenceStats
from retrainer.serving import compiled as serving_compiled
from retrainer.serving.compiled import (
    CompiledPredictor,
    choose_backend,
    max_difference,
    verification_sample,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "families"))
from test_conformance import SMALL_PARAMS, make_data

ONNX = Serving(backend="onnx")
TOLERANCE = ONNX.compiled_tolerance


def version_for(X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> ModelVersion:
    """A registered version's record: what the check reads is its reference statistics."""
    now = datetime(2024, 1, 1, tzinfo=UTC)
    ref = ReferenceStats.from_frame(X, numeric, categorical).to_dict()
    return ModelVersion(
        "m", "1.0.0", None, "x", {}, now, "manual", "test", "initial", now, now, len(X),
        "f", {}, {}, "m/1.0.0", "0" * 64, None, 1, details={"reference": ref},
    )  # fmt: skip


def fitted(
    family: str, task: str, categorical: bool = True, classes: int = 2
) -> tuple[FamilyModel, pd.DataFrame, list[str], list[str]]:
    X, y = make_data(task, n=400)
    if classes == 3:
        y = pd.Series(np.where(X["x"].fillna(0) > 0.5, "high", np.asarray(y, dtype=object)))
    cats = ["c"] if categorical else []
    if not categorical:
        X = X[["x"]].assign(z=np.random.default_rng(1).normal(size=len(X)))
    numeric = [c for c in X.columns if c not in cats]
    model = family_class(family)(task, numeric, cats, SMALL_PARAMS[family], threads=1)
    return model.fit(X, y), X, numeric, cats


def assert_equal_predictions(model: FamilyModel, X: pd.DataFrame) -> None:
    Xm = model.schema_.matrix(X)
    compiled = compile_model(model)
    native = model.predict_raw(Xm)
    out = compiled.predict_raw(Xm)
    assert out.shape == native.shape
    _, scaled = max_difference(native, out, model.task)
    assert scaled <= TOLERANCE, f"{model.name} {model.task}: compiled differs by {scaled:.3g}"


CASES = [
    (f, t, cat)
    for f in COMPILED_FAMILIES
    for t in ("classification", "regression")
    for cat in ((False,) if f == "catboost" else (True, False))
]


@pytest.mark.parametrize(("family", "task", "categorical"), CASES)
def test_compiled_equals_native_on_conformance_data(
    family: str, task: str, categorical: bool
) -> None:
    model, X, numeric, cats = fitted(family, task, categorical)
    assert_equal_predictions(model, X)
    predictor = Predictor(version_for(X, numeric, cats), model, None)
    served, backend = choose_backend(predictor, ONNX)
    assert backend.name == "onnx", backend.reason
    assert isinstance(served, CompiledPredictor)
    assert backend.rows >= serving_compiled.MIN_ROWS and backend.max_abs_diff is not None
    labels, proba = served.predict(X)
    native_labels, native_proba = predictor.predict(X)
    if task == "classification":
        assert labels == native_labels or np.abs(proba - native_proba).max() <= TOLERANCE
    else:
        assert np.allclose(labels, native_labels, rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize("family", COMPILED_FAMILIES)
def test_three_classes(family: str) -> None:
    model, X, _, _ = fitted(family, "classification", categorical=False, classes=3)
    assert model.n_classes == 3
    assert_equal_predictions(model, X)


def test_randomforest_scores_rows_with_a_missing_value_natively() -> None:
    model, X, _, _ = fitted("randomforest", "regression")
    Xm = model.schema_.matrix(X)
    assert np.isnan(Xm).any(axis=1).any()
    only_missing = Xm[np.isnan(Xm).any(axis=1)]
    out = compile_model(model).predict_raw(only_missing)
    assert np.array_equal(out, model.predict_raw(only_missing))


def test_calibrated_model_is_verified_through_its_calibrator() -> None:
    model, X, numeric, cats = fitted("lightgbm", "classification")
    y = (X["x"].fillna(0) > 0).astype(int).to_numpy()
    cal = fit_calibrator("isotonic", model.predict_raw(model.schema_.matrix(X)), y)
    predictor = Predictor(version_for(X, numeric, cats), model, cal)
    served, backend = choose_backend(predictor, ONNX)
    assert backend.name == "onnx", backend.reason
    sample = verification_sample(predictor)
    _, scaled = max_difference(predictor.raw(sample), served.raw(sample), "classification")
    assert scaled <= TOLERANCE


@pytest.mark.parametrize(
    ("family", "categorical", "says"),
    [
        ("catboost", True, "does not support categorical features"),
        ("river", True, "has no compiled backend"),
    ],
)
def test_refused_with_a_reason_and_served_native(
    family: str, categorical: bool, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    params = {"river": {"n_models": 3, "grace_period": 20}}.get(family)
    X, y = make_data("classification", n=300)
    model = family_class(family)("classification", ["x"], ["c"], params or SMALL_PARAMS[family])
    model.fit(X, y)
    predictor = Predictor(version_for(X, ["x"], ["c"]), model, None)
    with pytest.raises(CapabilityError, match=says):
        compile_model(model)
    with caplog.at_level(logging.WARNING, logger="retrainer.serving"):
        served, backend = choose_backend(predictor, ONNX)
    assert served is predictor
    assert (backend.name, backend.requested) == ("native", "onnx")
    assert backend.reason is not None and says in backend.reason
    assert any("served native" in r.message and says in r.message for r in caplog.records)


def test_a_mismatching_compiled_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A corrupt compiled model (here: another model's ONNX graph) fails the check."""
    model, X, numeric, cats = fitted("xgboost", "regression")
    other, _, _, _ = fitted("xgboost", "regression", categorical=False)
    wrong = compile_model(other).onnx_bytes

    def corrupt(m: FamilyModel) -> CompiledModel:
        return CompiledModel(m.name, m.task, 0, wrong)

    monkeypatch.setattr(serving_compiled, "compile_model", corrupt)
    predictor = Predictor(version_for(X, numeric, cats), model, None)
    served, backend = choose_backend(predictor, ONNX)
    assert served is predictor and backend.name == "native"
    assert backend.max_abs_diff is not None and backend.max_abs_diff > TOLERANCE
    assert "over serving.compiled_tolerance" in (backend.reason or "")


def test_a_converter_failure_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    model, X, numeric, cats = fitted("lightgbm", "classification")

    def broken(m: FamilyModel) -> CompiledModel:
        return CompiledModel(m.name, m.task, 2, b"not an onnx graph")

    monkeypatch.setattr(serving_compiled, "compile_model", broken)
    _, backend = choose_backend(Predictor(version_for(X, numeric, cats), model, None), ONNX)
    assert backend.name == "native" and backend.reason


def test_no_reference_statistics_no_compiled_backend() -> None:
    model, X, numeric, cats = fitted("lightgbm", "regression")
    bare = version_for(X, numeric, cats)
    bare = ModelVersion(**{**bare.__dict__, "details": {}})
    _, backend = choose_backend(Predictor(bare, model, None), ONNX)
    assert backend.name == "native" and "no reference statistics" in (backend.reason or "")


def test_native_is_the_default() -> None:
    model, X, numeric, cats = fitted("lightgbm", "regression")
    predictor = Predictor(version_for(X, numeric, cats), model, None)
    served, backend = choose_backend(predictor, Serving())
    assert served is predictor and backend.to_dict()["backend"] == "native"


def test_verification_sample_covers_levels_and_missing() -> None:
    model, X, numeric, cats = fitted("lightgbm", "classification")
    sample = verification_sample(Predictor(version_for(X, numeric, cats), model, None))
    codes = sample[:, 1]
    assert set(np.unique(codes[~np.isnan(codes)])) == {0.0, 1.0, 2.0}
    assert np.isnan(codes).any() and np.isnan(sample[:, 0]).any()
    again = verification_sample(Predictor(version_for(X, numeric, cats), model, None))
    assert np.array_equal(sample, again, equal_nan=True)  # seeded


def test_the_spec_refuses_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        Serving(backend="treelite")  # type: ignore[arg-type]


def test_a_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _, _, _ = fitted("lightgbm", "regression")
    monkeypatch.setitem(sys.modules, "onnxmltools", None)  # import fails: not installed
    with pytest.raises(CapabilityError, match=r"pip install 'retrainer\[compiled\]'"):
        compile_model(model)

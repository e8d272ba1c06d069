"""Compiled inference for the tree families: a fitted model converted to ONNX and scored by
ONNX Runtime (the ``compiled`` extra: ``pip install 'retrainer[compiled]'``).

One converter per family, each a real library's: scikit-learn's random forest through
skl2onnx, LightGBM and XGBoost boosters through onnxmltools, CatBoost through its own ONNX
export. The compiled model scores the same float matrix the family scores (categorical
columns as level codes, missing as NaN) and answers what ``FamilyModel.predict_raw`` answers:
the regression values, or the (n, k) class probabilities. It computes in float32, so it
agrees with the native library to about 1e-6, not bit for bit; serving verifies that on a
sample before it uses one (``serving.compiled``).

A random forest's rows with a missing value are scored by scikit-learn itself: skl2onnx does
not follow scikit-learn's routing of missing values (NaN goes where the training rows with
NaN went, or to the larger child), so only complete rows go to ONNX Runtime.

What cannot be compiled raises ``CapabilityError`` naming the reason: a family without a
converter (river, ensemble, tabpfn, sklearn, mlp, linear), a CatBoost model with categorical
features (CatBoost's ONNX export has none), or the extra not installed.

>>> import numpy as np, pandas as pd
>>> from retrainer.families.lightgbm_family import LightGBMModel
>>> X = pd.DataFrame({"x": np.arange(200.0)})
>>> m = LightGBMModel("regression", ["x"], params={"n_estimators": 20}).fit(X, X["x"] * 2)
>>> c = compile_model(m)
>>> Xm = m.schema_.matrix(X)
>>> bool(np.abs(c.predict_raw(Xm) - m.predict_raw(Xm)).max() < 1e-3), c.family
(True, 'lightgbm')
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.errors import CapabilityError
from ..core.extras import install_hint
from .base import FamilyModel

BACKEND = "onnx"
# ONNX operator sets the converters write: onnxmltools' LightGBM and XGBoost converters
# support up to 15; the ai.onnx.ml set 3 keeps tree thresholds exact for skl2onnx.
_OPSET = 15
_ML_OPSET = 3
_PROBABILITIES = ("probabilities", "probability_tensor")


class CompiledModel:
    """An ONNX Runtime session over one converted model; ``predict_raw`` scores the family's
    float matrix. Holds the ONNX bytes (``onnx_bytes``) it was built from."""

    def __init__(
        self,
        family: str,
        task: str,
        n_classes: int,
        onnx_bytes: bytes,
        *,
        missing: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.family = family
        self.task = task
        self.n_classes = n_classes
        self.onnx_bytes = onnx_bytes
        self._missing = missing  # scores the rows with a NaN, when the graph cannot
        options = ort.SessionOptions()
        # a request's rows: one thread (waking a pool costs more than it saves)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # no shape warnings for converters' label outputs
        self._session = ort.InferenceSession(
            onnx_bytes, options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._output = self._pick_output()

    def _pick_output(self) -> str:
        outputs = [o for o in self._session.get_outputs() if o.type.startswith("tensor(")]
        if self.task == "classification":
            named = [o for o in outputs if o.name in _PROBABILITIES and "float" in o.type]
            if not named:
                found = [(o.name, o.type) for o in self._session.get_outputs()]
                raise CapabilityError(
                    f"The compiled {self.family} classifier has no class-probability output "
                    f"(found {found}); expected one named {' or '.join(_PROBABILITIES)}. "
                    "Serve it with the native backend (serving.backend: native)."
                )
            return str(named[0].name)
        return str(outputs[0].name)

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Regression values (n,), or the (n, k) class probabilities, as float64."""
        if self._missing is not None:
            holes = np.isnan(X).any(axis=1)
            if holes.any():
                out = np.empty((len(X), self.n_classes) if self.n_classes else len(X))
                out[holes] = self._missing(X[holes])
                if not holes.all():
                    out[~holes] = self._session_raw(X[~holes])
                return out
        return self._session_raw(X)

    def _session_raw(self, X: np.ndarray) -> np.ndarray:
        (out,) = self._session.run([self._output], {self._input: X.astype(np.float32)})
        values = np.asarray(out, dtype=np.float64)
        if self.task == "regression":
            return values.reshape(len(X))
        if values.ndim == 1 or values.shape[1] == 1:  # one column: the positive class
            p = values.reshape(len(X))
            values = np.column_stack([1.0 - p, p])
        return values


def compile_model(model: FamilyModel) -> CompiledModel:
    """The fitted ``model`` converted to ONNX and loaded in ONNX Runtime; CapabilityError when
    its family (or this model) cannot be compiled, saying why and that native serving stays."""
    converter = _CONVERTERS.get(model.name)
    if converter is None:
        raise CapabilityError(
            f"The {model.name!r} family has no compiled backend; compiled inference covers "
            f"{', '.join(sorted(_CONVERTERS))}. Serve it with serving.backend: native.",
            family=model.name,
        )
    n_features = len(model.schema_.columns)
    n_classes = model.n_classes if model.task == "classification" else 0
    try:
        import onnxruntime  # noqa: F401

        data = converter(model, n_features)
    except CapabilityError:
        raise
    except ImportError as exc:
        raise CapabilityError(
            f"Compiled inference needs the Python library {exc.name!r}, which is not "
            f"installed. Install it with `{install_hint(exc.name or 'onnxruntime')}`, or serve "
            "with serving.backend: native.",
            family=model.name,
            module=exc.name,
        ) from None
    except Exception as exc:  # a converter's own refusal: name it
        raise CapabilityError(
            f"The {model.name} model could not be converted to ONNX "
            f"({type(exc).__name__}: {str(exc)[:300]}). Serve it with serving.backend: native.",
            family=model.name,
        ) from None
    missing = model.predict_raw if model.name in _NATIVE_MISSING else None
    return CompiledModel(model.name, model.task, n_classes, data, missing=missing)


def _randomforest(model: Any, n_features: int) -> bytes:
    from skl2onnx import to_onnx

    est = model.estimator_
    options = {id(est): {"zipmap": False}} if model.task == "classification" else None
    sample = np.zeros((1, n_features), dtype=np.float32)  # float32: as scikit-learn scores
    onx = to_onnx(est, sample, options=options, target_opset={"": _OPSET, "ai.onnx.ml": _ML_OPSET})
    return bytes(onx.SerializeToString())


def _float_input(n_features: int) -> list[tuple[str, Any]]:
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("input", FloatTensorType([None, n_features]))]


def _lightgbm(model: Any, n_features: int) -> bytes:
    from onnxmltools import convert_lightgbm

    if model.runtime_params.get("linear_tree"):
        raise CapabilityError(
            "onnxmltools' LightGBM converter has no linear leaves, and this model fits a linear "
            "model in each leaf (linear_tree, chosen by training.choice.leaves). Serve it with "
            "serving.backend: native, or set training.choice.leaves: [constant].",
            family="lightgbm",
        )
    onx = convert_lightgbm(
        model.booster_, initial_types=_float_input(n_features), zipmap=False, target_opset=_OPSET
    )
    return bytes(onx.SerializeToString())


def _xgboost(model: Any, n_features: int) -> bytes:
    from onnxmltools import convert_xgboost

    onx = convert_xgboost(
        model.booster_, initial_types=_float_input(n_features), target_opset=_OPSET
    )
    return bytes(onx.SerializeToString())


def _catboost(model: Any, n_features: int) -> bytes:
    if model.schema_.categorical:
        raise CapabilityError(
            f"CatBoost's ONNX export does not support categorical features, and this model "
            f"has {list(model.schema_.categorical)}. Serve it with serving.backend: native.",
            family="catboost",
        )
    with tempfile.TemporaryDirectory(prefix="retrainer-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        model.model_.save_model(path, format="onnx")
        with open(path, "rb") as fh:
            data = fh.read()
    return _without_zipmap(data) if model.task == "classification" else data


def _without_zipmap(data: bytes) -> bytes:
    """CatBoost's classifier graph ends in a ZipMap (a list of dicts per row); serve the
    probability tensor that feeds it instead."""
    import onnx

    graph = onnx.load_from_string(data)
    for node in list(graph.graph.node):
        if node.op_type != "ZipMap":
            continue
        graph.graph.node.remove(node)
        for out in list(graph.graph.output):
            if out.name == node.output[0]:
                graph.graph.output.remove(out)
        graph.graph.output.append(
            onnx.helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None)
        )
    return bytes(graph.SerializeToString())


_CONVERTERS: dict[str, Callable[[Any, int], bytes]] = {
    "randomforest": _randomforest,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "catboost": _catboost,
}
COMPILED_FAMILIES = tuple(sorted(_CONVERTERS))
_NATIVE_MISSING = frozenset({"randomforest"})  # rows with a NaN are scored natively

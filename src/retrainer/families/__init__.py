"""Model families behind one interface, chosen by name, imported lazily.

>>> sorted(FAMILY_MODULES)[:3]
['catboost', 'ensemble', 'lightgbm']
"""

from __future__ import annotations

import importlib
from typing import Any

from ..core.errors import FamilyUnavailableError, InputError
from ..core.spec import FAMILIES
from .base import Capabilities, FamilyModel, ValidationSet, read_artifact
from .schema import FeatureSchema

FAMILY_MODULES: dict[str, tuple[str, str]] = {
    "randomforest": ("randomforest", "RandomForestModel"),
    "lightgbm": ("lightgbm_family", "LightGBMModel"),
    "xgboost": ("xgboost_family", "XGBoostModel"),
    "catboost": ("catboost_family", "CatBoostModel"),
    "river": ("river_family", "RiverModel"),
    "ensemble": ("ensemble", "EnsembleModel"),
    "tabpfn": ("tabpfn_family", "TabPFNModel"),
    "sklearn": ("sklearn_family", "SklearnModel"),
    "mlp": ("mlp_family", "MLPModel"),
    "lstm": ("lstm_family", "LSTMModel"),
    "linear": ("linear_family", "LinearModel"),
}
assert set(FAMILY_MODULES) == set(FAMILIES)
EXTRA_OF = {"lstm": "mlp"}  # a family installed by another family's extra


def family_class(name: str) -> type[FamilyModel]:
    """The class of a family; raises FamilyUnavailableError when its library is missing."""
    if name not in FAMILY_MODULES:
        raise InputError(
            f"Unknown model family {name!r}. Valid families: {', '.join(FAMILIES)}.",
            family=name,
        )
    module, cls = FAMILY_MODULES[name]
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        raise FamilyUnavailableError(
            f"The {name!r} family cannot be imported ({exc}). Install it with "
            f"`pip install 'retrainer[{EXTRA_OF.get(name, name)}]'`, or choose another family.",
            family=name,
        ) from None
    klass: type[FamilyModel] = getattr(mod, cls)
    return klass


def load_model(data: bytes, *, threads: int | None = None) -> FamilyModel:
    """Rebuild a fitted model from its artifact bytes (verify them before calling this).

    The artifact holds no thread count: the model computes with ``threads`` (e.g. the spec's
    ``training.threads`` for a fine-tune), else with the CPUs of the machine that loads it.
    """
    meta, payload = read_artifact(data)
    return restore(meta, payload, threads=threads)


def restore(meta: dict[str, Any], payload: bytes, *, threads: int | None = None) -> FamilyModel:
    klass = family_class(meta["family"])
    schema = FeatureSchema.from_dict(meta["schema"])
    model = klass(
        meta["task"],
        schema.numeric,
        schema.categorical,
        meta["params"],
        meta["seed"],
        threads=threads,
    )
    model.schema_ = schema
    model.classes_ = list(meta["classes"])
    model._restore_meta(meta.get("extra", {}))
    model._load(payload)
    return model


__all__ = [
    "FAMILY_MODULES",
    "Capabilities",
    "FamilyModel",
    "FeatureSchema",
    "ValidationSet",
    "family_class",
    "load_model",
]

"""The hyper-parameter search space of each model family: declared once, as plain data.

A full retrain with ``training.search`` (or ``retrainer train --search``) tries values of
these parameters (:mod:`retrainer.lifecycle.search`); every other parameter keeps the spec's
value (or the family's default). Each range holds the values that are valid for the
family's constructor (see :mod:`retrainer.core.family_params`), so a trial never fails on a
bad value. The boosting families' number of rounds is not searched: early stopping settles
it on every fit, whatever the learning rate.

>>> [d.name for d in space_for("randomforest")]
['max_depth', 'min_samples_leaf', 'max_features', 'max_samples']
>>> Dim("learning_rate", "float", 0.01, 0.3, log=True).to_dict()
{'name': 'learning_rate', 'type': 'float', 'low': 0.01, 'high': 0.3, 'log': True}
>>> try:
...     space_for("river")
... except ValueError as exc:
...     print(str(exc).split(";")[0])
the river family has no hyper-parameter search space
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..core.family_params import ACCEPTED


@dataclass(frozen=True)
class Dim:
    """One searched parameter: integers or floats in [low, high], on a log scale when
    ``log`` (a rate or a penalty, whose useful values span decades)."""

    name: str
    type: Literal["int", "float"]
    low: float
    high: float
    log: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "low": self.low,
            "high": self.high,
            "log": self.log,
        }


_RATE = Dim("learning_rate", "float", 0.01, 0.3, log=True)

SPACES: dict[str, tuple[Dim, ...]] = {
    "lightgbm": (
        _RATE,
        Dim("num_leaves", "int", 7, 127, log=True),
        Dim("min_data_in_leaf", "int", 5, 100, log=True),
        Dim("feature_fraction", "float", 0.5, 1.0),
        Dim("lambda_l2", "float", 1e-3, 10.0, log=True),
    ),
    "xgboost": (
        _RATE,
        Dim("max_depth", "int", 2, 10),
        Dim("min_child_weight", "float", 0.5, 20.0, log=True),
        Dim("subsample", "float", 0.5, 1.0),
        Dim("colsample_bytree", "float", 0.5, 1.0),
        Dim("reg_lambda", "float", 1e-3, 10.0, log=True),
    ),
    "catboost": (
        _RATE,
        Dim("depth", "int", 3, 10),
        Dim("l2_leaf_reg", "float", 0.5, 30.0, log=True),
        Dim("rsm", "float", 0.5, 1.0),
    ),
    "randomforest": (
        Dim("max_depth", "int", 3, 30, log=True),
        Dim("min_samples_leaf", "int", 1, 30, log=True),
        Dim("max_features", "float", 0.2, 1.0),
        Dim("max_samples", "float", 0.5, 1.0),
    ),
}


def space_for(family: str) -> tuple[Dim, ...]:
    """The search space of ``family``; ValueError naming the families that have one."""
    if family not in SPACES:
        raise ValueError(
            f"the {family} family has no hyper-parameter search space; a search runs on "
            f"{', '.join(sorted(SPACES))}. Train {family} without a search, or set family "
            "to one of those"
        )
    return SPACES[family]


def _check_tables() -> None:
    """Every searched parameter is one its family accepts (checked on import)."""
    for family, dims in SPACES.items():
        unknown = {d.name for d in dims} - ACCEPTED[family]
        if unknown:
            raise AssertionError(f"search space of {family} names {sorted(unknown)}")


_check_tables()

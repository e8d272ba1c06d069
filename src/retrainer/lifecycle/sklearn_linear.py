"""A scikit-learn linear model as the numbers of the ``linear`` family (the inverse of
:func:`.mlflow_flavours.linear_pipeline`).

Accepted: ``LogisticRegression``, ``Ridge`` or ``LinearRegression``, bare or as the last step
of a ``Pipeline`` whose earlier steps are a ``SimpleImputer`` (missing values NaN; its
missing-value indicator kept) and then a ``StandardScaler``, each optional: the shape the
``linear`` family computes, and the one its MLflow export writes. The imputer's statistics
become the family's fill values (whatever its strategy), the scaler's means and scales its
standardisation (none: 0 and 1), the estimator's coefficients its own. A model without an
imputer never saw a missing value: one is filled with the scaler's mean (no effect on the
score) or 0, and the notes say so. Anything else is a ``ValueError`` naming what was found.

>>> import numpy as np
>>> from sklearn.linear_model import Ridge
>>> state, notes = linear_state(Ridge().fit(np.array([[0.0], [1.0], [2.0]]), [0.0, 1.0, 2.0]))
>>> state["means"], state["scales"], round(state["intercept"][0], 3), notes[0][:30]
([0.0], [1.0], 0.333, 'it has no imputer: a missing v')
"""

from __future__ import annotations

from typing import Any

import numpy as np

ACCEPTED = (
    "LogisticRegression, Ridge or LinearRegression, bare or at the end of a Pipeline of an "
    "optional SimpleImputer then an optional StandardScaler"
)


def _steps(est: Any) -> tuple[Any, Any, Any]:
    """The imputer, scaler (each None when absent) and final estimator of ``est``."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in est.steps] if isinstance(est, Pipeline) else [est]
    *before, final = steps
    imputer = before.pop(0) if before and isinstance(before[0], SimpleImputer) else None
    scaler = before.pop(0) if before and isinstance(before[0], StandardScaler) else None
    if before:
        names = ", ".join(type(s).__name__ for s in steps)
        raise ValueError(f"its Pipeline is {names}; retrainer's linear family reads {ACCEPTED}")
    return imputer, scaler, final


def is_linear(est: Any) -> bool:
    """Whether ``est`` ends in a linear estimator this module reads."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    final = est.steps[-1][1] if isinstance(est, Pipeline) and est.steps else est
    return isinstance(final, LogisticRegression | Ridge | LinearRegression)


def linear_state(est: Any) -> tuple[dict[str, Any], list[str]]:
    """The ``linear`` family's payload state of the fitted ``est`` (its ``classes`` the
    estimator's own labels, for the caller to check and index), and notes for the version."""
    from sklearn.linear_model import LogisticRegression

    imputer, scaler, final = _steps(est)
    if not hasattr(final, "coef_"):
        raise ValueError(f"its {type(final).__name__} is not fitted; fit it before saving")
    notes: list[str] = []
    k = int(imputer.n_features_in_ if imputer is not None else final.n_features_in_)
    flagged = np.zeros(k, dtype=bool)
    if imputer is not None:
        fill = np.asarray(imputer.statistics_, dtype=np.float64)
        missing = imputer.missing_values
        if not (isinstance(missing, float) and np.isnan(missing)) or np.isnan(fill).any():
            raise ValueError(
                "its SimpleImputer must take NaN as the missing value and have a fill value "
                "for every column (a column empty at fit is dropped by scikit-learn); refit it "
                "with missing_values=np.nan on columns that hold values"
            )
        if imputer.indicator_ is not None:
            flagged[np.asarray(imputer.indicator_.features_, dtype=np.int64)] = True
    width = k + int(flagged.sum())
    means = np.zeros(width)
    scales = np.ones(width)
    if scaler is not None:
        if scaler.mean_ is not None:
            means = np.asarray(scaler.mean_, dtype=np.float64)
        if scaler.scale_ is not None:
            scales = np.asarray(scaler.scale_, dtype=np.float64)
    if imputer is None:
        fill = means[:k].copy()
        centred = scaler is not None and scaler.mean_ is not None
        notes.append(
            "it has no imputer: a missing value is filled with "
            + ("the scaler's mean of its column" if centred else "0")
        )
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    if coef.shape[1] != width or len(means) != width or len(scales) != width:
        raise ValueError(
            f"its steps disagree on the number of columns ({k} inputs, {width} after the "
            f"imputer, {coef.shape[1]} coefficients); save the Pipeline that was fitted"
        )
    classifier = isinstance(final, LogisticRegression)
    if classifier and coef.shape[0] > 1 and getattr(final, "multi_class", None) == "ovr":
        raise ValueError(
            "its LogisticRegression is one-vs-rest (multi_class='ovr'), whose probabilities "
            "the linear family does not compute; refit it multinomial (the default)"
        )
    if not classifier and coef.shape[0] != 1:
        raise ValueError(f"it predicts {coef.shape[0]} targets; import a single-target model")
    state = {
        "medians": fill.tolist(),
        "flagged": flagged.tolist(),
        "levels": [],
        "means": means.tolist(),
        "scales": scales.tolist(),
        "coef": coef.tolist(),
        "intercept": intercept.tolist(),
        "classes": list(final.classes_) if classifier else None,
    }
    return state, notes

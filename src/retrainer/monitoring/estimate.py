"""Label-free performance estimates for calibrated classifiers, after NannyML's CBPE
(confidence-based performance estimation).

When actuals are late, a *calibrated* classifier's probabilities say how often it should be
right: a prediction made with probability 0.8 is correct 80% of the time. Summing those
expectations gives expected accuracy, and expected confusion counts at every threshold give
expected ROC AUC. The estimates are only as good as the calibration (see
``retrainer.evaluation.calibration``) and assume the concept ``P(y | x)`` has not changed;
they do track covariate shift, which is what makes them useful before labels arrive.

>>> import numpy as np
>>> proba = np.array([0.9, 0.8, 0.3, 0.6])
>>> expected_correct(proba).tolist()
[0.9, 0.8, 0.7, 0.6]
>>> round(expected_accuracy(proba), 3), round(mean_confidence(proba), 3)
(0.75, 0.75)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..core.errors import InputError

METHOD = "cbpe"


def _matrix(proba: ArrayLike) -> np.ndarray:
    """(n, k) probabilities from (n,) positive-class probabilities or an (n, k) matrix."""
    p = np.asarray(proba, dtype=float)
    if p.ndim == 1:
        p = np.column_stack([1 - p, p])
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise InputError(
            f"Probabilities have shape {np.shape(proba)}; expected (n,) for the positive class "
            "or (n, k) with k >= 2 classes, n >= 1. Pass predict_proba's output."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise InputError(
            "Probabilities must be finite and within [0, 1]. Got values from "
            f"{np.nanmin(p):.3g} to {np.nanmax(p):.3g}; pass probabilities, not scores."
        )
    sums = p.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        worst = float(sums[np.argmax(np.abs(sums - 1))])
        raise InputError(
            f"Each row of probabilities must sum to 1. A row sums to {worst:.6g}; normalise "
            "the rows or pass predict_proba's output."
        )
    return p


def expected_correct(proba: ArrayLike, y_pred: ArrayLike | None = None) -> np.ndarray:
    """Per row, the probability that the prediction is right: ``p`` when 1 was predicted,
    ``1 - p`` otherwise; with several classes, the probability of the predicted class.
    ``y_pred`` (class indices) defaults to the most probable class.

    >>> expected_correct([[0.2, 0.5, 0.3]], y_pred=[2]).tolist()
    [0.3]
    """
    p = _matrix(proba)
    if y_pred is None:
        return p.max(axis=1)
    pred = np.asarray(y_pred)
    if pred.shape != (p.shape[0],) or not np.all((pred >= 0) & (pred < p.shape[1])):
        raise InputError(
            f"y_pred must hold {p.shape[0]} class indices in [0, {p.shape[1] - 1}]. Got shape "
            f"{pred.shape} with values {np.unique(pred)[:5].tolist()}; encode labels as indices."
        )
    return p[np.arange(p.shape[0]), pred.astype(int)]


def expected_accuracy(proba: ArrayLike, y_pred: ArrayLike | None = None) -> float:
    """Expected accuracy: the mean of :func:`expected_correct`.

    >>> expected_accuracy([0.9, 0.2], y_pred=[1, 1])
    0.55
    """
    return float(np.mean(expected_correct(proba, y_pred)))


def mean_confidence(proba: ArrayLike) -> float:
    """Mean probability of the most probable class (the policy's ``mean_confidence``).

    >>> round(mean_confidence([[0.7, 0.3], [0.4, 0.6]]), 3)
    0.65
    """
    return float(np.mean(_matrix(proba).max(axis=1)))


def _expected_auc(p: np.ndarray) -> float:
    """Expected ROC AUC of score ``p`` when ``p`` is also P(positive): the ratio of expected
    correctly ordered (positive, negative) pairs to expected pairs, self-pairs excluded; tied
    scores count one half, as in ROC AUC."""
    order = np.argsort(p, kind="stable")
    s = p[order]
    starts = np.flatnonzero(np.r_[True, np.diff(s) != 0])
    pos = np.add.reduceat(s, starts)
    neg = np.add.reduceat(1 - s, starts)
    both = np.add.reduceat(s * (1 - s), starts)  # a row with itself, inside its own tie group
    below = np.cumsum(neg) - neg
    numerator = float(np.sum(pos * (below + neg / 2)) - np.sum(both) / 2)
    denominator = float(pos.sum() * neg.sum() - both.sum())
    return numerator / denominator if denominator > 0 else math.nan


def expected_roc_auc(proba: ArrayLike) -> float:
    """Expected ROC AUC (one-vs-rest macro average with several classes), CBPE's
    expected-confusion estimate; NaN when no positive (or no negative) is expected.

    >>> round(expected_roc_auc([0.1, 0.4, 0.35, 0.8]), 3)
    0.84
    """
    p = _matrix(proba)
    if p.shape[1] == 2:
        return _expected_auc(p[:, 1])
    return float(np.mean([_expected_auc(p[:, k]) for k in range(p.shape[1])]))


@dataclass(frozen=True)
class PerformanceEstimate:
    """Label-free estimates over ``n_rows`` predictions. ``accuracy_std`` is the spread of
    the realised accuracy around its expectation if the probabilities are calibrated."""

    n_rows: int
    accuracy: float
    accuracy_std: float
    roc_auc: float
    mean_confidence: float
    method: str = METHOD

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN becomes None."""
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in asdict(self).items()
        }


def estimate_performance(proba: ArrayLike, y_pred: ArrayLike | None = None) -> PerformanceEstimate:
    """Every label-free estimate at once.

    >>> e = estimate_performance([0.9, 0.8, 0.3, 0.6])
    >>> e.n_rows, round(e.accuracy, 3), round(e.accuracy_std, 3), e.method
    (4, 0.75, 0.209, 'cbpe')
    """
    p = _matrix(proba)
    correct = expected_correct(p, y_pred)
    n = len(correct)
    return PerformanceEstimate(
        n_rows=n,
        accuracy=float(correct.mean()),
        accuracy_std=float(np.sqrt(np.sum(correct * (1 - correct))) / n),
        roc_auc=expected_roc_auc(p),
        mean_confidence=float(p.max(axis=1).mean()),
    )

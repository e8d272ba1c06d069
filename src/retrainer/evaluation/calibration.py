"""Probability calibration, fitted on a temporal slice the model was not trained on.

``sigmoid`` is Platt scaling on the log-odds of each class's probability (one-vs-rest when
there are more than two classes, rows renormalised to sum to 1); ``isotonic`` is a monotone
step fit per class, applied by linear interpolation between its thresholds. scikit-learn
fits; only the numbers are kept, so a calibrator round-trips through JSON without pickle and
``apply`` needs numpy alone (it runs on the serving path).

Binary probabilities may be the positive-class vector ``(n,)`` or the ``(n, 2)`` matrix;
labels are class indices ``0..k-1``. An over-confident classifier, calibrated:

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(0, 1.5, 4000)
>>> y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
>>> raw = 1 / (1 + np.exp(-3 * z))  # three times too sure of itself
>>> cal = fit_calibrator("sigmoid", raw[:2000], y[:2000])
>>> report = calibration_report(raw[2000:], cal.apply(raw[2000:]), y[2000:])
>>> report.ece_after < report.ece_before, report.brier_after < report.brier_before
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit, logit

from ..core.errors import ConfigError, InputError
from ..core.metrics import METRICS

METHODS = ("none", "sigmoid", "isotonic")
_CLIP = 1e-12  # probabilities are clipped to [_CLIP, 1 - _CLIP] before the log-odds
_TOLERANCE = 1e-6  # how far outside [0, 1] a probability may stray from rounding


def _columns(n_classes: int) -> int:
    """Calibrated columns: the positive class for binary, every class otherwise."""
    return 1 if n_classes == 2 else n_classes


def _floats(values: Any, what: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(
            f"Calibrator {what} must be a list of numbers. Got {values!r}; "
            "re-fit the calibrator or restore its saved JSON.",
        ) from None
    if not all(np.isfinite(out)):
        raise InputError(f"Calibrator {what} must be finite numbers. Got {list(out)}.")
    return out


@dataclass(frozen=True)
class Calibrator:
    """Fitted calibration maps, one per calibrated column (one column for binary).

    ``sigmoid``: ``p' = expit(slope * logit(p) + intercept)``; ``isotonic``:
    ``p' = np.interp(p, x_thresholds, y_thresholds)``.

    >>> cal = Calibrator("sigmoid", 2, slopes=(0.5,), intercepts=(0.0,))
    >>> cal.apply(np.array([0.5, 0.9])).round(3).tolist()
    [0.5, 0.75]
    >>> Calibrator.from_dict(cal.to_dict()) == cal
    True
    """

    method: str
    n_classes: int
    slopes: tuple[float, ...] = ()
    intercepts: tuple[float, ...] = ()
    x_thresholds: tuple[tuple[float, ...], ...] = ()
    y_thresholds: tuple[tuple[float, ...], ...] = ()
    _a: np.ndarray = field(init=False, repr=False, compare=False)
    _b: np.ndarray = field(init=False, repr=False, compare=False)
    _xy: tuple[tuple[np.ndarray, np.ndarray], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method not in ("sigmoid", "isotonic"):
            raise InputError(
                f"Calibrator method must be 'sigmoid' or 'isotonic'. Got {self.method!r}; "
                "'none' means no calibrator at all (fit_calibrator returns None).",
            )
        if not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise InputError(f"Calibrator n_classes must be an int >= 2. Got {self.n_classes!r}.")
        m = _columns(self.n_classes)
        if self.method == "sigmoid":
            sizes = {"slopes": len(self.slopes), "intercepts": len(self.intercepts)}
        else:
            sizes = {"x_thresholds": len(self.x_thresholds), "y_thresholds": len(self.y_thresholds)}
        for name, size in sizes.items():
            if size != m:
                raise InputError(
                    f"A {self.method} calibrator for {self.n_classes} classes needs {m} "
                    f"{name} (one per calibrated class). Got {size}; re-fit the calibrator.",
                )
        object.__setattr__(self, "_a", np.asarray(self.slopes, dtype=np.float64))
        object.__setattr__(self, "_b", np.asarray(self.intercepts, dtype=np.float64))
        xy = []
        for j, (xs, ys) in enumerate(zip(self.x_thresholds, self.y_thresholds, strict=True)):
            x = np.asarray(xs, dtype=np.float64)
            y = np.asarray(ys, dtype=np.float64)
            if len(x) == 0 or len(x) != len(y) or np.any(np.diff(x) < 0):
                raise InputError(
                    f"Isotonic thresholds of column {j} must be equally long, non-empty and "
                    f"x non-decreasing. Got {len(x)} x and {len(y)} y; re-fit the calibrator.",
                )
            xy.append((x, y))
        object.__setattr__(self, "_xy", tuple(xy))

    def _map(self, p: np.ndarray) -> np.ndarray:
        """Calibrate the columns of ``p`` (shape (n, m)) independently."""
        if self.method == "sigmoid":
            z = logit(np.clip(p, _CLIP, 1 - _CLIP))
            return np.asarray(expit(self._a * z + self._b))
        out = np.empty_like(p)
        for j, (x, y) in enumerate(self._xy):
            out[:, j] = np.interp(p[:, j], x, y)
        return out

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, in the shape given: ``(n,)`` binary or ``(n, k)``.

        Rows of a matrix sum to 1. Pass one row as ``(1, k)``.
        """
        p = np.asarray(proba, dtype=np.float64)
        k = self.n_classes
        if p.ndim == 1 and k == 2:
            return self._map(p.reshape(-1, 1)).reshape(-1)
        if p.ndim != 2 or p.shape[1] != k:
            raise InputError(
                f"Calibrator for {k} classes got probabilities of shape {p.shape}. Expected "
                f"(n, {k})"
                + (" or (n,) for the positive class" if k == 2 else "")
                + "; pass one row as shape (1, k).",
            )
        if k == 2:
            q = self._map(p[:, 1:])
            return np.hstack([1.0 - q, q])
        q = self._map(p)
        total = q.sum(axis=1, keepdims=True)
        ok = total > 0  # isotonic can map every class of a row to 0: keep that row as given
        return np.where(ok, q / np.where(ok, total, 1.0), p)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe numbers; :meth:`from_dict` restores an identical calibrator."""
        body: dict[str, Any] = {"method": self.method, "n_classes": self.n_classes}
        if self.method == "sigmoid":
            body["slopes"] = list(self.slopes)
            body["intercepts"] = list(self.intercepts)
        else:
            body["x_thresholds"] = [list(x) for x in self.x_thresholds]
            body["y_thresholds"] = [list(y) for y in self.y_thresholds]
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        method = data.get("method")
        keys = ["n_classes"] + (
            ["slopes", "intercepts"] if method == "sigmoid" else ["x_thresholds", "y_thresholds"]
        )
        missing = [key for key in keys if key not in data]
        if missing:
            raise InputError(
                f"Calibrator data for method {method!r} lacks {missing}. Expected the keys "
                f"{['method', *keys]} written by Calibrator.to_dict; re-fit the calibrator.",
            )
        n_classes = data["n_classes"]
        if method == "sigmoid":
            return cls(
                "sigmoid",
                n_classes,
                slopes=_floats(data["slopes"], "slopes"),
                intercepts=_floats(data["intercepts"], "intercepts"),
            )
        return cls(
            str(method),
            n_classes,
            x_thresholds=tuple(_floats(x, "x_thresholds") for x in data["x_thresholds"]),
            y_thresholds=tuple(_floats(y, "y_thresholds") for y in data["y_thresholds"]),
        )


def _matrix(proba: np.ndarray, what: str = "proba") -> np.ndarray:
    """Validated ``(n, k)`` probabilities; a binary ``(n,)`` vector becomes ``(n, 2)``."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[0] == 0 or (p.ndim == 2 and p.shape[1] < 2):
        raise InputError(
            f"{what} must be a non-empty (n,) positive-class vector or (n, k) matrix with "
            f"k >= 2. Got shape {p.shape}.",
        )
    bad = ~np.isfinite(p) | (p < -_TOLERANCE) | (p > 1 + _TOLERANCE)
    if bad.any():
        raise InputError(
            f"{what} must hold probabilities in [0, 1]. Got {float(p[bad][0])}; pass "
            "predict_proba output, not scores or logits.",
        )
    p = np.clip(p, 0.0, 1.0)
    return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p


def _labels(y: Sequence[int] | np.ndarray, n: int, k: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise InputError(
            f"Labels must be a vector of {n} class indices, one per probability row. "
            f"Got shape {labels.shape}.",
        )
    if labels.dtype.kind not in "iub" and not (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels) & (labels == np.round(labels)))
    ):
        raise InputError(
            f"Labels must be class indices 0..{k - 1}. Got dtype {labels.dtype}; encode the "
            "labels with the model's class order first.",
        )
    out = labels.astype(np.int64)
    if out.min() < 0 or out.max() >= k:
        bad = out[(out < 0) | (out >= k)][0]
        raise InputError(
            f"Labels must be class indices 0..{k - 1} for {k} probability columns. "
            f"Got {bad}; encode the labels with the model's class order first.",
        )
    return out


def _platt(p: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Platt's fit on the log-odds, with his smoothed targets so separable data stays finite."""
    z = logit(np.clip(p, _CLIP, 1 - _CLIP))
    mean, std = float(z.mean()), float(z.std()) or 1.0
    n_pos = float(target.sum())
    n_neg = len(target) - n_pos
    soft = np.where(target, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    # Soft targets as weights on a duplicated set: each row is a positive with weight `soft`
    # and a negative with weight `1 - soft`.
    x = np.tile((z - mean) / std, 2).reshape(-1, 1)
    labels = np.repeat([1, 0], len(z))
    from sklearn.linear_model import LogisticRegression  # fitting only: serving never needs it

    model = LogisticRegression(C=np.inf, max_iter=1000)
    model.fit(x, labels, sample_weight=np.concatenate([soft, 1 - soft]))
    coef, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    return coef / std, intercept - coef * mean / std


def fit_calibrator(
    method: str, proba: np.ndarray, y: Sequence[int] | np.ndarray
) -> Calibrator | None:
    """Fit ``method`` (``none`` | ``sigmoid`` | ``isotonic``) on held-out probabilities.

    ``none`` returns None. Fit on rows the model was not trained on.

    >>> p = np.array([0.1, 0.4, 0.6, 0.9, 0.2, 0.8])
    >>> cal = fit_calibrator("isotonic", p, [0, 0, 1, 1, 0, 1])
    >>> cal.method, cal.apply(np.array([0.05, 0.95])).tolist()
    ('isotonic', [0.0, 1.0])
    >>> fit_calibrator("none", p, [0, 0, 1, 1, 0, 1]) is None
    True
    """
    if method not in METHODS:
        raise ConfigError(
            f"calibration must be one of {', '.join(METHODS)}. Got {method!r}; "
            "set e.g. 'calibration: sigmoid' in retrainer.yaml.",
            value=method,
        )
    if method == "none":
        return None
    p = _matrix(proba)
    n, k = p.shape
    labels = _labels(y, n, k)
    present = np.unique(labels)
    if len(present) < 2:
        raise InputError(
            f"Calibration needs at least 2 classes in its slice. Got only class "
            f"{present.tolist()} in {n} rows; use a longer calibration slice or "
            "'calibration: none'.",
        )
    cols = [1] if k == 2 else list(range(k))
    if method == "sigmoid":
        fits = [_platt(p[:, j], labels == j) for j in cols]
        return Calibrator(
            "sigmoid", k, slopes=tuple(a for a, _ in fits), intercepts=tuple(b for _, b in fits)
        )
    xs, ys = [], []
    for j in cols:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(p[:, j], (labels == j).astype(np.float64))
        xs.append(tuple(float(v) for v in iso.X_thresholds_))
        ys.append(tuple(float(v) for v in iso.y_thresholds_))
    return Calibrator("isotonic", k, x_thresholds=tuple(xs), y_thresholds=tuple(ys))


def expected_calibration_error(
    proba: np.ndarray, y: Sequence[int] | np.ndarray, bins: int = 10
) -> float:
    """Top-label ECE: confidence vs accuracy in ``bins`` equal-width bins, weighted by rows.

    >>> round(expected_calibration_error(np.array([0.9, 0.9, 0.2, 0.2]), [1, 1, 0, 1]), 3)
    0.2
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise InputError(f"bins must be an int >= 1. Got {bins!r}; the usual value is 10.")
    p = _matrix(proba)
    n, k = p.shape
    labels = _labels(y, n, k)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == labels).astype(np.float64)
    idx = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    gap = np.bincount(idx, weights=correct, minlength=bins) - np.bincount(
        idx, weights=confidence, minlength=bins
    )
    return float(np.abs(gap).sum() / n)


@dataclass(frozen=True)
class CalibrationReport:
    """Brier score and ECE of the same rows before and after calibration (lower is better)."""

    n_rows: int
    bins: int
    brier_before: float
    brier_after: float
    ece_before: float
    ece_after: float

    @property
    def improved(self) -> bool:
        """True when calibration did not worsen the Brier score."""
        return self.brier_after <= self.brier_before

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n_rows": self.n_rows,
            "bins": self.bins,
            "brier_before": self.brier_before,
            "brier_after": self.brier_after,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
        }


def calibration_report(
    proba_before: np.ndarray,
    proba_after: np.ndarray,
    y: Sequence[int] | np.ndarray,
    bins: int = 10,
) -> CalibrationReport:
    """Compare raw and calibrated probabilities of the same rows.

    >>> r = calibration_report(np.array([0.9, 0.1]), np.array([0.7, 0.3]), [1, 0])
    >>> round(r.brier_before, 2), round(r.brier_after, 2), r.improved
    (0.01, 0.09, False)
    """
    before, after = _matrix(proba_before, "proba_before"), _matrix(proba_after, "proba_after")
    if before.shape != after.shape:
        raise InputError(
            f"proba_before and proba_after must describe the same rows and classes. Got "
            f"shapes {before.shape} and {after.shape}.",
        )
    n, k = before.shape
    labels = _labels(y, n, k)
    brier = METRICS["brier"]
    return CalibrationReport(
        n_rows=n,
        bins=bins,
        brier_before=brier.compute(labels, before.argmax(axis=1), before),
        brier_after=brier.compute(labels, after.argmax(axis=1), after),
        ece_before=expected_calibration_error(before, labels, bins),
        ece_after=expected_calibration_error(after, labels, bins),
    )

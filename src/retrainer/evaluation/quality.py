"""The data-quality gate, run before any training: a report, never a half-trained model.

Checks, each named in its :class:`Violation`:

- ``column_missing``: a feature or the target is not a column of the frame;
- ``min_rows``: fewer rows than ``rules.min_rows``;
- ``min_days``: the rows' event times (the ``time`` column) span fewer than
  ``rules.min_days`` days;
- ``target_missing``: rows without a label (none are allowed);
- ``not_numeric``: values of a numeric feature (or a regression target) that do not parse
  as numbers (none are allowed);
- ``missing``: a feature's missing fraction above ``rules.max_missing_fraction``;
- ``outliers``: the fraction of rows whose numeric value lies outside ``rules.ranges[feature]``
  when given, else more than 6 IQR beyond the quartiles, above ``rules.max_outlier_fraction``
  (a feature whose quartiles coincide, such as a mostly-zero flag, has no IQR scale and is
  only checked against an explicit range; infinities are always outliers). Judged by the IQR
  alone, the share is a *warning* unless ``rules.iqr_outliers`` is ``"block"``: a heavy-tailed
  feature (a pressure, an amount) has such a share in every window, and an unattended retrain
  must not stop on it; a declared range, or infinities above the limit, block;
- ``min_classes`` and ``class_fraction`` (classification): at least 2 classes, each at least
  ``rules.min_class_fraction`` of the labelled rows.

A limit is breached only when strictly exceeded: exactly 20% missing passes a 20% limit.
What a violation does depends on who started the training (``rules.severity``, see
:meth:`QualityReport.with_severity`): a scheduled run may record it and go on where a
manual one refuses.

>>> import pandas as pd
>>> from retrainer.core.spec_sections import Quality
>>> df = pd.DataFrame({"age": [30, None, 41, 52], "plan": list("abab"), "churn": [0, 1, 0, 1]})
>>> report = check_quality(df, task="classification", target="churn", numeric=["age"],
...                        categorical=["plan"], rules=Quality(min_rows=4))
>>> report.ok, report.missing["age"]
(False, 0.25)
>>> print(report.violations[0].message)
feature 'age': 25.0% missing, above max_missing_fraction 20.0%
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import ConfigError, QualityError
from ..core.levels import level
from ..core.spec_sections import Quality

TASKS = ("classification", "regression")
IQR_FENCE = 6.0
# Checks whose value and limit are row or class counts; every other check compares fractions.
_COUNTS = frozenset({"min_rows", "min_days", "min_classes"})
# Violations no model can be trained past: they block whatever ``rules.severity`` says.
STRUCTURAL = frozenset({"column_missing", "target_missing", "not_numeric", "min_classes"})


@dataclass(frozen=True)
class Violation:
    """One failed check: which, on which column (None for the whole frame), value vs limit."""

    check: str
    feature: str | None
    value: float
    limit: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "feature": self.feature,
            "value": self.value,
            "limit": self.limit,
            "message": self.message,
        }


@dataclass(frozen=True)
class QualityReport:
    """What the gate found. ``ok`` is True exactly when there are no violations; ``warnings``
    are reported and do not block.

    >>> QualityReport(n_rows=500).render()
    'Data quality: ok (500 rows)'
    """

    n_rows: int
    violations: tuple[Violation, ...] = ()
    class_balance: dict[str, float] = field(default_factory=dict)
    missing: dict[str, float] = field(default_factory=dict)
    outliers: dict[str, float] = field(default_factory=dict)
    warnings: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "violations": [v.to_dict() for v in self.violations],
            "class_balance": dict(self.class_balance),
            "missing": dict(self.missing),
            "outliers": dict(self.outliers),
            "warnings": [v.to_dict() for v in self.warnings],
        }

    def render(self) -> str:
        """A short plain-text table: one line per violation, then the class balance."""
        status = "ok" if self.ok else f"FAILED, {len(self.violations)} violation(s)"
        lines = [f"Data quality: {status} ({self.n_rows} rows)"]
        if self.violations:
            rows = [("check", "column", "value", "limit")] + [
                (v.check, v.feature or "-", *_shown(v)) for v in self.violations
            ]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            lines += [
                "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
            ]
        lines += [f"warning: {w.message}" for w in self.warnings]
        if self.class_balance:
            lines.append(
                "classes: " + ", ".join(f"{k} {v:.1%}" for k, v in self.class_balance.items())
            )
        return "\n".join(lines)

    def with_severity(self, severity: str) -> QualityReport:
        """This report as a training of that severity sees it: with ``"warn"`` every
        violation but the :data:`STRUCTURAL` ones becomes a warning (recorded, not
        blocking); ``"block"`` leaves it as it is.

        >>> v = Violation("min_rows", None, 80.0, 100.0, "80 rows, below min_rows 100")
        >>> r = QualityReport(n_rows=80, violations=(v,)).with_severity("warn")
        >>> r.ok, [w.message for w in r.warnings]
        (True, ['80 rows, below min_rows 100'])
        """
        if severity == "block":
            return self
        kept = tuple(v for v in self.violations if v.check in STRUCTURAL)
        demoted = tuple(v for v in self.violations if v.check not in STRUCTURAL)
        return replace(self, violations=kept, warnings=(*demoted, *self.warnings))

    def raise_if_failed(self) -> None:
        """Raise :class:`QualityError` listing every violation; do nothing when ``ok``."""
        if self.ok:
            return
        listed = "; ".join(v.message for v in self.violations)
        raise QualityError(
            f"Data quality check failed, no training done: {listed}. Fix the data or relax "
            "the 'quality' rules in retrainer.yaml.",
            violations=[v.to_dict() for v in self.violations],
        )


def _shown(v: Violation) -> tuple[str, str]:
    if v.check in _COUNTS:
        return f"{v.value:g}", f"{v.limit:g}"
    return _pct(v.value, v.limit)


def _pct(value: float, limit: float) -> tuple[str, str]:
    """Both as percentages, with enough decimals that unequal numbers do not print equal."""
    for digits in range(1, 6):
        a, b = f"{value:.{digits}%}", f"{limit:.{digits}%}"
        if a != b or value == limit:
            return a, b
    return a, b


def _names(columns: Any, most: int = 12) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _not_numeric(series: pd.Series) -> pd.Series:
    """Mask of present values that are not numbers (numeric and bool dtypes are all numbers)."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return pd.Series(False, index=series.index)
    present = series.notna()
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return present
    parsed = pd.to_numeric(series.astype(object), errors="coerce")
    return present & parsed.isna()


def _as_float(series: pd.Series, bad: pd.Series) -> pd.Series | None:
    """The numeric values (non-numbers as NaN); None for dates, which have no outliers."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.astype(np.float64)
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return None
    return pd.to_numeric(series.where(~bad).astype(object), errors="coerce")


def _label_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _outlier_fraction(
    values: pd.Series, bounds: tuple[float, float] | None, n: int
) -> tuple[float, float]:
    """The fractions of the ``n`` rows that are outliers, and that are infinite (always
    outliers)."""
    if not n:
        return 0.0, 0.0
    x = values.dropna().to_numpy(dtype=np.float64)
    infinite = ~np.isfinite(x)  # missing values were dropped
    if bounds is not None:
        lo, hi = bounds
    else:
        finite = x[~infinite]
        if len(finite) == 0:
            return float(np.count_nonzero(infinite) / n), float(np.count_nonzero(infinite) / n)
        q1, q3 = np.quantile(finite, [0.25, 0.75])
        iqr = q3 - q1
        if iqr == 0:
            lo, hi = -math.inf, math.inf  # no scale to judge by: only infinities count
        else:
            lo, hi = q1 - IQR_FENCE * iqr, q3 + IQR_FENCE * iqr
    outside = infinite | (x < lo) | (x > hi)
    return float(np.count_nonzero(outside) / n), float(np.count_nonzero(infinite) / n)


def _check_rules(task: str, numeric: Sequence[str], rules: Quality) -> None:
    if task not in TASKS:
        raise ConfigError(
            f"task must be one of {', '.join(TASKS)}. Got {task!r}; set 'task' in retrainer.yaml.",
            value=task,
        )
    for name, (lo, hi) in rules.ranges.items():
        if name not in numeric:
            raise ConfigError(
                f"quality.ranges names {name!r}, which is not a numeric feature. Numeric "
                f"features: {list(numeric)}; fix the name in retrainer.yaml.",
                value=name,
            )
        if not lo <= hi:
            raise ConfigError(
                f"quality.ranges[{name!r}] must be [low, high] with low <= high. Got "
                f"[{lo}, {hi}]; swap the bounds in retrainer.yaml.",
                value=[lo, hi],
            )


def check_quality(
    df: pd.DataFrame,
    *,
    task: str,
    target: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    rules: Quality,
    time: str | None = None,
) -> QualityReport:
    """Run every check on ``df``; the report lists each violation (``report.ok`` when none).
    ``time`` names the event-time column ``rules.min_days`` measures the span of.

    Invalid rules (an unknown task, a range for a feature that is not numeric) raise
    :class:`ConfigError`; problems with the data are violations, never exceptions.

    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5]})
    >>> check_quality(df, task="regression", target="y", numeric=["x"], categorical=[],
    ...               rules=Quality(min_rows=3)).ok
    True
    """
    _check_rules(task, numeric, rules)
    n = len(df)
    found: list[Violation] = []
    absent = [c for c in dict.fromkeys([*numeric, *categorical, target]) if c not in df.columns]
    for col in absent:
        role = "target" if col == target else "feature"
        found.append(
            Violation(
                "column_missing",
                col,
                1.0,
                0.0,
                f"{role} {col!r}: not a column of the data; columns are {_names(df.columns)}",
            )
        )
    if n < rules.min_rows:
        found.append(
            Violation(
                "min_rows",
                None,
                float(n),
                float(rules.min_rows),
                f"{n} rows, below min_rows {rules.min_rows}",
            )
        )

    if rules.min_days is not None and time is not None and n:
        found += _check_span(df[time], rules.min_days)

    balance: dict[str, float] = {}
    if target not in absent:
        found += _check_target(df[target], task, target, rules, balance)

    missing: dict[str, float] = {}
    outliers: dict[str, float] = {}
    warned: list[Violation] = []
    for col in [*numeric, *categorical]:
        if col in absent or col in missing:
            continue
        series = df[col]
        frac = float(series.isna().sum() / n) if n else 0.0
        missing[col] = frac
        if frac > rules.max_missing_fraction:
            shown = _pct(frac, rules.max_missing_fraction)
            found.append(
                Violation(
                    "missing",
                    col,
                    frac,
                    rules.max_missing_fraction,
                    f"feature {col!r}: {shown[0]} missing, above max_missing_fraction {shown[1]}",
                )
            )
        if col not in numeric:
            continue
        bad = _not_numeric(series)
        if bad.any():
            found.append(_not_numeric_violation(col, "feature", series, bad, n))
        values = _as_float(series, bad)
        if values is None:
            continue
        bounds = rules.ranges.get(col)
        frac, infinite = _outlier_fraction(values, bounds, n)
        outliers[col] = frac
        limit = rules.max_outlier_fraction
        if frac > limit:
            where = f"outside [{bounds[0]:g}, {bounds[1]:g}]" if bounds else "beyond 6 IQR"
            shown = _pct(frac, limit)
            text = f"feature {col!r}: {shown[0]} of rows {where}, above max_outlier_fraction"
            blocks = bounds is not None or rules.iqr_outliers == "block"
            if not blocks and infinite > limit:
                frac, shown = infinite, _pct(infinite, limit)
                text = f"feature {col!r}: {shown[0]} of rows infinite, above max_outlier_fraction"
                blocks = True
            v = Violation("outliers", col, frac, limit, f"{text} {shown[1]}")
            if blocks:
                found.append(v)
            else:
                warned.append(v)
    return QualityReport(
        n_rows=n,
        violations=tuple(found),
        class_balance=balance,
        missing=missing,
        outliers=outliers,
        warnings=tuple(warned),
    )


def _check_span(times: pd.Series, min_days: int) -> list[Violation]:
    """A ``min_days`` violation when the rows' event times span fewer than ``min_days``."""
    stamps = pd.to_datetime(times).dropna()
    if stamps.empty:
        return []
    first, last = stamps.min(), stamps.max()
    span = (last - first).total_seconds() / 86400
    if span >= min_days:
        return []
    return [
        Violation(
            "min_days",
            None,
            round(span, 1),
            float(min_days),
            f"the labelled rows span {span:.1f} days ({first.date()} to {last.date()}), "
            f"below min_days {min_days}",
        )
    ]


def _not_numeric_violation(
    col: str, role: str, series: pd.Series, bad: pd.Series, n: int
) -> Violation:
    count = int(bad.sum())
    example = series[bad].iloc[0]
    return Violation(
        "not_numeric",
        col,
        count / n,
        0.0,
        f"{role} {col!r}: {count} value(s) not numeric (e.g. {example!r}); fix them or "
        "declare the column categorical",
    )


def _check_target(
    y: pd.Series, task: str, target: str, rules: Quality, balance: dict[str, float]
) -> list[Violation]:
    """Violations of the label column; fills ``balance`` for classification."""
    n = len(y)
    found: list[Violation] = []
    unlabelled = int(y.isna().sum())
    if unlabelled:
        found.append(
            Violation(
                "target_missing",
                target,
                unlabelled / n,
                0.0,
                f"target {target!r}: {unlabelled} of {n} rows ({unlabelled / n:.1%}) have no "
                "label; drop unlabelled rows before training",
            )
        )
    labels = y.dropna()
    if task == "regression":
        bad = _not_numeric(labels)
        if bad.any():
            found.append(_not_numeric_violation(target, "target", labels, bad, n))
        return found
    counts = labels.map(level).value_counts()
    total = int(counts.sum())
    for label in sorted(counts.index, key=_label_order):
        balance[label] = float(counts[label] / total)
    if len(balance) < 2:
        found.append(
            Violation(
                "min_classes",
                target,
                float(len(balance)),
                2.0,
                f"target {target!r}: {len(balance)} class(es) {list(balance)}, a classifier "
                "needs at least 2",
            )
        )
        return found
    for label, frac in balance.items():
        if frac < rules.min_class_fraction:
            shown = _pct(frac, rules.min_class_fraction)
            found.append(
                Violation(
                    "class_fraction",
                    target,
                    frac,
                    rules.min_class_fraction,
                    f"target {target!r}: class {label!r} is {shown[0]} of rows, below "
                    f"min_class_fraction {shown[1]}",
                )
            )
    return found

"""What a gate decided, typed: the comparison (:class:`GateResult`), the budgets alone for a
first version (:class:`Budgets`), and the record stored on a version (:class:`GateRecord`).

Code passes these objects around; a dict exists only where the record is stored
(``ModelVersion.details["gate"]``, a deployment event) or shown as JSON. ``to_dict`` writes
the same JSON as before the types existed, and ``from_dict`` reads every shape earlier
versions stored (fields added since then take their neutral value).

>>> rec = GateRecord.from_dict({"verdict": "pass", "metric": "mae", "champion": 2.0,
...     "challenger": 1.5, "improvement": 0.5, "champion_version": "1.0.0", "reasons": []})
>>> rec.verdict is Verdict.PASS, rec.champion_version, rec.budgets_only
(True, '1.0.0', False)
>>> rec.to_dict()["verdict"], verdict_text(rec)
('pass', 'gate pass vs 1.0.0')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any

import numpy as np


class Verdict(StrEnum):
    """A gate's verdict; its value is the string stored and shown (``"pass"``)."""

    PASS = "pass"
    REJECT = "reject"
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True)
class GuardResult:
    """One guard metric: how much the challenger regresses against the tolerance
    (``max_loss``), or whether it improves by ``min_improvement`` (absolute) or by
    ``min_relative_improvement`` (a fraction of the champion's value), with the gate's test."""

    metric: str
    champion: float
    challenger: float
    regression: float  # -improvement: positive means the challenger is worse
    tolerance: float | None  # the largest regression tolerated (a max_loss guard)
    ok: bool
    min_improvement: float | None = None  # the improvement required (a min_improvement guard)
    p_value: float | None = None  # its paired-bootstrap p-value, when significance is set
    # a min_relative_improvement guard: the fraction of the champion's value required, and
    # the improvement observed as that fraction (None when the champion's value is 0)
    min_relative_improvement: float | None = None
    relative_improvement: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GuardResult:
        return cls(**_fields_of(cls, d))


@dataclass(frozen=True)
class GateResult:
    """Every number behind a gate verdict. ``reasons`` lists failures first."""

    verdict: Verdict
    metric: str
    bigger_is_better: bool
    n_rows: int
    min_rows: int
    champion: float
    challenger: float
    improvement: float
    min_improvement: float
    refresh: bool
    refresh_tolerance: float | None  # the tolerance a refresh was judged with
    test: str  # paired_bootstrap, or plain_comparison when significance is null
    bootstrap_samples: int
    p_value: float | None
    significance: float | None
    ci_low: float | None  # one-sided (1 - significance) lower bound of the improvement
    ci_high: float | None
    ci_level: float | None  # coverage of [ci_low, ci_high]: 1 - 2 * significance
    guards: tuple[GuardResult, ...]
    latency_ms: float | None  # p95 of single-row predictions
    max_latency_ms: float | None
    size_bytes: int | None
    max_size_bytes: int | None
    seed: int
    reasons: tuple[str, ...]
    champion_metrics: dict[str, float] = field(default_factory=dict)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    # why a refresh's comparison was shown but not judged (the champion saw more data)
    handicap: str | None = None
    memory_mb: float | None = None  # peak RSS growth of loading the model and predicting
    max_memory_mb: float | None = None
    min_rows_scaled: str | None = None  # how min_rows was scaled to a small window (MinRows.why)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: tuples become lists, NaN and infinities become None."""
        return json_safe(asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateResult:
        """Read :meth:`to_dict` back, of this or an earlier version (a None metric value was
        a NaN; a field that did not exist yet takes its neutral value)."""
        values = _fields_of(cls, d)
        values["guards"] = tuple(GuardResult.from_dict(g) for g in d.get("guards") or ())
        values["reasons"] = tuple(d.get("reasons") or ())
        for side in ("champion_metrics", "challenger_metrics"):
            values[side] = {k: _float(v) for k, v in (d.get(side) or {}).items()}
        return cls(**values)


@dataclass(frozen=True)
class Budgets:
    """The serving budgets alone, for a first version (no champion to compare with)."""

    verdict: Verdict  # pass or reject
    latency_ms: float | None
    max_latency_ms: float | None
    memory_mb: float | None
    max_memory_mb: float | None
    size_bytes: int | None
    max_size_bytes: int | None
    reasons: tuple[str, ...]  # the budgets exceeded, then those held
    summary: str  # "budgets exceeded (first version): ..." with the ones that decided

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Budgets:
        values = _fields_of(cls, d)
        values["reasons"] = tuple(d.get("reasons") or ())
        return cls(**values)


@dataclass(frozen=True)
class CatchUpFit:
    """The challenger's recipe fitted again up to the champion's cut-off for the gate."""

    until: str  # ISO timestamp of the champion's last training row
    rows: int
    cpu_seconds: float


@dataclass(frozen=True)
class GateRecord:
    """A gate's verdict as stored on a version: the comparison against
    ``champion_version``, or (``result`` a :class:`Budgets`) the budgets of a first version.

    >>> over = "size 10 bytes exceeds the 5 bytes budget"
    >>> b = GateRecord(Budgets(Verdict.REJECT, None, None, None, None, 10, 5, (over,),
    ...                        f"budgets exceeded (first version): {over}"))
    >>> b.budgets_only, verdict_text(b)
    (True, 'first version, budgets reject')
    >>> GateRecord.from_dict(b.to_dict()) == b
    True
    """

    result: GateResult | Budgets
    champion_version: str | None = None
    catch_up_fit: CatchUpFit | None = None

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.result.reasons

    @property
    def budgets_only(self) -> bool:
        return isinstance(self.result, Budgets)

    @property
    def comparison(self) -> GateResult | None:
        """The champion/challenger comparison; None for a first version's budgets."""
        return self.result if isinstance(self.result, GateResult) else None

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def summary(self) -> str:
        return summary_line(self)

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON: the comparison's fields then ``champion_version``,
        ``catch_up_fit`` (when there was one) and ``summary``; for a first version's budgets,
        ``budgets_only: true`` with the budgets and ``summary``."""
        r = self.result
        if isinstance(r, Budgets):
            return json_safe(  # type: ignore[no-any-return]
                {
                    "verdict": r.verdict,
                    "budgets_only": True,
                    "champion_version": self.champion_version,
                    **{k: v for k, v in asdict(r).items() if k != "verdict"},
                }
            )
        out = r.to_dict()
        out["champion_version"] = self.champion_version
        if self.catch_up_fit is not None:
            out["catch_up_fit"] = asdict(self.catch_up_fit)
        out["summary"] = summary_line(self)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateRecord:
        """Read a stored gate (any shape earlier versions wrote)."""
        result: GateResult | Budgets
        result = Budgets.from_dict(d) if d.get("budgets_only") else GateResult.from_dict(d)
        fit = d.get("catch_up_fit")
        catch_up = None
        if fit:
            catch_up = CatchUpFit(fit["until"], fit["rows"], fit.get("cpu_seconds", 0.0))
        return cls(result, d.get("champion_version"), catch_up)


def stored_gate(details: Mapping[str, Any]) -> GateRecord | None:
    """The gate recorded in a version's ``details``, or None (no champion and no budgets).

    >>> stored_gate({}) is None
    True
    """
    gate = details.get("gate")
    return None if gate is None else GateRecord.from_dict(gate)


def as_record(gate: GateRecord | Mapping[str, Any] | None) -> GateRecord | None:
    """A stored gate read where JSON meets code; a record passes through."""
    if gate is None or isinstance(gate, GateRecord):
        return gate
    return GateRecord.from_dict(gate)


def verdict_text(gate: GateRecord | Mapping[str, Any] | None) -> str:
    """The gate's verdict and what it compared against, in a few words.

    >>> verdict_text({"verdict": "pass", "champion_version": "1.0.0"})
    'gate pass vs 1.0.0'
    >>> verdict_text({"verdict": "reject", "budgets_only": True, "champion_version": None})
    'first version, budgets reject'
    >>> verdict_text(None)
    'first version'
    """
    rec = as_record(gate)
    if rec is None:
        return "first version"
    if rec.budgets_only or rec.champion_version is None:
        return f"first version, budgets {rec.verdict}"
    return f"gate {rec.verdict} vs {rec.champion_version}"


def summary_line(gate: GateRecord | Mapping[str, Any]) -> str:
    """One line for a gate record (a stored one is read first).

    A refresh that passes is said as such: its comparison is shown, not judged (it passes
    unless clearly worse), so "gate pass" would claim a win it did not have to show.

    >>> g = {"verdict": "pass", "refresh": True, "refresh_tolerance": 0.01, "metric": "mae",
    ...      "champion": 2.0, "challenger": 2.004, "improvement": -0.004,
    ...      "champion_version": "1.0.0", "reasons": []}
    >>> summary_line(g)
    'refresh allowed vs 1.0.0: mae 2 -> 2.004, worse by 0.004: shown, not judged'
    """
    rec = as_record(gate)
    assert rec is not None
    r = rec.result
    if isinstance(r, Budgets):
        return r.summary
    who = rec.champion_version
    change = f"{r.metric} {_shown(r.champion)} -> {_shown(r.challenger)}"
    if r.verdict is not Verdict.PASS:
        first = r.reasons[0] if r.reasons else ""
        return f"gate {r.verdict} vs {who}: {first}"
    d = _finite_or_zero(r.improvement)
    if r.refresh and r.refresh_tolerance is not None:
        how = f"better by {_num(d)}" if d >= 0 else f"worse by {_num(-d)}"
        return f"refresh allowed vs {who}: {change}, {how}: shown, not judged"
    return f"gate pass vs {who}: {change}, improves by {_num(d)}"


def json_safe(value: Any) -> Any:
    """Tuples become lists, NaN and infinities None, numpy scalars and enums plain values."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _num(x: float) -> str:
    return f"{x:.4g}"


def _shown(x: float | None) -> str:
    return "undefined" if x is None or not math.isfinite(x) else _num(x)


def _finite_or_zero(x: float | None) -> float:
    return 0.0 if x is None or not math.isfinite(x) else x


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _fields_of(cls: Any, d: Mapping[str, Any]) -> dict[str, Any]:
    """The dataclass's fields read from ``d``: a None stored for a plain float was a NaN; a
    field missing from an older shape is False (a flag), NaN (a float) or None."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        if f.name in d and not (d[f.name] is None and kind == "float"):
            value = d[f.name]
            out[f.name] = Verdict(value) if kind == "Verdict" else value
        elif f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = {"bool": False, "float": math.nan, "int": 0}.get(kind)
    return out

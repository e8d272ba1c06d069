"""What the report shows, gathered from the store: monthly live and estimated metrics from the
monitor's aggregates, deployments, decisions, versions, and drift per feature per year of the
labelled rows (a drift check needs 200 rows; a year of daily data has 365) against the
reference of the champion serving at the time."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..core.entities import Decision, DeploymentEvent, ModelVersion, Roles
from ..core.errors import RetrainerError
from ..lifecycle.monitor import live_metrics, monitor
from ..lifecycle.sources import training_frame
from ..lifecycle.workspace import Workspace
from ..monitoring.drift import CurrentAccumulator, drift_report
from ..monitoring.naive import ARM as BASELINE_ARM
from ..monitoring.naive import NAMES, describe
from ..monitoring.reference import ReferenceStats

CHAMPION_MOVES = ("deploy", "promote", "rollback")


@dataclass(frozen=True)
class MonthPoint:
    start: datetime
    n: int  # labelled served predictions
    value: float | None  # live primary metric of the served arms
    estimate: float | None  # CBPE expected accuracy (classification only)
    n_conf: int
    by_version: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)  # pooled bucket statistics
    # the naive baselines on the same labelled actuals: name -> (labelled, live metric)
    naive: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    naive_sums: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftGrid:
    periods: list[datetime]
    features: list[str]
    psi: np.ndarray  # features x periods (NaN: no data)
    drifted: np.ndarray  # bool, same shape
    threshold: float


@dataclass(frozen=True)
class ReportData:
    model: str
    task: str
    metric: str
    bigger_is_better: bool
    months: list[MonthPoint]
    events: list[DeploymentEvent]
    decisions: list[Decision]
    versions: list[ModelVersion]
    roles: Roles
    champions: list[tuple[datetime, str]]  # (since, version)
    drift: DriftGrid | None
    generated_at: datetime
    # each naive baseline in the months (``naive:last``...) -> what it predicts, in words
    baselines: dict[str, str] = field(default_factory=dict)


def _month_starts(first: datetime, last: datetime) -> list[datetime]:
    idx = pd.date_range(pd.Timestamp(first).to_period("M").start_time, last, freq="MS")
    return [t.to_pydatetime() for t in idx]


def champion_timeline(events: list[DeploymentEvent]) -> list[tuple[datetime, str]]:
    """When each champion started serving, from the deployment log."""
    return [
        (e.created_at, str(e.to_version))
        for e in events
        if e.action in CHAMPION_MOVES and e.to_version is not None
    ]


def champion_at(timeline: list[tuple[datetime, str]], at: datetime) -> str | None:
    current = None
    for since, version in timeline:
        if since > at:
            break
        current = version
    return current


def _months(ws: Workspace, model: str, task: str, metric: str) -> list[MonthPoint]:
    everything = ws.store.monitor_buckets(model)
    if not everything:
        return []
    first = min(v.created_at for v in ws.store.list_versions(model))
    points: list[MonthPoint] = []
    events = ws.store.events(model)
    last = max([first, *(e.created_at for e in events)])
    decisions = ws.store.decisions(model, limit=1)
    if decisions:
        last = max(last, decisions[-1].taken_at)
    starts = _month_starts(first, last)
    for i, m0 in enumerate(starts):
        m1 = starts[i + 1] if i + 1 < len(starts) else pd.Timestamp(m0) + pd.offsets.MonthBegin()
        found = ws.store.monitor_buckets(model, m0, m1)
        buckets = [b for b in found if b["arm"] not in ("shadow", BASELINE_ARM)]
        naive = {
            b["version"]: (int(b["n_labelled"]), live_metrics(task, b).get(metric))
            for b in found
            if b["arm"] == BASELINE_ARM
        }
        naive_sums = {
            b["version"]: {k: float(v) for k, v in b.items() if k not in ("version", "arm")}
            for b in found
            if b["arm"] == BASELINE_ARM
        }
        if not buckets:
            points.append(MonthPoint(m0, 0, None, None, 0))
            continue
        pooled = {k: sum(b[k] for b in buckets) for k in buckets[0] if k not in ("version", "arm")}
        by_version = {}
        for b in buckets:
            by_version[b["version"]] = (int(b["n_labelled"]), live_metrics(task, b).get(metric))
        n_conf = int(pooled.get("n_conf", 0))
        est = pooled["sum_conf"] / n_conf if task == "classification" and n_conf else None
        points.append(
            MonthPoint(
                m0,
                int(pooled["n_labelled"]),
                live_metrics(task, pooled).get(metric),
                est,
                n_conf,
                by_version,
                {k: float(v) for k, v in pooled.items()},
                naive,
                naive_sums,
            )
        )
    return points


def _drift(
    ws: Workspace,
    model: str,
    versions: dict[str, ModelVersion],
    champions: list[tuple[datetime, str]],
) -> DriftGrid | None:
    spec = ws.model_spec(model)
    if not champions:
        return None
    first = versions.get(champions[0][1])
    start = first.train_end if first is not None else None
    frame = training_frame(ws, spec, after=start)
    if frame.empty:
        return None
    years = frame["event_time"].dt.to_period("Y")
    features = [c for c in spec.stored_features.all if c in frame.columns]
    periods: list[datetime] = []
    psi_cols: list[list[float]] = []
    flag_cols: list[list[bool]] = []
    refs: dict[str, ReferenceStats] = {}
    for q, part in frame.groupby(years, sort=True):
        at = q.start_time.to_pydatetime()  # type: ignore[attr-defined]
        name = champion_at(champions, at) or champions[0][1]
        v = versions.get(name)
        if v is None or "reference" not in v.details:
            continue
        if name not in refs:
            refs[name] = ReferenceStats.from_dict(v.details["reference"])
        acc = CurrentAccumulator(refs[name])
        acc.update(part[features])
        report = {f.feature: f for f in drift_report(refs[name], acc.result(), spec.drift)}
        periods.append(at)
        psi_cols.append([_finite(report[f].psi) if f in report else math.nan for f in features])
        flag_cols.append([bool(report[f].drift) if f in report else False for f in features])
    if not periods:
        return None
    return DriftGrid(
        periods,
        features,
        np.array(psi_cols, dtype=float).T,
        np.array(flag_cols, dtype=bool).T,
        spec.drift.psi,
    )


def _finite(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else math.nan


def collect(ws: Workspace, model: str, *, max_decisions: int = 100_000) -> ReportData:
    """Everything the report draws, for ``model``."""
    from ..core.clock import utcnow
    from ..core.metrics import METRICS

    spec = ws.model_spec(model)
    metric = spec.primary_metric
    with contextlib.suppress(RetrainerError):
        monitor(ws, model)  # fold what is new into the aggregates
    versions = ws.store.list_versions(model)
    events = ws.store.events(model)
    champions = champion_timeline(events)
    by_name = {v.version: v for v in versions}
    return ReportData(
        model=model,
        task=spec.task,
        metric=metric,
        bigger_is_better=METRICS[metric].bigger_is_better,
        months=_months(ws, model, spec.task, metric) if versions else [],
        events=events,
        decisions=ws.store.decisions(model, limit=max_decisions),
        versions=versions,
        roles=ws.store.roles(model),
        champions=champions,
        drift=_drift(ws, model, by_name, champions) if versions else None,
        generated_at=utcnow(),
        baselines={n: describe(n, spec.task, spec.monitor.season) for n in NAMES},
    )


def naive_summary(data: ReportData) -> list[tuple[str, str, int, float | None]]:
    """Each naive baseline seen in the months: (name, description, labelled actuals, its
    metric pooled over every month), after the served predictions' own row ("served")."""
    served = [m for m in data.months if m.sums]
    rows: list[tuple[str, str, int, float | None]] = []
    if served:
        keys = served[0].sums.keys()
        pooled = {k: sum(m.sums.get(k, 0.0) for m in served) for k in keys}
        value = live_metrics(data.task, pooled).get(data.metric)
        rows.append(("served", "the versions serving", int(pooled["n_labelled"]), value))
    for name in data.baselines:
        parts = [m.naive_sums[name] for m in data.months if name in m.naive_sums]
        if not parts:
            continue
        pooled = {k: sum(p.get(k, 0.0) for p in parts) for k in parts[0]}
        value = live_metrics(data.task, pooled).get(data.metric)
        rows.append((name, data.baselines[name], int(pooled["n_labelled"]), value))
    return rows


def rolling(points: list[MonthPoint], task: str, metric: str, months: int) -> list[Any]:
    """The metric pooled over the last ``months`` months at each month (None without data)."""
    out: list[float | None] = []
    for i in range(len(points)):
        window = [p for p in points[max(0, i - months + 1) : i + 1] if p.sums]
        if not window:
            out.append(None)
            continue
        keys = window[0].sums.keys()
        pooled = {k: sum(p.sums.get(k, 0.0) for p in window) for k in keys}
        out.append(live_metrics(task, pooled).get(metric))
    return out


def rolling_estimate(points: list[MonthPoint], months: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(points)):
        window = points[max(0, i - months + 1) : i + 1]
        n = sum(p.n_conf for p in window)
        s = sum(p.sums.get("sum_conf", 0.0) for p in window)
        out.append(s / n if n else None)
    return out

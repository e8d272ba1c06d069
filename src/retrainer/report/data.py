"""What the report shows, gathered from the store: live and estimated metrics per time bucket
from the monitor's aggregates (the bucket chosen from the span), deployments, decisions,
versions, and drift per feature per period of the labelled rows against the reference of the
champion serving at the time (the period the finest of hour, day, week, month, year holding
about 200 rows each, a drift check's minimum; fewer rows: one period over all of them)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..core.entities import Decision, DeploymentEvent, ModelVersion, Roles
from ..core.errors import RetrainerError
from ..core.fleet import check_single
from ..lifecycle.monitor import live_metrics, monitor
from ..lifecycle.sources import training_frame
from ..monitoring.drift import CurrentAccumulator, drift_report
from ..monitoring.naive import ARM as BASELINE_ARM
from ..monitoring.naive import NAMES, describe
from ..monitoring.reference import ReferenceStats
from ..plumbing.workspace import Workspace
from .axes import BUCKETS, Bucket, choose_bucket

CHAMPION_MOVES = ("deploy", "promote", "rollback")


@dataclass(frozen=True)
class Point:
    """One time bucket of served predictions (its length: :attr:`ReportData.bucket`)."""

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
    """PSI per feature per period; ``labels`` name each period (``1990``, ``2024-05-06``)."""

    periods: list[datetime]
    labels: list[str]
    features: list[str]
    psi: np.ndarray  # features x periods (NaN: no data)
    drifted: np.ndarray  # bool, same shape
    threshold: float
    rows: int = 0  # labelled rows after the first champion's training window
    min_rows: int = 200  # a drift check's minimum (drift.min_samples)


@dataclass(frozen=True)
class ReportData:
    model: str
    task: str
    metric: str
    bigger_is_better: bool
    points: list[Point]  # one per bucket, from the first to the last with data
    events: list[DeploymentEvent]
    decisions: list[Decision]
    versions: list[ModelVersion]
    roles: Roles
    champions: list[tuple[datetime, str]]  # (since, version)
    drift: DriftGrid | None
    generated_at: datetime
    # each naive baseline in the points (``naive:last``...) -> what it predicts, in words
    baselines: dict[str, str] = field(default_factory=dict)
    bucket: Bucket = BUCKETS["month"]  # how long each point is

    @classmethod
    def empty(
        cls, model: str, task: str = "classification", metric: str = "accuracy"
    ) -> ReportData:
        """The data of a model with nothing yet (no version, prediction or decision): what a
        page shows before the first training.

        >>> ReportData.empty("churn").points
        []
        """
        return cls(model, task, metric, True, [], [], [], [], Roles(model, None, None), [], None,
                   datetime(1970, 1, 1))  # fmt: skip


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


def _points(ws: Workspace, model: str, task: str, metric: str) -> tuple[Bucket, list[Point]]:
    """The served predictions' metrics per bucket, the bucket chosen from the span of the
    monitored data (hours for a day, days for a month, months for decades), from the hour
    buckets read once."""
    hours = ws.store.monitor_hours(model)
    if hours.empty:
        return BUCKETS["day"], []
    first, last = hours["hour"].iloc[0].to_pydatetime(), hours["hour"].iloc[-1].to_pydatetime()
    bucket = choose_bucket(first, last)
    starts = bucket.starts(first, last)
    at = np.array(starts, dtype="datetime64[ns]")
    key = np.searchsorted(at, hours["hour"].to_numpy(), side="right") - 1
    stats = [c for c in hours.columns if c not in ("hour", "version", "arm")]
    summed = hours.assign(key=key).groupby(["key", "version", "arm"], sort=False)[stats].sum()
    per: list[dict[tuple[str, str], dict[str, float]]] = [{} for _ in starts]
    for (k, version, arm), row in zip(summed.index, summed.to_dict("records"), strict=True):
        per[int(k)][(str(version), str(arm))] = row
    points: list[Point] = []
    for m0, found in zip(starts, per, strict=True):
        buckets: list[dict[str, Any]] = [
            {"version": v, "arm": a, **s}
            for (v, a), s in found.items()
            if a not in ("shadow", BASELINE_ARM)
        ]
        base = {v: s for (v, a), s in found.items() if a == BASELINE_ARM}
        naive = {
            v: (int(s["n_labelled"]), live_metrics(task, s).get(metric)) for v, s in base.items()
        }
        naive_sums = {v: {k: float(x) for k, x in s.items()} for v, s in base.items()}
        if not buckets:
            points.append(Point(m0, 0, None, None, 0, naive=naive, naive_sums=naive_sums))
            continue
        pooled = {k: sum(b[k] for b in buckets) for k in buckets[0] if k not in ("version", "arm")}
        by_version = {
            b["version"]: (int(b["n_labelled"]), live_metrics(task, b).get(metric)) for b in buckets
        }
        n_conf = int(pooled.get("n_conf", 0))
        est = pooled["sum_conf"] / n_conf if task == "classification" and n_conf else None
        points.append(
            Point(
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
    return bucket, points


def _drift(
    ws: Workspace,
    model: str,
    versions: dict[str, ModelVersion],
    champions: list[tuple[datetime, str]],
) -> DriftGrid | None:
    spec = check_single(ws.model_spec(model), "the report")
    if not champions:
        return None
    first = versions.get(champions[0][1])
    start = first.train_end if first is not None else None
    frame = training_frame(ws, spec, after=start)
    if frame.empty:
        return None
    times = frame["event_time"]
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert(None)
    t0, t1 = times.min().to_pydatetime(), times.max().to_pydatetime()
    features = [c for c in spec.stored_features.all if c in frame.columns]
    least = spec.drift.min_samples
    if len(frame) < least:  # too few for any check: say so
        nothing = np.zeros((len(features), 0))
        return DriftGrid([], [], features, nothing, nothing.astype(bool), spec.drift.psi,
                         len(frame), least)  # fmt: skip
    bucket = drift_bucket(t0, t1, len(frame), least)
    starts = bucket.starts(t0, t1) if bucket is not None else [t0]
    keys = np.searchsorted(np.array(starts, dtype="datetime64[ns]"), times.to_numpy(), "right") - 1
    periods: list[datetime] = []
    labels: list[str] = []
    psi_cols: list[list[float]] = []
    flag_cols: list[list[bool]] = []
    refs: dict[str, ReferenceStats] = {}
    for key, part in frame.groupby(keys, sort=True):
        at = starts[int(key)]
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
        labels.append(bucket.label(at) if bucket else f"{t0:%Y-%m-%d %H:%M} to {t1:%Y-%m-%d %H:%M}")
        psi_cols.append([_finite(report[f].psi) if f in report else math.nan for f in features])
        flag_cols.append([bool(report[f].drift) if f in report else False for f in features])
    if not periods:
        return None
    return DriftGrid(
        periods,
        labels,
        features,
        np.array(psi_cols, dtype=float).T,
        np.array(flag_cols, dtype=bool).T,
        spec.drift.psi,
        len(frame),
        least,
    )


def drift_bucket(first: datetime, last: datetime, rows: int, least: int = 200) -> Bucket | None:
    """The finest bucket giving 2 to 40 periods of ``least`` rows each on average (a drift
    check's minimum) between ``first`` and ``last``, else years when there are several with
    half that; None when one period over everything is the best.

    >>> from datetime import datetime
    >>> drift_bucket(datetime(1959, 1, 1), datetime(1998, 12, 31), 14_600).name
    'year'
    >>> drift_bucket(datetime(2024, 5, 1), datetime(2024, 5, 31), 9_000).name
    'day'
    >>> drift_bucket(datetime(2024, 5, 1), datetime(2024, 5, 2), 300) is None
    True
    """
    days = (last - first).total_seconds() / 86400
    for name, length in (("hour", 1 / 24), ("day", 1), ("week", 7), ("month", 30.44)):
        n = days / length + 1
        if 2 <= n <= 40 and rows / n >= least:
            return BUCKETS[name]
    years = last.year - first.year + 1
    return BUCKETS["year"] if years >= 2 and rows / years >= least / 2 else None


def _finite(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else math.nan


def collect(ws: Workspace, model: str, *, max_decisions: int = 100_000) -> ReportData:
    """Everything the report draws, for ``model``."""
    from ..core.clock import utcnow
    from ..core.metrics import METRICS

    spec = check_single(ws.model_spec(model), "the report")
    metric = spec.primary_metric
    with contextlib.suppress(RetrainerError):
        monitor(ws, model)  # fold what is new into the aggregates
    versions = ws.store.list_versions(model)
    events = ws.store.events(model)
    champions = champion_timeline(events)
    by_name = {v.version: v for v in versions}
    bucket, points = _points(ws, model, spec.task, metric) if versions else (BUCKETS["day"], [])
    return ReportData(
        model=model,
        task=spec.task,
        metric=metric,
        bigger_is_better=METRICS[metric].bigger_is_better,
        points=points,
        bucket=bucket,
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
    """Each naive baseline seen in the points: (name, description, labelled actuals, its
    metric pooled over every point), after the served predictions' own row ("served")."""
    served = [m for m in data.points if m.sums]
    rows: list[tuple[str, str, int, float | None]] = []
    if served:
        keys = served[0].sums.keys()
        pooled = {k: sum(m.sums.get(k, 0.0) for m in served) for k in keys}
        value = live_metrics(data.task, pooled).get(data.metric)
        rows.append(("served", "the versions serving", int(pooled["n_labelled"]), value))
    for name in data.baselines:
        parts = [m.naive_sums[name] for m in data.points if name in m.naive_sums]
        if not parts:
            continue
        pooled = {k: sum(p.get(k, 0.0) for p in parts) for k in parts[0]}
        value = live_metrics(data.task, pooled).get(data.metric)
        rows.append((name, data.baselines[name], int(pooled["n_labelled"]), value))
    return rows


def rolling(points: list[Point], task: str, metric: str, months: int) -> list[Any]:
    """The metric pooled over the last ``months`` buckets at each bucket (None without data)."""
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


def rolling_estimate(points: list[Point], months: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(points)):
        window = points[max(0, i - months + 1) : i + 1]
        n = sum(p.n_conf for p in window)
        s = sum(p.sums.get("sum_conf", 0.0) for p in window)
        out.append(s / n if n else None)
    return out

"""Live performance per version over a rolling window, computed incrementally.

Each check first folds the predictions and actuals logged since the last check into per-hour
buckets of sufficient statistics (``store.monitor_store``), then sums the buckets of the window.
Labelled pairs fall in the hour of their prediction; the window is hour-aligned: it starts at
the hour holding ``now - window`` and ends with the hour holding ``now``.

Exact from the sums: accuracy, binary f1 and confusion-based counts, log loss and Brier score
(binary, from the logged positive-class probability), MAE, RMSE, R², MAPE, mean confidence.
Not summable and reported as null (with a note): ROC AUC; and for multi-class models the macro
f1, log loss and Brier score (the prediction log keeps the label only).

Each binary classifier version also gets its live confusion matrix over the window
(``confusion_matrix``: labels and counts, rows actual, columns predicted, the shape of the
holdout one ``versions --detail`` shows), read from the same bucket sums as its f1: the
true/false positive/negative counts of the joined pairs whose actual is one of its two
classes. A multi-class version's is null (the buckets keep only whether each pair was right).

>>> from retrainer.core.spec import parse_spec
>>> spec = parse_spec({"store": "sqlite://", "artifacts": "memory://mon", "models": {"m": {
...     "task": "regression", "target": "y", "id_column": "id", "time_column": "t",
...     "features": {"numeric": ["x"]}}}}, environ={})
>>> with Workspace(spec) as ws:
...     monitor(ws, "m").to_dict()["versions"]
[]
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..core.clock import utcnow
from ..core.durations import duration_text, parse_duration
from ..core.errors import RetrainerError
from ..core.fleet import check_single
from ..core.metrics import METRICS, task_metrics
from ..evaluation.conformal import ConformalInterval
from ..monitoring.concept import ConceptDriftMonitor
from ..monitoring.naive import ARM as BASELINE_ARM
from ..monitoring.naive import describe
from ..plumbing.workspace import Workspace
from ..store.convert import jsonsafe
from . import dask_drift, dask_monitor
from .feedback import join_late_predictions, label_key
from .naive_fold import NaiveFolder

EPS = float(np.finfo(np.float64).eps)
NOT_SUMMABLE = "roc_auc is not computed live: it cannot be summed from hourly buckets."


@dataclass(frozen=True)
class VersionMonitor:
    version: str
    arm: str
    predictions: int
    labelled: int
    metrics: dict[str, float | None]
    mean_confidence: float | None
    baseline: dict[str, float | None]
    degradation: float | None
    # binary classifiers: {"labels": [neg, pos], "matrix": rows actual x columns predicted}
    confusion_matrix: dict[str, Any] | None = None
    # regression with a calibrated interval: {"target": 0.9, "live": share of actuals inside}
    interval_coverage: dict[str, float | None] | None = None
    # a naive baseline (arm "baseline"): what it predicts, in words
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if out["description"] is None:  # a version; a baseline says what it predicts
            del out["description"]
        return jsonsafe(out)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MonitorReport:
    model: str
    window: str
    since: datetime
    until: datetime
    primary_metric: str
    versions: list[VersionMonitor]
    folded: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    concept: dict[str, Any] | None = None
    # the naive baselines (arm "baseline") scored on the same labelled actuals as the versions
    baselines: list[VersionMonitor] = field(default_factory=list)

    def best_baseline(self) -> VersionMonitor | None:
        """The baseline with the best live primary metric (None when none has one)."""
        metric = METRICS[self.primary_metric]
        best, top = None, math.nan
        for b in self.baselines:
            value = b.metrics.get(self.primary_metric)
            if value is None or not math.isfinite(value):
                continue
            if best is None or metric.better(value, top):
                best, top = b, value
        return best

    def version(self, version: str, arm: str | None = None) -> VersionMonitor:
        for v in self.versions:
            if v.version == version and (arm is None or v.arm == arm):
                return v
        raise KeyError(f"no live data for version {version!r} (arm {arm!r})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window": self.window,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "primary_metric": self.primary_metric,
            "versions": [v.to_dict() for v in self.versions],
            "folded": self.folded,
            "notes": self.notes,
            "concept_drift": self.concept,
            "baselines": [b.to_dict() for b in self.baselines],
        }


def monitor(
    ws: Workspace,
    model: str,
    window: str | timedelta | None = None,
    now: datetime | None = None,
) -> MonitorReport:
    """Fold what is new into the hourly buckets, then report each version's live metrics over
    the window (default: the spec's ``monitor.window``) and its degradation against its holdout
    baseline on the primary metric (null below ``monitor.min_samples`` labelled pairs)."""
    spec = check_single(ws.model_spec(model), "monitor")
    if isinstance(window, timedelta):
        span, text = window, duration_text(window)
    else:
        text = window or spec.monitor.window
        span = parse_duration(text, what="monitor window")
    now = now or utcnow()
    folder = _Folder(ws, model, spec.task)
    join_late_predictions(ws, model, folder.pairs, now)
    baselines = NaiveFolder(spec.monitor.season, spec.task, folder.pairs)
    on_cluster = 0
    if dask_drift.unsupported(ws, spec) is None:  # the prediction log folded on the workers
        on_cluster = dask_monitor.fold_predictions(ws, spec, fold_prediction_rows)
    n_pred, n_act = ws.store.fold_monitor(
        model, folder.predictions, folder.pairs, fold_baselines=baselines
    )
    n_pred += on_cluster
    since = _hour(now - span)
    until = _hour(now) + timedelta(hours=1)
    primary = spec.primary_metric
    notes = [NOT_SUMMABLE] if spec.task == "classification" else []
    versions, naive = [], []
    for b in ws.store.monitor_buckets(model, since, until):
        metrics = live_metrics(spec.task, b)
        if b["arm"] == BASELINE_ARM:
            naive.append(_naive_row(b, metrics, spec.task, spec.monitor.season))
            continue
        baseline, kept = _baseline(ws, model, b["version"])
        if kept is not None and kept not in notes:
            notes.append(kept)
        degradation = None
        live, base = metrics.get(primary), baseline.get(primary)
        if live is not None and base is not None and b["n_labelled"] >= spec.monitor.min_samples:
            d = METRICS[primary].degradation(live, base)
            degradation = d if math.isfinite(d) else None
        elif b["n_labelled"] < spec.monitor.min_samples:
            notes.append(
                f"{b['version']} ({b['arm']}): {b['n_labelled']} labelled pairs, fewer than "
                f"monitor.min_samples={spec.monitor.min_samples}; no degradation reported."
            )
        conf = b["sum_conf"] / b["n_conf"] if b["n_conf"] else None
        confusion = None
        if spec.task == "classification":
            confusion = live_confusion(folder.labels(b["version"]), b)
        versions.append(
            VersionMonitor(
                b["version"],
                b["arm"],
                int(b["n_pred"]),
                int(b["n_labelled"]),
                metrics,
                conf,
                baseline,
                degradation,
                confusion,
                _coverage(ws, model, b) if spec.task == "regression" else None,
            )
        )
    concept = _concept(ws, model, folder)
    if folder.multiclass:
        notes.append("multi-class: only accuracy is computed live (probabilities are not logged).")
    return MonitorReport(
        model,
        text or duration_text(span),
        since,
        until,
        primary,
        versions,
        {"predictions": n_pred, "actuals": n_act},
        notes,
        concept,
        naive,
    )


def _naive_row(
    b: dict[str, Any], metrics: dict[str, float | None], task: str, season: str | None
) -> VersionMonitor:
    n = int(b["n_labelled"])
    return VersionMonitor(
        b["version"], b["arm"], n, n, metrics, None, {}, None,
        description=describe(b["version"], task, season),
    )  # fmt: skip


def _coverage(ws: Workspace, model: str, b: dict[str, Any]) -> dict[str, float | None] | None:
    """The share of a regression version's labelled actuals within its calibrated interval,
    next to the share it was calibrated for; None for a version without an interval."""
    try:
        iv = ws.store.get_version(model, b["version"]).details.get("interval")
    except RetrainerError:
        return None
    if not iv:
        return None
    n = int(b["n_labelled"])
    live = int(b["n_correct"]) / n if n else None
    return {"target": float(iv["coverage"]), "live": live, "labelled": n}


def _concept(ws: Workspace, model: str, folder: _Folder) -> dict[str, Any] | None:
    """Feed the champion's newly labelled errors to its debounced concept-drift detector
    (its snapshot persists between checks; a new champion starts a fresh one)."""
    champion = ws.store.roles(model).champion
    if champion is None:
        return None
    spec = check_single(ws.model_spec(model), "monitor")
    saved = ws.store.get_state(model, "concept")
    if saved is not None and saved[0] == champion:
        detector = ConceptDriftMonitor.from_dict(saved[1])
    else:
        detector = ConceptDriftMonitor.from_spec(spec.monitor)
    errors = [e for v, arm, e in folder.errors if v == champion and arm == "champion"]
    if not errors:
        return None if saved is None or saved[0] != champion else detector.status.to_dict()
    status = detector.update(np.concatenate(errors).tolist())
    ws.store.put_state(model, "concept", champion, detector.to_dict())
    return status.to_dict()


def live_metrics(task: str, s: dict[str, Any]) -> dict[str, float | None]:
    """The task's metrics from summed bucket statistics (null where undefined)."""
    n = s["n_labelled"]
    out: dict[str, float | None] = {m.name: None for m in task_metrics(task)}
    if not n:
        return out
    if task == "classification":
        out["accuracy"] = s["n_correct"] / n
        tp, fp, fn = s["tp"], s["fp"], s["fn"]
        if tp + fp + fn + s["tn"]:
            out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        if s["n_proba"]:
            out["log_loss"] = s["sum_logloss"] / s["n_proba"]
            out["brier"] = s["sum_brier"] / s["n_proba"]
        return out
    out["mae"] = s["sum_abs"] / n
    out["rmse"] = math.sqrt(s["sum_sq"] / n)
    out["mape"] = s["sum_ape"] / n
    if n >= 2:
        sst = s["sum_y2"] - s["sum_y"] ** 2 / n
        out["r2"] = 1 - s["sum_sq"] / sst if sst > 0 else (1.0 if s["sum_sq"] == 0 else 0.0)
    return out


def live_confusion(labels: Sequence[Any] | None, s: dict[str, Any]) -> dict[str, Any] | None:
    """A binary version's confusion matrix from its summed bucket statistics: rows actual,
    columns predicted, in the order ``labels`` = [negative, positive]. None for a version that
    is not binary; when its labels are unknown (``None``) but pairs were counted, they are
    named ``negative`` and ``positive``.

    >>> live_confusion([0, 1], {"tp": 5, "fp": 1, "tn": 7, "fn": 2})
    {'labels': [0, 1], 'matrix': [[7, 1], [2, 5]]}
    >>> live_confusion(None, {"tp": 1, "fp": 0, "tn": 0, "fn": 0})["labels"]
    ['negative', 'positive']
    >>> live_confusion(["a", "b", "c"], {"tp": 0, "fp": 0, "tn": 0, "fn": 0}) is None
    True
    """
    tn, fp, fn, tp = (int(s[k]) for k in ("tn", "fp", "fn", "tp"))
    if labels is None and tn + fp + fn + tp:  # counted, so binary when folded
        labels = ["negative", "positive"]
    if labels is None or len(labels) != 2:
        return None
    return {"labels": list(labels), "matrix": [[tn, fp], [fn, tp]]}


def fold_prediction_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Hour buckets (n_pred, n_conf, sum_conf) of fetched prediction rows (id, version, arm,
    created_at, proba); a pure function of the rows, so a Dask worker folds a range of them
    (:mod:`.dask_monitor`) as this process would.

    >>> [b["n_pred"] for b in fold_prediction_rows([(1, "1.0.0", "champion",
    ...     "2026-01-01 10:05:00", 0.8)])]
    [1]
    """
    if not rows:
        return []
    df = pd.DataFrame(rows, columns=["id", "version", "arm", "created_at", "proba"])
    p = df["proba"].astype(float)
    df["n_pred"] = 1
    df["n_conf"] = p.notna().astype(int)
    df["sum_conf"] = np.maximum(p, 1 - p).fillna(0.0)
    return _group(df, ["n_pred", "n_conf", "sum_conf"])


class _Folder:
    """Turns fetched prediction rows and labelled pairs into hour-bucket statistics."""

    def __init__(self, ws: Workspace, model: str, task: str) -> None:
        self.ws, self.model, self.task = ws, model, task
        self._classes: dict[str, list[str] | None] = {}
        self._widths: dict[str, float] = {}
        self.multiclass = False
        self.errors: list[tuple[str, str, np.ndarray]] = []  # (version, arm, errors) in order

    def predictions(self, rows: Sequence[Any]) -> list[dict[str, Any]]:
        return fold_prediction_rows(rows)

    def pairs(self, rows: Sequence[Any]) -> list[dict[str, Any]]:
        if len(rows) == 0:  # rows: tuples, or a frame of the same columns
            return []
        df = pd.DataFrame(
            rows, columns=["value", "version", "arm", "created_at", "output", "proba"]
        )
        df["n_labelled"] = 1
        if self.task == "regression":
            y = pd.to_numeric(df["value"], errors="coerce").astype(float)
            err = pd.to_numeric(df["output"], errors="coerce").astype(float) - y
            df["sum_abs"], df["sum_sq"] = err.abs(), err**2
            df["sum_ape"] = err.abs() / np.maximum(y.abs(), EPS)
            df["sum_y"], df["sum_y2"] = y, y**2
            # a regression keeps in n_correct the actuals within the version's calibrated
            # interval (calibration: conformal); the classifier's count is unused for it
            widths = {v: self._half_width(str(v)) for v in df["version"].unique()}
            width = df["version"].map(widths)
            df["n_correct"] = (err.abs() <= width.astype(float)).astype(int)
            self._errors(df, err.abs())
            stats = ["n_labelled", "n_correct", "sum_abs", "sum_sq", "sum_ape", "sum_y", "sum_y2"]
            return _group(df, stats)
        truth, said = _labels(df["value"]), _labels(df["output"])
        df["output"] = said
        df["n_correct"] = (truth == said).astype(int)
        self._errors(df, 1.0 - df["n_correct"])
        for name in ("n_proba", "tp", "fp", "tn", "fn", "sum_brier", "sum_logloss"):
            df[name] = 0.0
        for version, idx in df.groupby("version").groups.items():
            classes = self._version_classes(str(version), df.loc[idx])
            if classes is None:
                continue
            _neg, pos = classes
            part = df.loc[idx]
            known = truth[idx].isin(classes)
            y = (truth[idx] == pos) & known
            pred = said[idx] == pos
            df.loc[idx, "tp"] = (known & y & pred).astype(int)
            df.loc[idx, "fp"] = (known & ~y & pred).astype(int)
            df.loc[idx, "tn"] = (known & ~y & ~pred).astype(int)
            df.loc[idx, "fn"] = (known & y & ~pred).astype(int)
            p = part["proba"].astype(float)
            has = known & p.notna()
            yf = y.astype(float)
            clipped = np.clip(p, EPS, 1 - EPS)
            df.loc[idx, "n_proba"] = has.astype(int)
            df.loc[idx, "sum_brier"] = ((p - yf) ** 2).where(has, 0.0)
            ll = -(yf * np.log(clipped) + (1 - yf) * np.log(1 - clipped))
            df.loc[idx, "sum_logloss"] = ll.where(has, 0.0)
        return _group(
            df,
            [
                "n_labelled",
                "n_correct",
                "n_proba",
                "tp",
                "fp",
                "tn",
                "fn",
                "sum_brier",
                "sum_logloss",
            ],
        )

    def _half_width(self, version: str) -> float:
        """A regression version's interval half-width (NaN without one: nothing covered)."""
        if version not in self._widths:
            self._widths[version] = math.nan
            try:
                iv = self.ws.store.get_version(self.model, version).details.get("interval")
            except RetrainerError:
                iv = None
            if iv:
                self._widths[version] = ConformalInterval.from_dict(iv).half_width
        return self._widths[version]

    def _errors(self, df: pd.DataFrame, err: pd.Series) -> None:
        for (version, arm), idx in df.groupby(["version", "arm"], sort=False).groups.items():
            e = err.loc[idx].to_numpy(dtype=float)
            self.errors.append((str(version), str(arm), e[np.isfinite(e)]))

    def labels(self, version: str) -> list[Any] | None:
        """A version's class labels as its model knows them: from its artifact, else from the
        holdout confusion matrix recorded on the version; None when neither is there (its
        artifact deleted by retention, or an unregistered version)."""
        try:
            return self.ws.classes(self.model, version)
        except RetrainerError:
            pass
        try:
            details = self.ws.store.get_version(self.model, version).details
        except RetrainerError:
            return None
        held = (details.get("confusion_matrix") or {}).get("labels")
        return list(held) if held else None

    def _version_classes(self, version: str, part: pd.DataFrame) -> list[str] | None:
        """[negative, positive] labels of a binary version (None when not binary)."""
        if version not in self._classes:
            try:
                classes = [label_key(c) for c in self.ws.classes(self.model, version)]
            except RetrainerError:  # artifact gone (retention) or unknown version: infer
                pos = part.loc[part["proba"].astype(float) > 0.5, "output"]
                neg = part.loc[part["proba"].astype(float) < 0.5, "output"]
                if pos.empty or neg.empty:
                    return None  # not cached: a later chunk may show both labels
                classes = [neg.iloc[0], pos.iloc[0]]
            self.multiclass = self.multiclass or len(classes) > 2
            self._classes[version] = classes if len(classes) == 2 else None
        return self._classes[version]


def _labels(texts: pd.Series) -> pd.Series:
    """JSON texts as label keys, decoding each distinct text once."""
    return texts.map({u: label_key(json.loads(u)) for u in texts.unique()})


def _group(df: pd.DataFrame, stats: list[str]) -> list[dict[str, Any]]:
    df["hour"] = pd.to_datetime(df["created_at"]).dt.floor("h")
    g = df.groupby(["version", "arm", "hour"], sort=False)[stats].sum().reset_index()
    g["hour"] = [h.to_pydatetime() for h in g["hour"]]
    counts = [s for s in stats if not s.startswith("sum_")]
    g[counts] = g[counts].astype(int)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
        for r in g.to_dict("records")
    ]


def _baseline(
    ws: Workspace, model: str, version: str
) -> tuple[dict[str, float | None], str | None]:
    """The version's baseline (:attr:`ModelVersion.baseline`) and, when it kept one from
    the champion it replaced, why (a note for the report)."""
    try:
        found = ws.store.get_version(model, version)
    except RetrainerError:
        return {}, None
    kept = found.details.get("kept_baseline")
    note = None
    if isinstance(kept, dict) and "metric" in kept:
        note = (
            f"{version}: baseline {kept['metric']} {kept['value']:.4g} kept from {kept.get('from')}"
        )
        if kept.get("reason"):
            note += f" ({kept['reason']})"
    metrics = found.baseline
    return {
        k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in metrics.items()
    }, note


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)

"""Compare model families on one model's data: the same window, the same walk-forward folds.

Each family is measured in its own child process (``python -m retrainer.apps.compare``),
so its peak memory is its own and one family's threads or caches never slow the next. The
child fits one model per fold (CPU seconds per fold), scores every metric of the task on the
fold's test block, warm-starts a model fitted on the older 90% of the window on the newest 10%
(fine-tune CPU seconds; ``None`` when the family cannot warm-start), fits once on the whole
window for the artifact size, reloads that artifact as serving does and times predictions on
it (median wall time of repeated in-process calls, one row and a batch, on the float matrix
and on a DataFrame), and reports its peak RSS (``ru_maxrss``) and the RSS it started from once
the family's library was imported. Models are not calibrated: the comparison is of families.

Nothing is registered unless ``register``; then each family that measured cleanly is trained
through :func:`retrainer.lifecycle.train.train` (a version, not deployed).

>>> [c.key for c in comparison_columns("classification", "accuracy")][:3]
['accuracy', 'f1', 'roc_auc']
>>> best_of([("a", 2.0), ("b", 1.0), ("c", None)], bigger_is_better=False)
('b',)
"""

from __future__ import annotations

import json
import math
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import FamilyUnavailableError, InputError, QualityError, RetrainerError
from ..core.fleet import check_single
from ..core.metrics import task_metrics
from ..core.progress import Progress, current, reports
from ..core.spec import ModelSpec
from ..evaluation.splits import temporal_holdout, walk_forward
from ..families import FAMILY_MODULES, FamilyModel, ValidationSet, load_model
from ..lifecycle.fine_tune import learning_rate_factor
from ..lifecycle.fitting import fit_with_early_stopping, fold_summary, make_model, score
from ..plumbing.workspace import Workspace

DEFAULT_FOLDS = 5
FINE_TUNE_FRACTION = 0.1
BATCH_ROWS = 1000
LATENCY_KEYS = ("row_matrix", "row_frame", "batch_matrix", "batch_frame")


@dataclass(frozen=True)
class Column:
    """One column of the comparison table; ``bigger_is_better`` picks its best value."""

    key: str
    label: str
    bigger_is_better: bool


def comparison_columns(task: str, primary: str) -> list[Column]:
    """Metric columns (primary first), then times, size and memory (smaller is better)."""
    metrics = sorted(task_metrics(task), key=lambda m: m.name != primary)
    return [
        *(Column(m.name, m.name, m.bigger_is_better) for m in metrics),
        Column("fit_cpu_s", "fit CPU s/fold", False),
        Column("fine_tune_cpu_s", "fine-tune CPU s", False),
        Column("row_matrix", "1 row ms (matrix)", False),
        Column("row_frame", "1 row ms (frame)", False),
        Column("batch_matrix", f"{BATCH_ROWS:,} rows ms (matrix)", False),
        Column("batch_frame", f"{BATCH_ROWS:,} rows ms (frame)", False),
        Column("artifact_bytes", "artifact size", False),
        Column("peak_rss_mb", "peak RSS MB", False),
    ]


def best_of(
    values: Sequence[tuple[str, float | None]], *, bigger_is_better: bool
) -> tuple[str, ...]:
    """The families holding the best finite value (ties share it)."""
    finite = [(f, v) for f, v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ()
    pick = max if bigger_is_better else min
    top = pick(v for _, v in finite)
    return tuple(f for f, v in finite if v == top)


@dataclass(frozen=True)
class FamilyRow:
    """What one family measured; ``status`` is ``ok``, ``unavailable`` or ``failed``."""

    family: str
    status: str
    note: str | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> mean, std
    folds: list[dict[str, float]] = field(default_factory=list)
    fit_cpu_s: float | None = None
    fine_tune_cpu_s: float | None = None
    fine_tune_note: str | None = None
    predict_ms: dict[str, float] = field(default_factory=dict)
    artifact_bytes: int | None = None
    peak_rss_mb: float | None = None
    base_rss_mb: float | None = None
    version: str | None = None

    def value(self, key: str) -> float | None:
        """The row's number in table column ``key`` (a metric's mean, a time, a size)."""
        if key in self.metrics:
            return self.metrics[key]["mean"]
        if key in LATENCY_KEYS:
            return self.predict_ms.get(key)
        out = getattr(self, key, None)
        return None if out is None else float(out)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                "family": self.family,
                "status": self.status,
                "note": self.note,
                "metrics": self.metrics,
                "folds": self.folds,
                "fit_cpu_s": self.fit_cpu_s,
                "fine_tune_cpu_s": self.fine_tune_cpu_s,
                "fine_tune_note": self.fine_tune_note,
                "predict_ms": self.predict_ms,
                "artifact_bytes": self.artifact_bytes,
                "peak_rss_mb": self.peak_rss_mb,
                "base_rss_mb": self.base_rss_mb,
                "version": self.version,
            }
        )


@dataclass(frozen=True)
class ComparisonResult:
    model: str
    task: str
    primary_metric: str
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    rows_in_window: int
    folds: int
    gap: int
    fine_tune_rows: int
    rows: tuple[FamilyRow, ...]
    registered: bool = False

    @property
    def columns(self) -> list[Column]:
        return comparison_columns(self.task, self.primary_metric)

    def best(self) -> dict[str, tuple[str, ...]]:
        """Per column key, the families with its best value (only rows that measured)."""
        ok = [r for r in self.rows if r.status == "ok"]
        return {
            c.key: best_of(
                [(r.family, r.value(c.key)) for r in ok], bigger_is_better=c.bigger_is_better
            )
            for c in self.columns
        }

    def to_dict(self) -> dict[str, Any]:
        best = self.best()
        return _json_safe(
            {
                "model": self.model,
                "task": self.task,
                "primary_metric": self.primary_metric,
                "window": {
                    "start": self.window_start.isoformat(),
                    "end": self.window_end.isoformat(),
                    "rows": self.rows_in_window,
                },
                "folds": self.folds,
                "gap": self.gap,
                "fine_tune_rows": self.fine_tune_rows,
                "batch_rows": BATCH_ROWS,
                "columns": [
                    {
                        "key": c.key,
                        "label": c.label,
                        "bigger_is_better": c.bigger_is_better,
                        "best": list(best[c.key]),
                    }
                    for c in self.columns
                ],
                "rows": [r.to_dict() for r in self.rows],
                "registered": {r.family: r.version for r in self.rows if r.version},
            }
        )


def _json_safe(value: Any) -> Any:
    """NaN and infinities become ``None``; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_families(text: str) -> list[str]:
    """Family names from a comma-separated list, checked, duplicates dropped.

    >>> parse_families("lightgbm, randomforest,lightgbm")
    ['lightgbm', 'randomforest']
    """
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FAMILY_MODULES]
    if unknown or not names:
        raise InputError(
            f"Unknown model family {unknown or text!r} in --families. Valid families: "
            f"{', '.join(FAMILY_MODULES)} (comma-separated, e.g. randomforest,lightgbm).",
            families=unknown,
        )
    return names


@reports
def compare(
    ws: Workspace,
    model: str,
    families: Sequence[str],
    *,
    folds: int | None = None,
    register: bool = False,
    progress: Progress | None = None,
) -> ComparisonResult:
    """Measure each family on ``model``'s training window; register versions only if asked
    (``progress`` hears of the rows loaded and each family measured)."""
    from ..lifecycle.train import choose_features, load_window, quality_of, train

    p = current()  # ``progress``, or the caller's
    spec = check_single(ws.model_spec(model), "compare")
    names = parse_families(",".join(families))
    walk = spec.validation.scheme == "walk_forward"
    n_folds = folds or (spec.validation.folds if walk else DEFAULT_FOLDS)
    gap = spec.validation.gap if walk else 0
    p.stage("load rows", unit="rows")
    frame = load_window(ws, spec)
    p.advance(len(frame))
    spec = choose_features(spec, frame).spec  # the families compete on the set a training uses
    walk_forward(len(frame), n_folds, gap)  # too few rows fail here, before any work
    fine_tune_rows = _fine_tune_split(len(frame))[1]
    if register:
        report = quality_of(spec, frame)
        if not report.ok:
            raise QualityError(
                f"Data quality checks failed for model {model!r}; nothing was compared or "
                f"registered.\n{report.render()}\nFix the data or relax the `quality` rules.",
                quality=report.to_dict(),
            )
    rows = []
    for name in names:
        p.stage(f"measure {name}", total=n_folds, unit="folds")
        row = measure_in_subprocess(spec, name, frame, n_folds, gap)
        p.advance(n_folds)
        if register and row.status == "ok":
            version = train(ws, model, family=name, reason=f"compare: {name}").version
            note = row.note
            if version.family != name:
                note = f"registered {version.version} fell back to {version.family}"
            row = replace(row, version=version.version, note=note)
        rows.append(row)
    p.done()
    return ComparisonResult(
        model=model,
        task=spec.task,
        primary_metric=spec.primary_metric,
        window_start=frame["event_time"].iloc[0],
        window_end=frame["event_time"].iloc[-1],
        rows_in_window=len(frame),
        folds=n_folds,
        gap=gap,
        fine_tune_rows=fine_tune_rows,
        rows=tuple(rows),
        registered=register,
    )


def _fine_tune_split(n: int) -> tuple[int, int]:
    base, new = temporal_holdout(n, FINE_TUNE_FRACTION)
    return base.stop, new.stop - new.start


def measure_in_subprocess(
    spec: ModelSpec, family: str, frame: pd.DataFrame, folds: int, gap: int
) -> FamilyRow:
    """Run :func:`measure` for one family in a fresh Python process and read its report."""
    with tempfile.TemporaryDirectory(prefix="retrainer-compare-") as tmp:
        job, result = Path(tmp) / "job.pkl", Path(tmp) / "result.json"
        # Our own private temp folder, read back only by our own child process.
        job.write_bytes(pickle.dumps((spec, family, frame, folds, gap), protocol=5))
        proc = subprocess.run(
            [sys.executable, "-m", __name__, str(job), str(result)],
            capture_output=True,
            text=True,
            check=False,
        )
        if not result.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return FamilyRow(
                family,
                "failed",
                f"the measuring process exited with code {proc.returncode}: " + " | ".join(tail),
            )
        body = json.loads(result.read_text())
    return FamilyRow(**body)


def measure(
    spec: ModelSpec, family: str, frame: pd.DataFrame, folds: int, gap: int
) -> dict[str, Any]:
    """Everything one family measures (run in its own process); a dict of FamilyRow fields."""
    try:
        return _measure(spec, family, frame, folds, gap)
    except FamilyUnavailableError as exc:
        return {"family": family, "status": "unavailable", "note": exc.message}
    except (RetrainerError, ImportError, ValueError, RuntimeError, MemoryError) as exc:
        message = exc.message if isinstance(exc, RetrainerError) else str(exc)
        return {"family": family, "status": "failed", "note": f"{type(exc).__name__}: {message}"}


def _measure(
    spec: ModelSpec, family: str, frame: pd.DataFrame, folds: int, gap: int
) -> dict[str, Any]:
    X, y = frame[spec.feature_names], frame["target"]
    seed = spec.training.seed
    make_model(spec, family, seed)  # imports the family's library before the baseline
    base_rss = peak_rss_mb()
    # First, so its untimed base fit also warms up the family (lazy imports, thread pools).
    ft_cpu, ft_note = _fine_tune_time(spec, family, X, y)
    fold_rows: list[dict[str, float]] = []
    for fold in walk_forward(len(frame), folds, gap):
        started = time.process_time()
        m = fit_with_early_stopping(
            make_model(spec, family, seed), X.iloc[fold.train], y.iloc[fold.train]
        )
        cpu = time.process_time() - started
        metrics = score(m, X.iloc[fold.test], y.iloc[fold.test])[0]
        fold_rows.append(
            {
                "fold": fold.index,
                "train_rows": fold.train.stop,
                "test_rows": fold.test.stop - fold.test.start,
                "fit_cpu_s": cpu,
                **metrics,
            }
        )
    summary = fold_summary([{k: v for k, v in f.items() if k != "fit_cpu_s"} for f in fold_rows])
    artifact = fit_with_early_stopping(make_model(spec, family, seed), X, y).save()
    served = load_model(artifact)  # measured as serving loads it (e.g. one predict thread)
    return {
        "family": family,
        "status": "ok",
        "metrics": summary,
        "folds": fold_rows,
        "fit_cpu_s": float(np.mean([f["fit_cpu_s"] for f in fold_rows])),
        "fine_tune_cpu_s": ft_cpu,
        "fine_tune_note": ft_note,
        "predict_ms": predict_latencies(served, X),
        "artifact_bytes": len(artifact),
        "peak_rss_mb": peak_rss_mb(),
        "base_rss_mb": base_rss,
    }


def _fine_tune_time(
    spec: ModelSpec, family: str, X: pd.DataFrame, y: pd.Series
) -> tuple[float | None, str | None]:
    """CPU seconds to warm-start on the newest 10% a model fitted on the rest (as fine-tune)."""
    cut = _fine_tune_split(len(X))[0]
    base = fit_with_early_stopping(
        make_model(spec, family, spec.training.seed), X.iloc[:cut], y.iloc[:cut]
    )
    if not base.capabilities.warm_start:
        return None, f"the {family!r} family cannot warm-start"
    Xn, yn = X.iloc[cut:], y.iloc[cut:]
    fit_part, val = temporal_holdout(len(Xn), spec.fine_tune.validation_fraction)
    started = time.process_time()
    try:
        base.fine_tune(
            Xn.iloc[fit_part],
            yn.iloc[fit_part],
            ValidationSet(Xn.iloc[val], yn.iloc[val]),
            learning_rate_factor=learning_rate_factor(spec, base),
            rounds=spec.fine_tune.rounds,
        )
    except RetrainerError as exc:
        return None, exc.message
    return time.process_time() - started, None


def predict_latencies(model: FamilyModel, X: pd.DataFrame) -> dict[str, float]:
    """Median milliseconds of one row and of a ``BATCH_ROWS`` batch, matrix and DataFrame."""
    batch = X.iloc[np.arange(BATCH_ROWS) % len(X)]
    row = X.iloc[[len(X) - 1]]
    cases = {
        "row_matrix": (model.schema_.matrix(row), 0.2),
        "row_frame": (row, 0.2),
        "batch_matrix": (model.schema_.matrix(batch), 0.4),
        "batch_frame": (batch, 0.4),
    }
    return {key: _median_ms(model, data, budget) for key, (data, budget) in cases.items()}


def _median_ms(model: FamilyModel, data: pd.DataFrame | np.ndarray, budget_s: float) -> float:
    model.predict_raw(data)  # warm-up
    times: list[float] = []
    spent = 0.0
    while len(times) < 5 or (spent < budget_s and len(times) < 2000):
        started = time.perf_counter()
        model.predict_raw(data)
        took = time.perf_counter() - started
        times.append(took)
        spent += took
    return statistics.median(times) * 1000.0


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _child_main(argv: list[str]) -> int:
    job, result = Path(argv[0]), Path(argv[1])
    spec, family, frame, folds, gap = pickle.loads(job.read_bytes())
    try:
        body = measure(spec, family, frame, folds, gap)
    except Exception as exc:  # report anything, so the parent can show it in the table
        body = {"family": family, "status": "failed", "note": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc()
    result.write_text(json.dumps(_json_safe(body)))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))

"""Fine-tune against full retrain, on the same NOAA weather rows, judged on the next year.

For each family that warm-starts and each year Y: a champion is fitted on the ten years before
Y; then (a) a full retrain fits a fresh model on the ten years ending where Y+1 begins, and (b)
a fine-tune warm-starts a copy of the champion (its artifact reloaded, as the lifecycle does)
on year Y's rows with the spec's fine-tune settings (learning-rate factor 0.5, at most 100
rounds or trees, the newest 10% of the new rows for early stopping). Both, and the stale
champion, are scored on year Y+1. Fits use the same calls as ``retrainer train`` and
``retrainer fine-tune`` (``fit_with_early_stopping``, ``FamilyModel.fine_tune``) without the
registry around them; CPU is ``time.process_time`` (all threads of this process).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import table
from .families import load_note

FAMILIES = ("randomforest", "lightgbm", "xgboost", "catboost", "mlp")
YEARS = tuple(range(1959, 1969))
QUICK_FAMILIES = ("randomforest", "lightgbm")
QUICK_YEARS = (1962, 1966)


def _spec() -> Any:
    from retrainer.apps.demo import demo_spec
    from retrainer.core.spec import parse_spec

    with tempfile.TemporaryDirectory() as tmp:
        return parse_spec(demo_spec(Path(tmp)), environ={}).model("weather")


def _accuracy(model: Any, X: Any, y: Any) -> float:
    from retrainer.lifecycle.fitting import score

    return float(score(model, X, y)[0]["accuracy"])


def measure(family: str, year: int, spec: Any, data: Any) -> dict[str, float]:
    from retrainer.evaluation.splits import temporal_holdout
    from retrainer.families import ValidationSet, load_model
    from retrainer.lifecycle.fitting import fit_with_early_stopping, make_model

    years = data["date"].dt.year

    def rows(lo: int, hi: int) -> tuple[Any, Any]:
        part = data[(years >= lo) & (years < hi)]
        return part[spec.feature_names], part["rain"]

    seed = spec.training.seed
    champion = fit_with_early_stopping(make_model(spec, family, seed), *rows(year - 10, year))
    X_next, y_next = rows(year + 1, year + 2)

    started = time.process_time()
    full = fit_with_early_stopping(make_model(spec, family, seed), *rows(year - 9, year + 1))
    full_cpu = time.process_time() - started

    X_new, y_new = rows(year, year + 1)
    artifact = champion.save()
    started = time.process_time()
    tuned = load_model(artifact)
    load_cpu = time.process_time() - started
    started = time.process_time()
    fit_part, val = temporal_holdout(len(X_new), spec.fine_tune.validation_fraction)
    tuned.fine_tune(
        X_new.iloc[fit_part],
        y_new.iloc[fit_part],
        ValidationSet(X_new.iloc[val], y_new.iloc[val]),
        learning_rate_factor=spec.fine_tune.learning_rate_factor,
        rounds=spec.fine_tune.rounds,
    )
    tune_cpu = time.process_time() - started
    return {
        "full_cpu": full_cpu,
        "tune_cpu": tune_cpu,
        "load_cpu": load_cpu,
        "stale": _accuracy(champion, X_next, y_next),
        "full": _accuracy(full, X_next, y_next),
        "tuned": _accuracy(tuned, X_next, y_next),
    }


def run(quick: bool) -> str:
    from retrainer.datasets import weather

    families = QUICK_FAMILIES if quick else FAMILIES
    years = QUICK_YEARS if quick else YEARS
    spec, data = _spec(), weather()
    load_before = os.getloadavg()[0]
    rows = []
    for family in families:
        results = [measure(family, y, spec, data) for y in years]
        n = len(results)
        full_cpu = sum(r["full_cpu"] for r in results)
        tune_cpu = sum(r["tune_cpu"] for r in results)
        load_cpu = sum(r["load_cpu"] for r in results)
        wins = sum(r["tuned"] >= r["full"] for r in results)
        rows.append(
            [
                family,
                f"{full_cpu / n:.3f}",
                f"{tune_cpu / n:.3f}",
                f"{load_cpu / n:.3f}",
                f"**{tune_cpu / full_cpu:.2f}**",
                f"{(tune_cpu + load_cpu) / full_cpu:.2f}",
                f"{sum(r['stale'] for r in results) / n:.4f}",
                f"{sum(r['full'] for r in results) / n:.4f}",
                f"{sum(r['tuned'] for r in results) / n:.4f}",
                f"{wins} of {n}",
            ]
        )
    load_after = os.getloadavg()[0]
    span = f"{years[0]}–{years[-1]}" if len(years) > 2 else " and ".join(map(str, years))
    return "\n".join(
        [
            "## Fine-tune vs full retrain",
            "",
            "```",
            "python -m bench --only finetune" + (" --quick" if quick else ""),
            "```",
            "",
            f"NOAA weather, years Y = {span} ({len(years)} per family). Champion: fitted on the "
            "ten years before Y. Full retrain: a fresh fit on the ten years ending at Y+1's "
            "start (about 3,650 rows). Fine-tune: the champion warm-started on year Y's "
            "365 rows. All three scored on year Y+1 (next-year accuracy, mean over the years). "
            "CPU is per update (mean); the ratio is total fine-tune CPU over total full-retrain "
            "CPU; 'with load' adds reloading the champion from its artifact, which "
            "`retrainer fine-tune` also does. Fit calls are the lifecycle's, without the "
            "registry.",
            "",
            table(
                [
                    "family",
                    "full retrain CPU s",
                    "fine-tune CPU s",
                    "champion load CPU s",
                    "CPU ratio fine-tune/full",
                    "ratio with load",
                    "stale champion acc.",
                    "full retrain acc.",
                    "fine-tune acc.",
                    "fine-tune ≥ full",
                ],
                rows,
            ),
            "",
            f"Load average (1 min) on this shared {os.cpu_count()}-core machine: "
            f"{load_before:.1f} before, {load_after:.1f} after."
            f"{load_note((load_before, load_after))}",
        ]
    )

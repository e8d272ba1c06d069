"""The monitor's fold of the naive baselines (``monitoring.naive``) into its hour buckets.

Each actuals segment the monitor folds goes through the baselines in its stored order; an
actual joined to a prediction is scored once per baseline (not once per version that
predicted it), as pseudo-version ``naive:last`` / ``naive:seasonal`` / ``naive:mean`` with arm
``baseline``, in the hour of its prediction, through the same pair fold as the versions: the
window, the sums and the metrics are the versions' own. Actuals without a prediction teach
the baselines but are not scored. An actual joined to its prediction only after the monitor
folded it (a prediction logged after its actual) counts for the versions and not for the
baselines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..core.custom_metrics import gate_metrics
from ..core.durations import parse_duration
from ..core.metrics import Metric
from ..core.spec import ModelSpec
from ..monitoring.naive import ARM, LAST, check_season, fold, new_state, time_step

PairFold = Callable[[Any], list[dict[str, Any]]]


class NaiveFolder:
    """Callable for ``MonitorStore.fold_monitor(fold_baselines=...)``: (segment table, its
    pairs, state) -> (bucket rows, state)."""

    def __init__(self, season: str | None, task: str, fold_pairs: PairFold) -> None:
        self.season = season
        self.seconds = (
            None
            if season is None
            else int(parse_duration(season, what="monitor.season").total_seconds())
        )
        self.task, self.fold_pairs = task, fold_pairs

    def __call__(
        self, tb: Any, pairs: Any, state: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if state is None or state.get("task") != self.task:
            state = new_state(self.task, self.seconds)
        if state["season"] != self.seconds:  # the spec's season changed: learn it afresh
            state.update(season=self.seconds, seasonal={}, newest=None)
        n = tb.num_rows
        if not n:
            return [], state
        entities = [str(e) for e in tb["entity_id"].to_pylist()]
        stamps = pd.to_datetime(tb["event_time"].to_pandas())
        seconds = np.where(
            stamps.notna(), stamps.to_numpy(dtype="datetime64[s]").astype(np.int64), 0
        ).astype(float)
        seconds[stamps.isna().to_numpy()] = np.nan
        raw = tb["value"].to_pandas()
        if self.task == "regression":
            values: Any = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        else:
            texts = pd.Series(raw.to_numpy(dtype=object), dtype=object)
            values = texts.map({u: json.dumps(u) for u in texts.unique()}).to_numpy(dtype=object)
        self._check_step(state, seconds)
        said = fold(state, entities, seconds, values)
        if pairs is None or len(pairs) == 0:
            return [], state
        first = pd.DataFrame(pairs)[["row", "created_at"]].drop_duplicates("row")
        rows = first["row"].to_numpy(dtype=np.int64)
        buckets: list[dict[str, Any]] = []
        for name, guesses in said.items():
            out = guesses[rows]
            keep = pd.notna(out)
            if not keep.any():
                continue
            frame = pd.DataFrame(
                {
                    "value": values[rows][keep],
                    "version": name,
                    "arm": ARM,
                    "created_at": first["created_at"].to_numpy()[keep],
                    "output": out[keep],
                    "proba": np.nan,
                }
            )
            buckets += self.fold_pairs(frame)
        return buckets, state

    def _check_step(self, state: dict[str, Any], seconds: np.ndarray) -> None:
        """Learn the data's time step from the first actuals that show one, and check the
        season against it (a spec error when it does not divide it)."""
        if self.season is None:
            return
        if state.get("step") is None:
            step = time_step(seconds[np.isfinite(seconds)])
            if step is None:
                return
            state["step"] = int(step.total_seconds())
        check_season(self.season, timedelta(seconds=state["step"]), "the actuals")


def check_window_season(season: str | None, event_times: pd.Series) -> None:
    """At training: ``monitor.season`` must be a whole multiple of the training window's time
    step (a spec error naming it otherwise; nothing to check without a season or a regular
    step)."""
    if season is None:
        return
    times = pd.to_datetime(event_times.dropna())
    seconds = times.to_numpy(dtype="datetime64[s]").astype(np.int64)
    check_season(season, time_step(seconds), "the training window")


def holdout_naive(frame: pd.DataFrame, n_hold: int, metric: Metric) -> float | None:
    """At training, a regression's ``metric`` of the previous actual (the monitor's
    ``naive:last``, folded over the window's rows in time order as the monitor folds actuals)
    on the newest ``n_hold`` rows, the holdout; None when no holdout row has a previous
    actual. The policy scales the baseline by how much harder the live rows are for it
    (``policy.scale_baseline_by_naive``).

    >>> from retrainer.core.metrics import METRICS
    >>> rows = pd.DataFrame({"entity_id": ["a", "b", "c", "d"], "target": [1.0, 3.0, 2.0, 6.0]})
    >>> holdout_naive(rows, 2, METRICS["mae"])  # |2 - 3| and |6 - 2|
    2.5
    """
    if n_hold <= 0:
        return None
    y = frame["target"].to_numpy(dtype=float)
    entities = frame["entity_id"].astype(str).tolist()
    guess = fold(new_state("regression", None), entities, np.full(len(y), np.nan), y)[LAST]
    y, guess = y[-n_hold:], guess[-n_hold:]
    known = np.isfinite(guess) & np.isfinite(y)
    if not known.any():
        return None
    value = metric.compute(y[known], guess[known], None)
    return float(value) if np.isfinite(value) else None


def naive_on_holdout(spec: ModelSpec, frame: pd.DataFrame, n_hold: int) -> dict[str, Any]:
    """``details["naive_holdout"]`` of a regression version: the previous actual's primary
    metric on its holdout (``{metric, value, rows}``), what the policy scales its baseline
    by (``policy.scale_baseline_by_naive``); empty for a classifier, a metric where bigger is
    better, or with the option off."""
    measure = gate_metrics(spec.gate, spec.task)[spec.primary_metric]
    if spec.task != "regression" or measure.bigger_is_better:
        return {}
    if not spec.policy.scale_baseline_by_naive:
        return {}
    value = holdout_naive(frame, n_hold, measure)
    if value is None:
        return {}
    return {"metric": spec.primary_metric, "value": round(value, 6), "rows": n_hold}

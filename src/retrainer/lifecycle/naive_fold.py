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
from typing import Any

import numpy as np
import pandas as pd

from ..core.durations import parse_duration
from ..monitoring.naive import ARM, check_season, fold, new_state, time_step

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
        times = tb["event_time"].to_pylist()
        raw = tb["value"].to_pandas().to_numpy(dtype=object)
        texts = pd.Series(raw, dtype=object)
        values = texts.map({u: json.dumps(u) for u in texts.unique()}).tolist()
        self._check_step(state, times)
        said = fold(state, entities, times, values)
        if pairs is None or len(pairs) == 0:
            return [], state
        first = pd.DataFrame(pairs)[["row", "created_at"]].drop_duplicates("row")
        rows = first["row"].to_numpy(dtype=np.int64)
        buckets: list[dict[str, Any]] = []
        for name, guesses in said.items():
            out = np.asarray(guesses, dtype=object)[rows]
            keep = pd.notna(out)
            if not keep.any():
                continue
            frame = pd.DataFrame(
                {
                    "value": np.asarray(values, dtype=object)[rows][keep],
                    "version": name,
                    "arm": ARM,
                    "created_at": first["created_at"].to_numpy()[keep],
                    "output": out[keep],
                    "proba": np.nan,
                }
            )
            buckets += self.fold_pairs(frame)
        return buckets, state

    def _check_step(self, state: dict[str, Any], times: list[Any]) -> None:
        """Learn the data's time step from the first actuals that show one, and check the
        season against it (a spec error when it does not divide it)."""
        if self.season is None:
            return
        if state.get("step") is None:
            step = time_step([t for t in times if t is not None])
            if step is None:
                return
            state["step"] = int(step.total_seconds())
        from datetime import timedelta

        check_season(self.season, timedelta(seconds=state["step"]), "the actuals")

"""The quality bench's strategies, each scored on the same rows of a stream.

Every strategy sees a row's features before its actual and the actual one day later. An
:class:`Outcome` holds, per scored row, whether it was right (classification) or its absolute
error (regression).

>>> import pandas as pd
>>> from bench.quality_data import Stream
>>> df = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=6), "y": [1., 2, 3, 4, 5, 6]})
>>> s = Stream("toy", df, "y", [], "regression", initial_days=3, season_days=2)
>>> for o in run_baselines(s):
...     print(o.strategy, o.values.tolist())
previous actual [1.0, 1.0, 1.0]
mean of the actuals so far [2.0, 2.5, 3.0]
seasonal naive (2 days back) [2.0, 2.0, 2.0]
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .common import WORK
from .quality_data import WINDOW_DAYS, Stream

MAINTAIN_EVERY = 28
LGB_PARAMS = {"num_threads": 1}
DEFAULT_LABEL = "retrainer policy, default spec"
TUNED_LABEL = "retrainer policy, tuned spec (the demo's)"
ARF_LABEL = "River ARF (10 models), one row at a time"
HAT_LABEL = "River Hoeffding adaptive tree"


@dataclass
class Outcome:
    strategy: str
    values: np.ndarray  # per scored row: right (bool) or absolute error
    trainings: int | None
    cpu: float | None
    decisions: str = "—"
    choices: str | None = None  # the policy's training choices (retrainer rows)
    naive: bool = False


def _spec(folder: Path, s: Stream, tuned: bool) -> dict[str, Any]:
    from retrainer.apps.demo import demo_spec

    if tuned:
        raw = demo_spec(folder)
        model = raw["models"].pop("weather")
        model["params"] = dict(LGB_PARAMS)
    else:
        raw = {"store": f"sqlite:///{folder / 'retrainer.db'}", "artifacts": str(folder / "a")}
        # family unset: LightGBM, with the linear family as the choice's other candidate
        model = {"task": s.task, "params": {"lightgbm": dict(LGB_PARAMS)}}
        model["training"] = {"window_days": WINDOW_DAYS}
    model.update(
        target=s.target, id_column="day_id", time_column="date", features={"numeric": s.features}
    )
    raw["models"] = {"m": model}
    return raw


def _choice_name(chosen: dict[str, Any]) -> str:
    """``all rows, none`` / ``last 730 days, half-life 365 d, linear leaves``, from a recorded
    choice."""
    window = str(chosen.get("window", "?"))
    window = {"all": "all rows", "since_change": "since the last change"}.get(
        window, f"newest {window}" if "/" in window else f"last {window}"
    )
    weighting = chosen.get("weighting") or chosen.get("half_life", "?")
    days = chosen.get("half_life_days")
    if weighting != "none":
        weighting = f"half-life {weighting}" + (f" ({days:.0f} d)" if days else "")
    leaves = chosen.get("leaves", "constant")
    leaves = "" if leaves == "constant" else f", {leaves} leaves"
    inputs = ", previous actual" if chosen.get("previous_actual") else ""
    inputs += ", time features" if chosen.get("time_features") else ""
    family = f", {chosen['family']} model" if chosen.get("family") else ""
    if chosen.get("members"):  # a blend (training.choice.blend)
        family = f", blend of {' and '.join(chosen['members'])}"
    return f"{window}, {weighting}{leaves}{inputs}{family}"


def choices_line(versions: list[Any]) -> str:
    """The (window, weighting) pairs the full retrains chose, with counts; "(not recorded)"
    when no version records ``training_choice.chosen``."""
    chosen = [
        v.details["training_choice"]["chosen"]
        for v in versions
        if isinstance(v.details.get("training_choice"), dict)
        and "chosen" in v.details["training_choice"]
    ]
    if not chosen:
        return "choices: (not recorded)"
    counts = Counter(_choice_name(c) for c in chosen)
    listed = "; ".join(f"{name} x{n}" for name, n in counts.most_common())
    tunes = sum(1 for v in versions if v.kind in ("fine_tune", "incremental_update"))
    tuned = f" (and {tunes} fine-tune{'s' if tunes > 1 else ''})" if tunes else ""
    return f"choices: {listed}{tuned}"


def run_policy(s: Stream, tuned: bool) -> Outcome:
    """retrainer's policy through the replay driver, ``maintain`` every 28 days."""
    from retrainer.apps.replay import ReplayConfig, replay
    from retrainer.core.spec import parse_spec
    from retrainer.plumbing.workspace import Workspace

    slug = "".join(c if c.isalnum() else "-" for c in s.name.lower())
    folder = WORK / f"quality-{slug}-{'tuned' if tuned else 'default'}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spec = parse_spec(_spec(folder, s, tuned), environ={})
    cfg = ReplayConfig(initial_days=s.initial_days, maintain_every_days=MAINTAIN_EVERY)
    with Workspace(spec) as ws:
        r = replay(ws, "m", s.frame.copy(), cfg)
        choices = choices_line(ws.store.list_versions("m"))
    shutil.rmtree(folder, ignore_errors=True)
    m = r.summary
    acts = ", ".join(f"{k} {v}" for k, v in sorted(m.decisions.items()) if k != "nothing")
    extra = f"; {m.deployments} deployed, {m.rollbacks} rolled back"
    label = TUNED_LABEL if tuned else DEFAULT_LABEL
    values = np.asarray(r.correct, dtype=float if s.regression else bool)
    return Outcome(
        label, values, m.trainings, m.training_cpu_seconds, (acts or "none") + extra, choices
    )


def _lgb_fit(s: Stream, train: np.ndarray) -> tuple[Any, float]:
    """What a hand-written retraining job does: fit on every row of the window (retrainer's
    LightGBM defaults, 200 rounds, no rows held back)."""
    from retrainer.families import family_class

    started = time.process_time()
    model = family_class("lightgbm")(s.task, s.features, [], LGB_PARAMS, 0)
    model.fit(s.frame.loc[train, s.features], s.frame.loc[train, s.target])
    return model, time.process_time() - started


def _scored(s: Stream, guesses: np.ndarray) -> np.ndarray:
    truth = s.frame[s.target].to_numpy()[s.initial_days :]
    if s.regression:
        return np.abs(np.asarray(guesses, dtype=float) - truth.astype(float))
    return np.asarray(guesses) == truth


def run_schedule(s: Stream, period: int | None) -> Outcome:
    """Retrain every ``period`` days on the last 10 years of labelled rows (None: never)."""
    df = s.frame
    days = (df["date"] - df["date"].iloc[0]).dt.days.to_numpy()
    preds: list[np.ndarray] = []
    cpu, fits = 0.0, 0
    at, end = s.initial_days, int(days[-1]) + 1
    while at < end:
        stop = end if period is None else min(at + period, end)
        model, used = _lgb_fit(s, (days < at) & (days >= at - WINDOW_DAYS))  # labels to yesterday
        cpu, fits = cpu + used, fits + 1
        block = (days >= at) & (days < stop)
        if block.any():
            preds.append(model.predict(df.loc[block, s.features]))
        at = stop
    name = "static LightGBM (initial window)" if period is None else f"LightGBM every {period} days"
    return Outcome(name, _scored(s, np.concatenate(preds)), fits, cpu)


def run_river(s: Stream, kind: str) -> Outcome:
    """River's ARF (10 models) or Hoeffding adaptive tree, learning one row at a time."""
    from river import forest, tree

    model: Any
    if kind == "arf":
        model = (
            forest.ARFRegressor(n_models=10, seed=1)
            if s.regression
            else forest.ARFClassifier(n_models=10, seed=1)
        )
    else:
        model = (
            tree.HoeffdingAdaptiveTreeRegressor(seed=1)
            if s.regression
            else tree.HoeffdingAdaptiveTreeClassifier(seed=1)
        )
    X = s.frame[s.features].to_dict("records")
    y = s.frame[s.target].tolist()
    started = time.process_time()
    for i in range(s.initial_days):
        model.learn_one(X[i], y[i])
    cpu = time.process_time() - started
    guesses: list[Any] = []
    pending: tuple[dict[str, float], Any] | None = None
    for i in range(s.initial_days, len(X)):
        if pending is not None:  # yesterday's actual arrives
            t = time.process_time()
            model.learn_one(*pending)
            cpu += time.process_time() - t
        guesses.append(model.predict_one(X[i]))
        pending = (X[i], y[i])
    values = _scored(s, np.asarray(guesses, dtype=float if s.regression else object))
    return Outcome(ARF_LABEL if kind == "arf" else HAT_LABEL, values, None, cpu)


def run_baselines(s: Stream) -> list[Outcome]:
    """Naive predictors from the actuals known the day before: the previous actual, the
    majority class / mean so far, and the actual one season back where the stream has one."""
    y = s.frame[s.target].to_numpy()
    start = s.initial_days
    seen = np.arange(start, len(y))
    if s.regression:
        y = y.astype(float)
        so_far = (np.cumsum(y)[start - 1 : -1] / seen, "mean of the actuals so far")
        first = "previous actual"
    else:
        counts = np.cumsum(y == 1)[start - 1 : -1]
        so_far = ((counts * 2 > seen).astype(y.dtype), "majority class so far")
        first = "last label"
    guesses = [(y[start - 1 : -1], first), so_far]
    if s.season_days is not None:
        dates = s.frame["date"].reset_index(drop=True)
        wanted = (dates - np.timedelta64(s.season_days, "D")).iloc[start:]
        back = dates.searchsorted(wanted)
        if (back >= len(dates)).any() or (dates.to_numpy()[back] != wanted.to_numpy()).any():
            raise ValueError(
                f"Stream {s.name!r}: season_days={s.season_days} needs a row every day; some "
                "day a season back is missing. Drop the season or fill the days."
            )
        guesses.append((y[back], f"seasonal naive ({s.season_days} days back)"))
    return [Outcome(name, _scored(s, g), None, None, naive=True) for g, name in guesses]

"""Model quality under drift: prequential (test-then-train, in time order) accuracy of every
maintenance strategy on the same rows, with the training it cost.

Data: the bundled NOAA weather (one row a day; the first 10 years train, the rest is scored),
river's SEA stream with an abrupt concept drift (``ConceptDriftStream``) and its rotating
Hyperplane (gradual drift), both laid out one row a day like the weather. Every strategy sees
each row's features before its label, and the label one day later.

Strategies: static (trained once on the initial window); LightGBM retrained every 7, 30, 90
and 365 days on a sliding 10-year window; retrainer's policy through the replay driver (the
default spec and the demo's tuned spec); River's ARF (10 trees) and Hoeffding adaptive tree,
learning one row at a time; last label; majority class. The LightGBM settings are the same
everywhere (retrainer's family defaults, one thread). A schedule fits every row of its window
with the default 200 rounds, as a hand-written retraining job would; retrainer trains its own
way: an evaluation fit for the gate (the window minus its newest 20%), early stopping on the
newest 10% of the window to settle the rounds (the larger of that and the evaluation fit's
estimate; skipped when the evaluation fit ran all 200 rounds; both stop after 50 rounds without
improvement), and a final fit on every row with that many rounds.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .common import WORK, seconds, table

INITIAL_DAYS = 3652
WINDOW_DAYS = 3650
PERIODS = (7, 30, 90, 365)
MAINTAIN_EVERY = 28
LGB_PARAMS = {"num_threads": 1}
BLOCK_DAYS = 30  # block bootstrap: days are autocorrelated
SYNTH_ROWS = 3652 + 3650  # ten years of warm-up, ten scored


@dataclass
class Outcome:
    strategy: str
    correct: np.ndarray
    trainings: int | None
    cpu: float | None
    decisions: str = "—"


def versions() -> str:
    import lightgbm
    import river

    return f"Versions: lightgbm {lightgbm.__version__}, river {river.__version__}."


# -- data ------------------------------------------------------------------------------------


def _as_daily(X: list[dict[str, float]], y: list[Any], start: str = "1949-01-01") -> pd.DataFrame:
    df = pd.DataFrame(X)
    df.columns = [f"x{i}" for i in range(df.shape[1])]
    df.insert(0, "date", pd.date_range(start, periods=len(df), freq="D"))
    df.insert(0, "day_id", [f"r{i:06d}" for i in range(len(df))])
    df["y"] = np.asarray(y).astype(int)
    return df


def sea_abrupt(n: int) -> pd.DataFrame:
    """SEA variant 0 → variant 2 in the middle of the scored part (width n/150 ≥ pos/170)."""
    from river.datasets import synth

    position = INITIAL_DAYS + (n - INITIAL_DAYS) // 2
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=0, noise=0.1, seed=7),
        drift_stream=synth.SEA(variant=2, noise=0.1, seed=8),
        position=position,
        width=max(50, position // 150),
        seed=9,
    )
    rows = list(stream.take(n))
    return _as_daily([x for x, _ in rows], [y for _, y in rows])


def hyperplane_gradual(n: int) -> pd.DataFrame:
    from river.datasets import synth

    stream = synth.Hyperplane(
        seed=11, n_features=8, n_drift_features=4, mag_change=0.002, noise_percentage=0.05
    )
    rows = list(stream.take(n))
    return _as_daily([x for x, _ in rows], [y for _, y in rows])


def datasets(quick: bool) -> dict[str, tuple[pd.DataFrame, str, str, list[str]]]:
    from retrainer.datasets import WEATHER_FEATURES, weather

    n = INITIAL_DAYS + (3 * 365 if quick else SYNTH_ROWS - INITIAL_DAYS)
    w = weather()
    if quick:
        w = w.iloc[: INITIAL_DAYS + 3 * 365]
    feats = [f"x{i}" for i in range(3)]
    out = {
        "NOAA weather": (w, "rain", "day_id", WEATHER_FEATURES),
        "SEA, abrupt drift": (sea_abrupt(n), "y", "day_id", feats),
        "Hyperplane, gradual drift": (
            hyperplane_gradual(n),
            "y",
            "day_id",
            [f"x{i}" for i in range(8)],
        ),
    }
    return out


# -- strategies ------------------------------------------------------------------------------


def _spec(folder: Path, target: str, features: list[str], tuned: bool) -> dict[str, Any]:
    from retrainer.lifecycle.demo import demo_spec

    if tuned:
        raw = demo_spec(folder)
        model = raw["models"].pop("weather")
        model["params"] = dict(LGB_PARAMS)
    else:
        raw = {"store": f"sqlite:///{folder / 'retrainer.db'}", "artifacts": str(folder / "a")}
        model = {"task": "classification", "family": "lightgbm", "params": dict(LGB_PARAMS)}
        model["training"] = {"window_days": WINDOW_DAYS}
    model.update(
        target=target,
        id_column="day_id",
        time_column="date",
        features={"numeric": features},
    )
    raw["models"] = {"m": model}
    return raw


def run_policy(
    df: pd.DataFrame, target: str, features: list[str], *, tuned: bool, quick: bool
) -> Outcome:
    from retrainer.core.spec import parse_spec
    from retrainer.lifecycle.replay import ReplayConfig, replay
    from retrainer.lifecycle.workspace import Workspace

    folder = WORK / f"quality-{'tuned' if tuned else 'default'}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spec = parse_spec(_spec(folder, target, features, tuned), environ={})
    cfg = ReplayConfig(initial_days=INITIAL_DAYS, maintain_every_days=MAINTAIN_EVERY)
    with Workspace(spec) as ws:
        r = replay(ws, "m", df, cfg)
    s = r.summary
    acts = ", ".join(f"{k} {v}" for k, v in sorted(s.decisions.items()) if k != "nothing")
    extra = f"; {s.deployments} deployed, {s.rollbacks} rolled back"
    label = "retrainer policy, " + ("tuned spec (the demo's)" if tuned else "default spec")
    shutil.rmtree(folder, ignore_errors=True)
    return Outcome(label, r.correct, s.trainings, s.training_cpu_seconds, (acts or "none") + extra)


def _lgb_fit(X: pd.DataFrame, y: pd.Series) -> tuple[Any, float]:
    """What a hand-written retraining job does: fit on every row of the window (retrainer's
    LightGBM defaults, 200 rounds, no rows held back)."""
    from retrainer.families import family_class

    started = time.process_time()
    model = family_class("lightgbm")("classification", list(X.columns), [], LGB_PARAMS, 0)
    model.fit(X, y)
    return model, time.process_time() - started


def run_schedule(df: pd.DataFrame, target: str, features: list[str], period: int | None) -> Outcome:
    """Retrain every ``period`` days on the last 10 years of labelled rows (None: never)."""
    days = (df["date"] - df["date"].iloc[0]).dt.days.to_numpy()
    start = INITIAL_DAYS
    preds: list[np.ndarray] = []
    cpu, fits = 0.0, 0
    at = start
    end = int(days[-1]) + 1
    while at < end:
        stop = end if period is None else min(at + period, end)
        train = (days < at) & (days >= at - WINDOW_DAYS)  # labels up to yesterday
        model, used = _lgb_fit(df.loc[train, features], df.loc[train, target])
        cpu, fits = cpu + used, fits + 1
        block = (days >= at) & (days < stop)
        if block.any():
            preds.append(model.predict(df.loc[block, features]))
        at = stop
    truth = df.loc[days >= start, target].to_numpy()
    correct = np.concatenate(preds) == truth
    name = (
        "static LightGBM (initial 10 years)" if period is None else f"LightGBM every {period} days"
    )
    return Outcome(name, correct, fits, cpu)


def run_river(df: pd.DataFrame, target: str, features: list[str], kind: str) -> Outcome:
    from river import forest, tree

    model = (
        forest.ARFClassifier(n_models=10, seed=1)
        if kind == "arf"
        else tree.HoeffdingAdaptiveTreeClassifier(seed=1)
    )
    X = df[features].to_dict("records")
    y = df[target].tolist()
    cpu = 0.0
    started = time.process_time()
    for i in range(INITIAL_DAYS):
        model.learn_one(X[i], y[i])
    cpu += time.process_time() - started
    correct = np.zeros(len(X) - INITIAL_DAYS, dtype=bool)
    pending: tuple[dict[str, float], Any] | None = None
    for i in range(INITIAL_DAYS, len(X)):
        if pending is not None:  # yesterday's label arrives
            t = time.process_time()
            model.learn_one(*pending)
            cpu += time.process_time() - t
        guess = model.predict_one(X[i])
        correct[i - INITIAL_DAYS] = guess == y[i]
        pending = (X[i], y[i])
    name = (
        "River ARF (10 trees), one row at a time"
        if kind == "arf"
        else "River Hoeffding adaptive tree"
    )
    return Outcome(name, correct, None, cpu)


def run_baselines(df: pd.DataFrame, target: str) -> list[Outcome]:
    y = df[target].to_numpy()
    scored = y[INITIAL_DAYS:]
    last = y[INITIAL_DAYS - 1 : -1]
    counts = np.cumsum(y == 1)[INITIAL_DAYS - 1 : -1]
    seen = np.arange(INITIAL_DAYS, len(y))
    majority = (counts * 2 > seen).astype(y.dtype)
    return [
        Outcome("last label", last == scored, None, None),
        Outcome("majority class so far", majority == scored, None, None),
    ]


# -- reporting -------------------------------------------------------------------------------


def interval(correct: np.ndarray, seed: int = 0, resamples: int = 1000) -> tuple[float, float]:
    """95% block-bootstrap interval of the accuracy (30-day blocks)."""
    n_blocks = max(1, len(correct) // BLOCK_DAYS)
    blocks = np.array_split(correct.astype(float), n_blocks)
    sums = np.array([b.sum() for b in blocks])
    sizes = np.array([len(b) for b in blocks])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_blocks, size=(resamples, n_blocks))
    acc = sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    lo, hi = np.quantile(acc, [0.025, 0.975])
    return float(lo), float(hi)


def _row(o: Outcome, bold: bool) -> list[str]:
    acc = float(o.correct.mean())
    lo, hi = interval(o.correct)
    text = f"{acc:.1%}"
    return [
        f"**{o.strategy}**" if bold else o.strategy,
        f"**{text}**" if bold else text,
        f"{lo:.1%} – {hi:.1%}",
        "—" if o.trainings is None else str(o.trainings),
        "—" if o.cpu is None else seconds(o.cpu),
        o.decisions,
    ]


def _met(value: float, target: float) -> str:
    return "met" if value >= target else f"short by {(target - value) * 100:.1f} points"


def _verdict(outcomes: list[Outcome]) -> list[str]:
    by = {o.strategy: o for o in outcomes}
    default = next(o for o in outcomes if o.strategy.endswith("default spec"))
    tuned = next(
        o for o in outcomes if o.strategy.startswith("retrainer") and "tuned" in o.strategy
    )
    fixed = [o for o in outcomes if o.strategy.startswith("LightGBM every")]
    best = max(fixed, key=lambda o: o.correct.mean())
    thirty = by.get("LightGBM every 30 days")
    arf = by.get("River ARF (10 trees), one row at a time")
    lines = []
    for o in (default, tuned):
        acc = o.correct.mean()
        target = best.correct.mean()
        parts = [
            f"{acc:.1%} vs the best fixed schedule ({best.strategy.removeprefix('LightGBM ')}) "
            f"{target:.1%}: {_met(acc, target)}"
        ]
        if arf is not None:
            parts.append(f"vs ARF {arf.correct.mean():.1%}: {_met(acc, arf.correct.mean())}")
        if thirty is not None and thirty.cpu and o.cpu is not None:
            share = o.cpu / thirty.cpu
            parts.append(
                f"training CPU {seconds(o.cpu)} = {share:.0%} of the 30-day schedule's "
                f"({'met' if share <= 0.2 else 'over'} the 20% budget)"
            )
        lines.append(f"- {o.strategy}: " + "; ".join(parts))
    return lines


def run(quick: bool) -> str:
    sections = [
        "## Model quality: prequential accuracy of maintenance strategies under drift\n",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        f"retrainer replays run `maintain` every {MAINTAIN_EVERY} days with actuals one day "
        "late. Accuracy intervals: 95% block bootstrap over 30-day blocks (days are "
        "autocorrelated). Training CPU is process time of the fits (retrainer: each version's "
        "`fit_cpu_seconds`: every fit the training made, the evaluation and gate fits included). "
        + versions(),
    ]
    for name, (df, target, _id, features) in datasets(quick).items():
        print(f"  quality: {name}", flush=True)
        outcomes = [run_schedule(df, target, features, None)]
        outcomes += [run_schedule(df, target, features, p) for p in PERIODS]
        outcomes.append(run_policy(df, target, features, tuned=False, quick=quick))
        outcomes.append(run_policy(df, target, features, tuned=True, quick=quick))
        if not quick:
            outcomes.append(run_river(df, target, features, "arf"))
            outcomes.append(run_river(df, target, features, "hat"))
        outcomes += run_baselines(df, target)
        n = len(outcomes[0].correct)
        sections.append(f"\n### {name} ({n:,} scored days)\n")
        sections.append(
            table(
                ["strategy", "accuracy", "95% interval", "trainings", "training CPU", "decisions"],
                [_row(o, o.strategy.startswith("retrainer")) for o in outcomes],
            )
        )
        sections.append("")
        sections += _verdict(outcomes)
    return "\n".join(sections)


Runner = Callable[[bool], str]

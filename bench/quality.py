"""Model quality under drift: prequential (test-then-train, in time order) accuracy or error of
every maintenance strategy on the same rows, with the training it cost.

Streams, one row a day: classification — the bundled NOAA weather (rain tomorrow; real),
river's SEA with an abrupt concept drift (``ConceptDriftStream``) and its rotating Hyperplane
(gradual drift); regression — the NOAA weather with tomorrow's maximum temperature as the target
from today's 8 features (real; the last day dropped), river's ``FriedmanDrift`` in its three
modes (seeded; "lea" drifts in growing local regions at 1/4, 1/2 and 3/4 of the scored part,
"gra" changes the whole function at 1/3 and brings the old one back at 2/3, "gsg" changes it
at 1/3 and 2/3 over transitions of a tenth of the scored part), and FiveThirtyEight's daily
approval average from the five pollsters' numbers of the day (real, 1,001 days, the file
river's wheel ships; its days are calendar days). The synthetic streams have 7,302 rows laid
out one a day. The first 10 years train and the rest is scored, except the approval stream:
its first 365 days train and its other 636 are scored. Every strategy sees each row's features
before its actual, and the actual one day later (a weather row's actual is about the next day
and arrives as that day begins: a day early, for every strategy and baseline alike).

Strategies: static (trained once on the initial window); LightGBM retrained every 7, 30, 90
and 365 days on a sliding 10-year window (the whole past for the approval stream); retrainer's
policy through the replay driver (the default spec; for the classification streams also the
demo's tuned spec, which is a classification spec of the weather model, so the regression
streams run the default spec only); River's ARF (10 models) and Hoeffding adaptive tree
(classifier or regressor), learning one row at a time. Naive baselines, in every table:
classification — the last label, the majority class so far; regression — the previous actual,
the mean of the actuals so far; both — the actual of the same day a year back (seasonal naive)
for the weather streams (the synthetic and approval streams have no season: no such row). The
best naive baseline of each table is marked. The LightGBM settings are the same everywhere
(retrainer's family defaults, one thread). A schedule fits every row of its window with the
default 200 rounds, as a hand-written retraining job would; retrainer trains its own way: a
full retrain chooses its model family (LightGBM, the spec's, or the linear family: logistic
regression or ridge), training window, recency weighting, (regression) leaf model and inputs
made from time on the gate's holdout (the "choices" line under each table counts what it
chose; "linear model" is the linear family), an evaluation fit for the gate, early stopping
to settle the rounds, and a final fit on every row of the chosen window. The fixed schedules
and the static model are LightGBM throughout.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from . import quality_peers as strategies
from .quality_data import Stream, streams
from .quality_peers import MAINTAIN_EVERY, Outcome
from .quality_report import choices, stream_table, verdict

PERIODS = (7, 30, 90, 365)


def versions() -> str:
    import lightgbm
    import river

    return f"Versions: lightgbm {lightgbm.__version__}, river {river.__version__}."


Job = tuple[Callable[..., Outcome], tuple[Any, ...]]


def _jobs(s: Stream) -> list[Job]:
    """The strategies of a stream, in table order (baselines apart: they take no time)."""
    jobs: list[Job] = [(strategies.run_schedule, (s, None))]
    jobs += [(strategies.run_schedule, (s, p)) for p in PERIODS]
    jobs.append((strategies.run_policy, (s, False)))
    if not s.regression:
        jobs.append((strategies.run_policy, (s, True)))
    jobs += [(strategies.run_river, (s, "arf")), (strategies.run_river, (s, "hat"))]
    return jobs


def run(quick: bool) -> str:
    """Every stream's strategies on two worker processes (each fit is one thread; CPU is
    counted per fit, so the pool changes only the wall time)."""
    sections = [
        "## Model quality: prequential accuracy and error of maintenance strategies under drift\n",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        f"retrainer replays run `maintain` every {MAINTAIN_EVERY} days with actuals one day "
        "late. Intervals: 95% block bootstrap over 30-day blocks (days are autocorrelated), of "
        "the accuracy, the MAE and the RMSE. Training CPU is process time of the fits "
        "(retrainer: each version's `fit_cpu_seconds`: every fit the training made, the window "
        "choice, evaluation and gate fits included). Targets (issue 16): classification, the "
        "default policy at least 0.5 points above the best fixed schedule and above ARF at no "
        "more than 15% of the 30-day schedule's training CPU; regression, its MAE at most 0.97x "
        "the best fixed schedule's and below ARF's. " + versions(),
    ]
    all_streams = streams(quick)
    ctx = multiprocessing.get_context("spawn")  # no fork after LightGBM's OpenMP started
    workers = max(1, min(2, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures: list[list[Future[Outcome]]] = [[] for _ in all_streams]
        order = sorted(
            ((i, k, job) for i, s in enumerate(all_streams) for k, job in enumerate(_jobs(s))),
            key=lambda t: t[1] != 1,  # the 7-day schedules (the longest) first
        )
        slots: dict[tuple[int, int], Future[Outcome]] = {}
        for i, k, (fn, args) in order:
            slots[(i, k)] = pool.submit(fn, *args)
        for i, s in enumerate(all_streams):
            futures[i] = [slots[(i, k)] for k in range(len(_jobs(s)))]
        for s, done in zip(all_streams, futures, strict=True):
            outcomes = [f.result() for f in done] + strategies.run_baselines(s)
            print(f"  quality: {s.name} done", file=sys.stderr, flush=True)
            n = len(outcomes[0].values)
            sections.append(f"\n### {s.name} ({s.task}, {n:,} scored days)\n")
            sections.append(stream_table(outcomes, s.regression))
            sections.append("")
            sections += verdict(outcomes, s.regression)
            sections += choices(outcomes)
            if s.season_days is None:
                sections.append("- No seasonal naive row: the stream has no season.")
    return "\n".join(sections)

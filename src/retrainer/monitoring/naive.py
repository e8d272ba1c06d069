"""Naive baselines: what a trivial predictor would have scored on the same labelled actuals.

Three predictors, folded incrementally over the actuals in the order they are stored (segment
by segment, each segment in event-time order), each predicting an actual from the actuals
before it only:

- ``naive:last``: the last known value: the previous actual of the same entity id where the
  entity repeats, else the previous actual of the stream;
- ``naive:seasonal`` (with ``monitor.season``): the actual one season earlier, of the same
  entity where it has one, else of the stream at that time; the last known value while no
  actual one season earlier is known (the first season, an actual without a time);
- ``naive:mean``: the mean of the actuals so far (regression), the majority class so far
  (classification; a tie goes to the greater label text).

The state is small and bounded: the stream's last actual, the running mean or class counts,
the last actual of at most :data:`MAX_ENTITIES` entities (least recently seen dropped first:
an entity not seen since falls back to the stream's previous actual) and the actuals of the
last season (at most :data:`MAX_SEASONAL` times). It is a JSON-safe dict, stored with the
monitor's buckets in one transaction.

>>> state = new_state("regression", None)
>>> out = fold(state, ["a", "b", "a"], [None, None, None], ["1", "5", "2"])
>>> out["naive:last"], out["naive:mean"]
([None, '1', '1'], [None, '1.0', '3.0'])
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from ..core.errors import InputError

ARM = "baseline"
LAST, SEASONAL, MEAN = "naive:last", "naive:seasonal", "naive:mean"
NAMES = (LAST, SEASONAL, MEAN)
MAX_ENTITIES = 100_000
MAX_SEASONAL = 100_000
_SEP = "\x1f"


def describe(name: str, task: str, season: str | None = None) -> str:
    """How a baseline reads in a sentence.

    >>> describe("naive:last", "regression")
    'the previous actual'
    >>> describe("naive:mean", "classification")
    'the majority class'
    """
    if name == LAST:
        return "the previous actual"
    if name == SEASONAL:
        return f"the actual one season ({season}) earlier" if season else "the seasonal naive"
    return "the majority class" if task == "classification" else "the mean so far"


def new_state(task: str, season_seconds: int | None) -> dict[str, Any]:
    """An empty baseline state for ``task`` (``season_seconds``: None without a season)."""
    return {
        "task": task,
        "season": season_seconds,
        "last": None,
        "n": 0,
        "sum": 0.0,
        "counts": {},
        "entities": {},
        "seasonal": {},
        "newest": None,
        "repeats": 0,
        "step": None,
    }


def fold(
    state: dict[str, Any],
    entities: Sequence[str],
    times: Sequence[datetime | None],
    values: Sequence[str],
) -> dict[str, list[str | None]]:
    """Each baseline's prediction (JSON text, None before any actual) for each actual, given
    only the actuals before it; ``state`` is updated in place with these actuals. ``values``
    are the actuals as JSON texts. Folding in any chunking gives the same predictions.

    >>> s = new_state("classification", 86400)
    >>> t = [datetime(2025, 1, d) for d in (1, 2, 3)]
    >>> out = fold(s, ["x", "y", "z"], t, ['"a"', '"b"', '"b"'])
    >>> out["naive:seasonal"], out["naive:mean"]
    ([None, '"a"', '"b"'], [None, '"a"', '"b"'])
    """
    regression = state["task"] == "regression"
    season = state["season"]
    last, known = state["last"], state["entities"]
    seasonal: dict[str, str] = state["seasonal"]
    counts: dict[str, int] = state["counts"]
    n, total = state["n"], state["sum"]
    out_last: list[str | None] = []
    out_season: list[str | None] = []
    out_mean: list[str | None] = []
    repeats = 0
    for entity, when, value in zip(entities, times, values, strict=True):
        prev = known.pop(entity, None)
        if prev is not None:
            repeats += 1
        guess = prev if prev is not None else last
        out_last.append(guess)
        if season is not None:
            hit = None
            if when is not None:
                back = (when - timedelta(seconds=season)).isoformat()
                hit = seasonal.get(entity + _SEP + back, seasonal.get(back))
            out_season.append(hit if hit is not None else guess)
        if regression:
            out_mean.append(json.dumps(total / n) if n else None)
        else:
            out_mean.append(max(counts, key=lambda k: (counts[k], k)) if counts else None)
        # learn this actual
        known[entity] = value
        last = value
        if regression:
            y = _number(value)
            if y is not None:
                total += y
                n += 1
        else:
            counts[value] = counts.get(value, 0) + 1
            n += 1
        if season is not None and when is not None:
            stamp = when.isoformat()
            seasonal[stamp] = value
            seasonal[entity + _SEP + stamp] = value
            if state["newest"] is None or stamp > state["newest"]:
                state["newest"] = stamp
    if len(known) > MAX_ENTITIES:
        for key in list(known)[: len(known) - MAX_ENTITIES]:
            del known[key]
    if season is not None:
        _prune(state, seasonal, season)
    state.update(last=last, n=n, sum=total, repeats=state["repeats"] + repeats)
    out = {LAST: out_last, MEAN: out_mean}
    if season is not None:
        out[SEASONAL] = out_season
    return out


def _prune(state: dict[str, Any], seasonal: dict[str, str], season: int) -> None:
    """Keep the actuals of the last season only (and at most MAX_SEASONAL keys)."""
    newest = state["newest"]
    if newest is None:
        return
    oldest = (datetime.fromisoformat(newest) - timedelta(seconds=season)).isoformat()
    stale = [k for k in seasonal if k.rsplit(_SEP, 1)[-1] < oldest]
    for k in stale:
        del seasonal[k]
    if len(seasonal) > MAX_SEASONAL:
        for k in list(seasonal)[: len(seasonal) - MAX_SEASONAL]:
            del seasonal[k]


def _number(text: str) -> float | None:
    try:
        return float(json.loads(text))
    except (TypeError, ValueError):
        return None


def time_step(times: Sequence[datetime]) -> timedelta | None:
    """The data's time step: the most common gap between consecutive distinct times, when more
    than half the gaps are whole multiples of it (a regular series); None otherwise or with
    fewer than three distinct times.

    >>> time_step([datetime(2025, 1, d) for d in (1, 2, 3, 5)])
    datetime.timedelta(days=1)
    >>> time_step([datetime(2025, 1, 1)]) is None
    True
    """
    distinct = sorted(set(times))
    if len(distinct) < 3:
        return None
    gaps = [int((b - a).total_seconds()) for a, b in pairwise(distinct)]
    gaps = [g for g in gaps if g > 0]
    if not gaps:
        return None
    step = Counter(gaps).most_common(1)[0][0]
    regular = sum(1 for g in gaps if g % step == 0)
    return timedelta(seconds=step) if step and regular * 2 > len(gaps) else None


def check_season(season: str | None, step: timedelta | None, where: str) -> None:
    """A spec error unless ``monitor.season`` is a whole multiple of the data's time step.

    >>> check_season("7d", timedelta(days=1), "the training window")
    >>> check_season("36h", timedelta(days=1), "the training window")
    Traceback (most recent call last):
    ...
    retrainer.core.errors.InputError: monitor.season is '36h', which is not a whole multiple \
of the data's time step (1d, from the time column of the training window). Set monitor.season \
to a multiple of 1d (e.g. 2d), or to null for no seasonal baseline.
    """
    if season is None or step is None:
        return
    from ..core.durations import parse_duration

    span = parse_duration(season, what="monitor.season")
    if int(span.total_seconds()) % int(step.total_seconds()) == 0:
        return
    text = _duration_text(step)
    times = max(1, round(span / step))
    raise InputError(
        f"monitor.season is {season!r}, which is not a whole multiple of the data's time step "
        f"({text}, from the time column of {where}). Set monitor.season to a multiple of "
        f"{text} (e.g. {_duration_text(step * times)}), or to null for no seasonal baseline."
    )


def _duration_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

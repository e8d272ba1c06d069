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
>>> out = fold(state, ["a", "b", "a"], [None, None, None], [1.0, 5.0, 2.0])
>>> out["naive:last"].tolist(), out["naive:mean"].tolist()
([nan, 1.0, 1.0], [nan, 1.0, 3.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

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
    state: dict[str, Any], entities: Sequence[str], seconds: Any, values: Any
) -> dict[str, np.ndarray]:
    """Each baseline's prediction for each actual, given only the actuals before it;
    ``state`` is updated in place with these actuals. ``seconds``: event times as epoch
    seconds (NaN: none), in non-decreasing order where present; ``values``: the actuals,
    floats for a regression, JSON texts for a classifier. Predictions come back in the same
    kind (NaN / None: nothing known yet). Folding in any chunking gives the same predictions.
    Vectorized: one pass of array operations per chunk.

    >>> s = new_state("classification", 86400)
    >>> out = fold(s, ["x", "y", "z"], [0.0, 86400.0, 172800.0], ['"a"', '"b"', '"b"'])
    >>> out["naive:seasonal"].tolist(), out["naive:mean"].tolist()
    ([None, '"a"', '"b"'], [None, '"a"', '"b"'])
    """
    regression = state["task"] == "regression"
    n = len(entities)
    val = np.asarray(values, dtype=float if regression else object)
    secs = np.asarray(seconds, dtype=float)
    missing: Any = np.nan if regression else None
    out: dict[str, np.ndarray] = {}
    if n == 0:
        out = {LAST: val[:0], MEAN: val[:0]}
        if state["season"] is not None:
            out[SEASONAL] = val[:0]
        return out
    codes, names = pd.factorize(np.asarray(entities, dtype=object))
    prev, firsts, ends = _neighbours(codes)
    # the previous actual of the same entity, else of the stream
    known: dict[str, Any] = state["entities"]
    same = np.empty(n, dtype=object)
    same[~firsts] = val[prev[~firsts]]
    first_names = names[codes[firsts]].tolist()
    same[firsts] = [known.get(e, missing) for e in first_names]
    has = ~pd.isna(same)
    stream = np.empty(n, dtype=object)
    stream[0] = state["last"] if state["last"] is not None else missing
    stream[1:] = val[:-1]
    guess = np.where(has, same, stream)
    out[LAST] = guess.astype(float) if regression else _nones(guess)
    out[MEAN] = _means(state, val) if regression else _majority(state, val)
    if state["season"] is not None:
        out[SEASONAL] = _seasonal(state, codes, names, secs, val, out[LAST], regression)
    # learn these actuals (the least recently seen entities first out)
    for e, v in zip(names[codes[ends]].tolist(), val[ends].tolist(), strict=True):
        known.pop(e, None)
        known[e] = v
    if len(known) > MAX_ENTITIES:
        for key in list(known)[: len(known) - MAX_ENTITIES]:
            del known[key]
    last = val[-1].item() if regression else val[-1]
    state.update(last=last, repeats=state["repeats"] + int(has.sum()))
    return out


def _neighbours(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each position: the previous position of the same code (-1: none), whether it is
    the code's first and whether it is its last occurrence."""
    n = len(codes)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    same = sorted_codes[1:] == sorted_codes[:-1]
    prev = np.full(n, -1, dtype=np.int64)
    prev[order[1:][same]] = order[:-1][same]
    has_next = np.zeros(n, dtype=bool)
    has_next[order[:-1][same]] = True
    return prev, prev < 0, ~has_next


def _last_index(keys: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """The distinct keys and, for each, the position of its last occurrence."""
    rev = keys[::-1]
    keep = ~pd.Index(rev).duplicated()
    positions = (len(keys) - 1 - np.flatnonzero(keep)).astype(np.int64)
    return pd.Index(rev[keep]), positions


def _nones(a: np.ndarray) -> np.ndarray:
    out = a.astype(object)
    out[pd.isna(out)] = None
    return out


def _means(state: dict[str, Any], y: np.ndarray) -> np.ndarray:
    """The mean of the numeric actuals before each one (NaN before any)."""
    ok = np.isfinite(y)
    part = np.where(ok, y, 0.0)
    sums = state["sum"] + np.concatenate([[0.0], np.cumsum(part)])
    counts = state["n"] + np.concatenate([[0], np.cumsum(ok)])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts[:-1] > 0, sums[:-1] / np.maximum(counts[:-1], 1), np.nan)
    state.update(sum=float(sums[-1]), n=int(counts[-1]))
    return means


def _majority(state: dict[str, Any], labels: np.ndarray) -> np.ndarray:
    """The most frequent label before each actual (a tie: the greater label text)."""
    counts: dict[str, int] = state["counts"]
    names = sorted({*counts, *set(labels.tolist())}, reverse=True)  # ties: first = greatest
    index = {name: i for i, name in enumerate(names)}
    codes = np.array([index[x] for x in labels.tolist()], dtype=np.int64)
    out = np.empty(len(labels), dtype=object)
    step = max(1, 4_000_000 // max(1, len(names)))  # bound the one-hot block's memory
    base = np.array([counts.get(name, 0) for name in names], dtype=np.int64)
    for lo in range(0, len(labels), step):
        block = codes[lo : lo + step]
        hot = np.zeros((len(block), len(names)), dtype=np.int64)
        hot[np.arange(len(block)), block] = 1
        before = base + np.cumsum(hot, axis=0) - hot
        best = before.argmax(axis=1)
        seen = before.max(axis=1) > 0
        out[lo : lo + len(block)] = np.where(seen, np.asarray(names, dtype=object)[best], None)
        base = base + hot.sum(axis=0)
    state["counts"] = {name: int(c) for name, c in zip(names, base.tolist(), strict=True) if c}
    state["n"] = int(state["n"]) + len(labels)
    return out


def _seasonal(
    state: dict[str, Any],
    codes: np.ndarray,
    names: Any,
    secs: np.ndarray,
    val: np.ndarray,
    fallback: np.ndarray,
    regression: bool,
) -> np.ndarray:
    """The actual one season earlier (the entity's, else the stream's), else ``fallback``."""
    season = int(state["season"])
    seasonal: dict[str, Any] = state["seasonal"]
    n = len(codes)
    timed = np.isfinite(secs)
    t = np.where(timed, secs, 0).astype(np.int64)
    back = t - season
    rows = np.flatnonzero(timed)
    hit = np.full(n, None, dtype=object)
    if len(rows):
        t0 = int(t[rows].min())
        width = int(t[rows].max()) - t0 + 1
        # the entity's, in this chunk: one int64 key per (entity, time)
        key_index, where = _last_index(codes[rows].astype(np.int64) * width + (t[rows] - t0))
        inside = back[rows] >= t0
        query = codes[rows].astype(np.int64) * width + (back[rows] - t0)
        found = np.where(inside, key_index.get_indexer(query), -1)
        ok = found >= 0
        hit[rows[ok]] = val[rows[where[found[ok]]]]
        miss = rows[~ok]
        if len(miss) and seasonal:  # the entity's, from earlier chunks
            keys = [f"{e}{_SEP}{b}" for e, b in zip(names[codes[miss]], back[miss], strict=True)]
            hit[miss] = [seasonal.get(k) for k in keys]
        miss = rows[pd.isna(hit[rows])]
        if len(miss):  # the stream's, in this chunk
            time_index, at = _last_index(t[rows])
            found = time_index.get_indexer(back[miss])
            ok = found >= 0
            hit[miss[ok]] = val[rows[at[found[ok]]]]
        miss = rows[pd.isna(hit[rows])]
        if len(miss) and seasonal:  # the stream's, from earlier chunks
            hit[miss] = [seasonal.get(str(b)) for b in back[miss].tolist()]
    out = np.where(pd.isna(hit), fallback, hit)
    # keep the actuals of the last season only
    if len(rows):
        newest = int(t[rows].max())
        if state["newest"] is not None:
            newest = max(newest, int(state["newest"]))
        oldest = newest - season
        for key in [k for k in seasonal if int(k.rsplit(_SEP, 1)[-1]) < oldest]:
            del seasonal[key]
        recent = rows[t[rows] >= oldest]
        values = val[recent].tolist()
        stamps = t[recent].tolist()
        seasonal.update(zip([str(x) for x in stamps], values, strict=True))
        entity = names[codes[recent]].tolist()
        seasonal.update(
            zip([f"{e}{_SEP}{x}" for e, x in zip(entity, stamps, strict=True)], values,
                strict=True)
        )  # fmt: skip
        if len(seasonal) > MAX_SEASONAL:
            for key in list(seasonal)[: len(seasonal) - MAX_SEASONAL]:
                del seasonal[key]
        state["newest"] = newest
    return out.astype(float) if regression else _nones(out)


def time_step(seconds: Any) -> timedelta | None:
    """The data's time step: the most common gap between consecutive distinct times (epoch
    seconds), when more than half the gaps are whole multiples of it (a regular series); None
    otherwise or with fewer than three distinct times.

    >>> time_step([0, 86400, 172800, 345600])
    datetime.timedelta(days=1)
    >>> time_step([0]) is None
    True
    """
    distinct = np.unique(np.asarray(seconds, dtype=np.int64))
    if len(distinct) < 3:
        return None
    gaps = np.diff(distinct)
    values, counts = np.unique(gaps, return_counts=True)
    step = int(values[counts.argmax()])
    regular = int((gaps % step == 0).sum()) if step else 0
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
    from ..core.durations import duration_text, parse_duration

    span = parse_duration(season, what="monitor.season")
    if int(span.total_seconds()) % int(step.total_seconds()) == 0:
        return
    text = duration_text(step)
    times = max(1, round(span / step))
    raise InputError(
        f"monitor.season is {season!r}, which is not a whole multiple of the data's time step "
        f"({text}, from the time column of {where}). Set monitor.season to a multiple of "
        f"{text} (e.g. {duration_text(step * times)}), or to null for no seasonal baseline."
    )

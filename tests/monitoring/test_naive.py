"""The naive baselines' fold: predictions from the actuals before each one only, the same over
any chunking, per entity where it repeats, seasonal by exact time; the season check."""

from __future__ import annotations

import copy
import itertools
import json
import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrainer.core.errors import InputError
from retrainer.monitoring.naive import (
    LAST,
    MEAN,
    SEASONAL,
    check_season,
    fold,
    new_state,
    time_step,
)

DAY = 86400


def one_shot(task: str, season: int | None, rows: list[tuple[str, int, str]]) -> dict:
    state = new_state(task, season)
    return _lists(fold(state, *_columns(task, rows)))


def _columns(task: str, rows: list[tuple[str, int, str]]) -> tuple[list[str], list[float], Any]:
    """Entities, epoch seconds (a day per step), values: floats for a regression, else texts."""
    values = [float(v) if task == "regression" else json.dumps(v) for _, _, v in rows]
    return [e for e, _, _ in rows], [float(d * DAY) for _, d, _ in rows], values


def _lists(out: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """Predictions as lists, NaN as None (so equal lists compare equal)."""
    return {k: [None if x is None or (isinstance(x, float) and math.isnan(x)) else x
                for x in v.tolist()] for k, v in out.items()}  # fmt: skip


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(0, 30),
        st.sampled_from(["1", "2.5", "-3", "7"]),
    ),
    max_size=60,
).map(lambda rows: sorted(rows, key=lambda r: r[1]))  # stored in event-time order


@settings(max_examples=60, deadline=None)
@given(
    rows=rows_strategy,
    cuts=st.lists(st.integers(0, 60), max_size=5),
    task=st.sampled_from(["regression", "classification"]),
    season=st.sampled_from([None, DAY, 7 * DAY]),
)
def test_folding_in_any_chunking_equals_the_one_shot_fold(
    rows: list[tuple[str, int, str]], cuts: list[int], task: str, season: int | None
) -> None:
    want = one_shot(task, season, rows)
    state = new_state(task, season)
    got: dict[str, list[Any]] = {k: [] for k in want}
    bounds = sorted({0, len(rows), *(c for c in cuts if c <= len(rows))})
    for lo, hi in itertools.pairwise(bounds):
        state = json.loads(json.dumps(state))  # stored as JSON between chunks
        part = _lists(fold(state, *_columns(task, rows[lo:hi])))
        for k in want:
            got[k] += part[k]
    assert got == want


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy)
def test_each_prediction_comes_from_the_actuals_before_it(
    rows: list[tuple[str, int, str]],
) -> None:
    out = one_shot("regression", 7 * DAY, rows)
    for i, (entity, day, _value) in enumerate(rows):
        before = [(e, d, float(v)) for e, d, v in rows[:i]]
        same = [v for e, _, v in before if e == entity]
        last = same[-1] if same else (before[-1][2] if before else None)
        assert out[LAST][i] == last
        values = [v for _, _, v in before]
        assert out[MEAN][i] == (pytest.approx(sum(values) / len(values)) if values else None)
        week = [v for e, d, v in before if d == day - 7 and e == entity]
        stream = [v for _, d, v in before if d == day - 7]
        assert out[SEASONAL][i] == (week or stream or [last])[-1]


def test_classification_majority_and_entity_state_in_state() -> None:
    state = new_state("classification", None)
    out = _lists(fold(state, ["x", "y", "x", "z"], [None] * 4, ['"no"', '"yes"', '"no"', '"yes"']))
    assert out[MEAN] == [None, '"no"', '"yes"', '"no"']  # ties to the greater label text
    assert out[LAST] == [None, '"no"', '"no"', '"no"']  # x repeats: its own previous actual
    assert state["repeats"] == 1 and SEASONAL not in out
    before = copy.deepcopy(state)
    assert _lists(fold(state, [], [], [])) == {LAST: [], MEAN: []} and state == before


def test_time_step_and_the_season_check() -> None:
    assert time_step([h * 3600 for h in range(48)]) == timedelta(hours=1)
    assert time_step([0, 7, 20]) is None
    check_season("7d", timedelta(hours=1), "the actuals")
    check_season(None, timedelta(days=1), "the actuals")
    check_season("90m", None, "the actuals")  # no regular step: nothing to check
    with pytest.raises(InputError) as exc:
        check_season("90m", timedelta(hours=1), "the actuals")
    message = exc.value.message
    assert "monitor.season is '90m'" in message and "time step (1h" in message
    assert "e.g. 2h" in message and "null" in message

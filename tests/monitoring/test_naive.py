"""The naive baselines' fold: predictions from the actuals before each one only, the same over
any chunking, per entity where it repeats, seasonal by exact time; the season check."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import datetime, timedelta

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

T0 = datetime(2025, 1, 1)
DAY = 86400


def one_shot(task: str, season: int | None, rows: list[tuple[str, int, str]]) -> dict:
    state = new_state(task, season)
    return fold(state, *_columns(rows))


def _columns(rows: list[tuple[str, int, str]]) -> tuple[list[str], list[datetime], list[str]]:
    return (
        [e for e, _, _ in rows],
        [T0 + timedelta(days=d) for _, d, _ in rows],
        [v for _, _, v in rows],
    )


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
    got: dict[str, list[str | None]] = {k: [] for k in want}
    bounds = sorted({0, len(rows), *(c for c in cuts if c <= len(rows))})
    for lo, hi in itertools.pairwise(bounds):
        state = json.loads(json.dumps(state))  # stored as JSON between chunks
        part = fold(state, *_columns(rows[lo:hi]))
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
        before = rows[:i]
        same = [v for e, _, v in before if e == entity]
        last = same[-1] if same else (before[-1][2] if before else None)
        assert out[LAST][i] == last
        values = [float(v) for _, _, v in before]
        assert out[MEAN][i] == (json.dumps(sum(values) / len(values)) if values else None)
        week = [v for e, d, v in before if d == day - 7 and e == entity]
        stream = [v for _, d, v in before if d == day - 7]
        assert out[SEASONAL][i] == (week or stream or [last])[-1]


def test_classification_majority_and_entity_state_in_state() -> None:
    state = new_state("classification", None)
    out = fold(state, ["x", "y", "x", "z"], [None] * 4, ['"no"', '"yes"', '"no"', '"yes"'])
    assert out[MEAN] == [None, '"no"', '"yes"', '"no"']  # ties to the greater label text
    assert out[LAST] == [None, '"no"', '"no"', '"no"']  # x repeats: its own previous actual
    assert state["repeats"] == 1 and SEASONAL not in out
    before = copy.deepcopy(state)
    assert fold(state, [], [], []) == {LAST: [], MEAN: []} and state == before


def test_time_step_and_the_season_check() -> None:
    hourly = [T0 + timedelta(hours=h) for h in range(48)]
    assert time_step(hourly) == timedelta(hours=1)
    assert time_step([T0, T0 + timedelta(seconds=7), T0 + timedelta(seconds=20)]) is None
    check_season("7d", timedelta(hours=1), "the actuals")
    check_season(None, timedelta(days=1), "the actuals")
    check_season("90m", None, "the actuals")  # no regular step: nothing to check
    with pytest.raises(InputError) as exc:
        check_season("90m", timedelta(hours=1), "the actuals")
    message = exc.value.message
    assert "monitor.season is '90m'" in message and "time step (1h" in message
    assert "e.g. 2h" in message and "null" in message

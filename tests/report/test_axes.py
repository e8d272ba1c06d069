"""Axes from the data, for any data: value labels never repeat and cover the values; time ticks
lie inside the span, never repeat, and there are two to nine of them; buckets grow with the
span."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from retrainer.report.axes import BUCKETS, choose_bucket, time_domain, time_ticks, value_axis

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=1, max_size=30))
def test_value_labels_are_unique_and_cover_the_values(values: list[float]) -> None:
    axis = value_axis(values)
    assert len(set(axis.labels)) == len(axis.labels) >= 2, axis
    assert axis.lo <= min(values) and axis.hi >= max(values), axis
    assert axis.ticks == sorted(axis.ticks)


@given(finite)
def test_a_flat_series_gets_a_padded_range(v: float) -> None:
    axis = value_axis([v, v, v])
    assert axis.lo < v < axis.hi or (axis.lo <= v <= axis.hi and len(axis.ticks) >= 3)
    assert len(set(axis.labels)) == len(axis.labels) >= 2


def test_a_bounded_metric_stays_in_its_range() -> None:
    axis = value_axis([0.0, 1.0, 0.5], bounds=(0.0, 1.0))
    assert axis.lo == 0 and axis.hi == 1
    assert not any(math.isnan(t) for t in axis.ticks)


start = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
span = st.timedeltas(min_value=timedelta(minutes=2), max_value=timedelta(days=200 * 365))


@given(start, span)
def test_time_ticks_lie_inside_the_span_and_never_repeat(lo: datetime, length: timedelta) -> None:
    hi = lo + length
    ticks = time_ticks(lo, hi)
    times = [t for t, _ in ticks]
    labels = [label for _, label in ticks]
    assert 2 <= len(ticks) <= 9, (lo, hi, labels)
    assert all(lo <= t <= hi for t in times) and times == sorted(times)
    assert len(set(labels)) == len(labels), labels


def test_one_instant_sits_mid_axis() -> None:
    t = datetime(2024, 5, 31, 12, 0)
    lo, hi = time_domain([t], BUCKETS["hour"])
    assert lo < t < hi and hi - t == t - lo


def test_buckets_grow_with_the_span() -> None:
    t0 = datetime(2000, 1, 1)
    names = [
        choose_bucket(t0, t0 + timedelta(days=d)).name for d in (1, 30, 365, 40 * 365, 100 * 365)
    ]
    assert names == ["hour", "day", "week", "month", "year"]
